package core_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// testEnv is a seeded Environment with one proximity for every node.
type testEnv struct {
	rng  *rand.Rand
	prox uint32
}

func newTestEnv(seed uint64) *testEnv {
	return &testEnv{rng: rand.New(rand.NewPCG(seed, 1)), prox: 20000}
}

func (e *testEnv) Uint64() uint64             { return e.rng.Uint64() }
func (e *testEnv) Proximity(id.Handle) uint32 { return e.prox }

// testApp is an application that records its upcalls and lets a test
// decide what Forward does.
type testApp struct {
	idx       int
	delivered []core.Message
	forwards  []forwardCall
	updates   []updateCall
	// forward, if set, decides Forward; nil passes every message on.
	forward func(m *core.Message, next *id.Handle) bool
}

type forwardCall struct {
	msg  core.Message
	next id.Handle
}

type updateCall struct {
	h      id.Handle
	joined bool
}

func (a *testApp) Deliver(m *core.Message) { a.delivered = append(a.delivered, *m) }

func (a *testApp) Forward(m *core.Message, next *id.Handle) bool {
	a.forwards = append(a.forwards, forwardCall{msg: *m, next: *next})
	if a.forward != nil {
		return a.forward(m, next)
	}
	return true
}

func (a *testApp) Update(h id.Handle, joined bool) {
	a.updates = append(a.updates, updateCall{h: h, joined: joined})
}

const testAppID core.AppID = 42

// overlay is a settled simnet network with a testApp on every node.
type overlay struct {
	nw   *simnet.Network
	apps []*testApp
}

// newOverlay grows n nodes (each joining through its nearest joined node),
// lets maintenance settle and checks that leaf sets and tables are exact.
func newOverlay(t testing.TB, seed uint64, n int, cfg core.Config, onSend func(int, *core.Message)) *overlay {
	t.Helper()
	nw, err := simnet.New(simnet.Options{Seed: seed, Node: cfg, Topology: simnet.NewPlane(), OnSend: onSend})
	if err != nil {
		t.Fatal(err)
	}
	o := &overlay{nw: nw}
	o.grow(t, n, 500*time.Millisecond)
	nw.RunFor(time.Minute)
	if bad := nw.CheckLeafSets(3); len(bad) > 0 {
		t.Fatalf("overlay did not settle: %v", bad)
	}
	if err := nw.CheckTables(); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *overlay) add() *simnet.Host {
	n := o.nw.AddNode()
	a := &testApp{idx: n.Index}
	o.apps = append(o.apps, a)
	if _, err := n.RegisterApplication(testAppID, a); err != nil {
		panic(err)
	}
	return n
}

func (o *overlay) grow(t testing.TB, count int, gap time.Duration) {
	t.Helper()
	for range count {
		n := o.add()
		if via := o.nw.Nearest(n.Index); via < 0 {
			if err := o.nw.Bootstrap(n.Index); err != nil {
				t.Fatal(err)
			}
		} else if err := o.nw.Join(n.Index, via); err != nil {
			t.Fatal(err)
		}
		o.nw.RunFor(gap)
	}
}

// liveIdx lists the live joined nodes' indices.
func (o *overlay) liveIdx() []int {
	var out []int
	for _, n := range o.nw.Nodes() {
		if n.Alive() && n.Status() == core.StatusJoined {
			out = append(out, n.Index)
		}
	}
	return out
}

// route sends a traced test message from node i and runs the network for
// wait; it returns the deliveries of that message, by node index.
func (o *overlay) route(t testing.TB, from int, key id.ID, payload []byte, wait time.Duration) map[int][]core.Message {
	t.Helper()
	before := make([]int, len(o.apps))
	for i, a := range o.apps {
		before[i] = len(a.delivered)
	}
	if err := o.nw.RouteFrom(from, core.Message{Key: key, App: testAppID, Payload: payload, Flags: core.FlagTrace}); err != nil {
		t.Fatal(err)
	}
	o.nw.RunFor(wait)
	out := map[int][]core.Message{}
	for i, a := range o.apps {
		if len(a.delivered) > before[i] {
			out[i] = a.delivered[before[i]:]
		}
	}
	return out
}

// pump delivers msgs and everything they cause, synchronously and with no
// loss, bypassing the network's clock (for tests that drive a node's
// inputs directly). It returns every message delivered.
func pump(t testing.TB, nw *simnet.Network, msgs []core.Message) []core.Message {
	t.Helper()
	var all []core.Message
	q := slices.Clone(msgs)
	for len(q) > 0 && len(all) < 10000 {
		m := q[0]
		q = q[1:]
		all = append(all, m)
		to, ok := nw.Lookup(m.To.ID)
		if !ok || !to.Alive() {
			continue
		}
		if err := to.Step(nw.Now(), &m); err != nil {
			t.Fatalf("step %s: %v", m.String(), err)
		}
		q = append(q, slices.Clone(to.Ready().Messages)...)
	}
	return all
}

// snapshot is everything observable about a node's routing state.
type snapshot struct {
	status             core.Status
	left, right, nbrs  []routing.Entry
	table              []routing.Entry
	stats              core.Stats
	wake               time.Duration
	readyMsgs, upcalls int
}

func takeSnapshot(n *core.Machine, app *testApp) snapshot {
	st := n.State()
	s := snapshot{
		status: n.Status(),
		left:   slices.Clone(st.Leaves.Left()),
		right:  slices.Clone(st.Leaves.Right()),
		nbrs:   slices.Clone(st.Neighbors.Members()),
		stats:  n.Stats(),
	}
	st.Table.ForEach(func(_, _ int, e routing.Entry) bool { s.table = append(s.table, e); return true })
	rd := n.Ready()
	s.wake, s.readyMsgs = rd.WakeAt, len(rd.Messages)
	if app != nil {
		s.upcalls = len(app.delivered) + len(app.forwards) + len(app.updates)
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	return s.status == o.status && slices.Equal(s.left, o.left) && slices.Equal(s.right, o.right) &&
		slices.Equal(s.nbrs, o.nbrs) && slices.Equal(s.table, o.table) && s.stats == o.stats &&
		s.wake == o.wake && s.readyMsgs == o.readyMsgs && s.upcalls == o.upcalls
}

// closest sorts ids by numeric closeness to key (the root first).
func closest(key id.ID, ids []id.ID) []id.ID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b id.ID) int {
		switch {
		case a == b:
			return 0
		case id.Closer(key, a, b):
			return -1
		}
		return 1
	})
	return out
}

func handleIDs(hs []id.Handle) []id.ID {
	out := make([]id.ID, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

func entryIDs(es []routing.Entry) []id.ID {
	out := make([]id.ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// leafCfg is SimConfig with leaf set size l.
func leafCfg(l int) core.Config {
	c := core.SimConfig()
	c.LeafSetSize = l
	return c
}

// routeAt routes m through the endpoint of its application at n, at now,
// as a driver does (Machine.Run); the caller then takes n's Ready.
func routeAt(n *core.Machine, now time.Duration, m core.Message, hint *id.Handle) error {
	ep := n.Endpoint(m.App)
	if ep == nil {
		return fmt.Errorf("no application %d registered", m.App)
	}
	var err error
	n.Run(now, func() { err = ep.RouteMessage(m, hint) })
	return err
}
