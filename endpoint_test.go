package pastry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
)

// keeper is the application the Endpoint is proven with, in the simulator
// and over libp2p, unchanged: it finds the root of a key (a routed find,
// answered by the root with a direct Send), watches that root and pings it
// straight every interval (timers, Send), and when the root fails (the
// watch's Failed upcall) finds the key's new root, routing from inside
// the upcall (re-entrant Route). Every node runs one; the one started with
// start keeps the key. It logs what it does, on the node's clock.
type keeper struct {
	ep       *core.Endpoint
	key      id.ID
	interval time.Duration
	root     id.Handle
	hasRoot  bool
	pongs    int
	finds    int
	log      []string
}

const keeperApp core.AppID = 0x6b65

// Payload kinds; timer tags.
const (
	kFind  = 'F' // routed to the key: who is its root?
	kRoot  = 'R' // from the root, straight to the finder: I am
	kPing  = 'P'
	kPong  = 'O'
	tFind  = 1
	tPing  = 2
	tAgain = 3
)

var (
	_ core.Registrant         = (*keeper)(nil)
	_ core.TimerHandler       = (*keeper)(nil)
	_ core.FailureHandler     = (*keeper)(nil)
	_ core.UndeliveredHandler = (*keeper)(nil)
)

func (k *keeper) Registered(ep *core.Endpoint) { k.ep = ep }

func (k *keeper) logf(format string, args ...any) {
	k.log = append(k.log, fmt.Sprintf("%v ", k.ep.Now().Round(time.Millisecond))+fmt.Sprintf(format, args...))
}

// start keeps key: the find goes out from a timer, as later ones do.
func (k *keeper) start(key id.ID, interval time.Duration) {
	k.key, k.interval = key, interval
	if _, err := k.ep.After(0, tFind); err != nil {
		k.logf("after: %v", err)
	}
}

func (k *keeper) find() {
	k.finds++
	if err := k.ep.Route(k.key, []byte{kFind}, nil); err != nil {
		k.logf("find: %v", err)
		k.ep.After(k.interval, tAgain)
	}
}

func (k *keeper) Timer(tag uint64) {
	switch tag {
	case tFind, tAgain:
		k.find()
	case tPing:
		if !k.hasRoot {
			return
		}
		if err := k.ep.Send(k.root, []byte{kPing}); err != nil {
			k.logf("ping: %v", err)
		}
		k.ep.After(k.interval, tPing)
	}
}

func (k *keeper) Deliver(m *core.Message) {
	if len(m.Payload) != 1 {
		return
	}
	switch m.Payload[0] {
	case kFind: // at the key's root
		if err := k.ep.Send(m.Origin, []byte{kRoot}); err != nil {
			k.logf("answer: %v", err)
		}
	case kRoot:
		if k.hasRoot && k.root == m.From {
			return
		}
		first := !k.hasRoot
		k.root, k.hasRoot = m.From, true
		k.logf("root %s", m.From.ID.Short())
		if m.From.ID != k.ep.Self().ID {
			if err := k.ep.Watch(m.From); err != nil {
				k.logf("watch: %v", err)
			}
		}
		if first {
			k.ep.After(k.interval, tPing)
		}
	case kPing:
		k.ep.Send(m.From, []byte{kPong})
	case kPong:
		k.pongs++
	}
}

func (k *keeper) Failed(h id.Handle) {
	k.logf("failed %s", h.ID.Short())
	if k.hasRoot && h == k.root {
		k.hasRoot = false
		k.find() // re-entrant: Route from inside the upcall
		k.ep.After(0, tPing)
	}
}

func (k *keeper) Undelivered(m *core.Message) {
	k.logf("undelivered %c to %s", m.Payload[0], m.To.ID.Short())
}

func (k *keeper) Forward(*core.Message, *id.Handle) bool { return true }

func (k *keeper) Update(id.Handle, bool) {}

// keeperSim runs the keeper in a simulated overlay of 40 nodes: it finds
// the root of a key, the root crashes, it finds the new one. It returns
// the keeper's log and what it found.
func keeperSim(t *testing.T, seed uint64) (log []string, roots []id.ID, want [2]id.ID, pongs [2]int) {
	t.Helper()
	cfg := core.SimConfig()
	cfg.HeartbeatInterval, cfg.NeighborSilence = 5*time.Second, 12*time.Second
	nw, err := simnet.New(simnet.Options{Seed: seed, Node: cfg, Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	var ks []*keeper
	if err := nw.Grow(40, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range nw.Nodes() {
		k := &keeper{}
		if _, err := n.RegisterApplication(keeperApp, k); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	nw.RunFor(time.Minute)
	key := id.Random(nw.Rand())
	root, _ := nw.Root(key)
	if root.Index == 0 {
		t.Fatal("node 0 is the key's root: pick another seed")
	}
	k := ks[0]
	nw.RunOn(0, func() { k.start(key, time.Second) })
	nw.RunFor(10 * time.Second)
	pongs[0] = k.pongs
	want[0] = root.Self().ID
	nw.Crash(root.Index)
	nw.RunFor(time.Minute)
	next, _ := nw.Root(key)
	want[1] = next.Self().ID
	pongs[1] = k.pongs - pongs[0]
	for _, l := range k.log {
		if f := strings.Fields(l); len(f) == 3 && f[1] == "root" {
			for _, n := range nw.Nodes() {
				if n.Self().ID.Short() == f[2] {
					roots = append(roots, n.Self().ID)
				}
			}
		}
	}
	return k.log, roots, want, pongs
}

// The keeper in the simulator: it finds the key's root, pings it, hears
// of its failure through its watch, finds the new root from inside the
// Failed upcall, and pings that; the same seed gives the same log, byte
// for byte.
func TestEndpointAppInSimulator(t *testing.T) {
	log, roots, want, pongs := keeperSim(t, 7)
	t.Logf("keeper log:\n%s", strings.Join(log, "\n"))
	if len(roots) != 2 || roots[0] != want[0] || roots[1] != want[1] {
		t.Fatalf("roots found %v, want %v then %v", roots, want[0].Short(), want[1].Short())
	}
	if pongs[0] < 5 || pongs[1] < 5 {
		t.Fatalf("pongs %v before and after the crash, want at least 5 each (1 a second)", pongs)
	}
	if !slices.ContainsFunc(log, func(l string) bool { return strings.HasSuffix(l, "failed "+want[0].Short()) }) {
		t.Fatal("no Failed upcall for the crashed root")
	}
	again, _, _, _ := keeperSim(t, 7)
	if strings.Join(again, "\n") != strings.Join(log, "\n") {
		t.Fatalf("same seed, another log:\n%s", strings.Join(again, "\n"))
	}
	other, _, _, _ := keeperSim(t, 8)
	if strings.Join(other, "\n") == strings.Join(log, "\n") {
		t.Fatal("another seed, the same log: the seed is not used")
	}
}

// The same keeper, unchanged, over libp2p: three nodes on loopback. Node 0
// keeps node 2's id; node 2 closes; node 0 finds the new root.
func TestEndpointAppOverLibp2p(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 4))
	cfg := fastConfig()
	o, _ := startLibp2pOverlay(t, r, cfg, 3, func(i int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	ks := make([]*keeper, 3)
	for i, n := range o.nodes {
		ks[i] = &keeper{}
		if _, err := n.RegisterApplication(keeperApp, ks[i]); err != nil {
			t.Fatal(err)
		}
	}
	n0, k := o.nodes[0], ks[0]
	key := o.nodes[2].ID()
	read := func(f func()) {
		if err := n0.Do(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	read(func() { k.start(key, 100*time.Millisecond) })
	var pongs int
	eventually(t, "node 2 found and answering pings", func() bool {
		ok := false
		read(func() { ok = k.hasRoot && k.root.ID == key && k.pongs >= 3; pongs = k.pongs })
		return ok
	})
	o.nodes[2].Close()
	o.dead[2] = true
	want := o.nodes[0].ID()
	if id.Closer(key, o.nodes[1].ID(), want) {
		want = o.nodes[1].ID()
	}
	eventually(t, "the new root found and answering pings", func() bool {
		ok := false
		read(func() { ok = k.hasRoot && k.root.ID == want && k.pongs >= pongs+3 })
		return ok
	})
	read(func() {
		t.Logf("keeper log:\n%s", strings.Join(k.log, "\n"))
		if !slices.ContainsFunc(k.log, func(l string) bool { return strings.HasSuffix(l, "failed "+key.Short()) }) {
			t.Error("no Failed upcall for node 2")
		}
	})
}
