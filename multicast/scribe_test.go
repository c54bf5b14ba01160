package multicast_test

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/simnet"
)

// world is a simulated overlay with Scribe on every node, and what each
// node was delivered.
type world struct {
	t    *testing.T
	nw   *simnet.Network
	apps []*multicast.App
	// got[node][topic] lists the deliveries in order.
	got []map[id.ID][]multicast.Delivery
	// accept[node]: Accept's answer there.
	accept []bool
	// published numbers the messages published, for their data.
	published int
	// arrived[node][data] is when it was delivered there.
	arrived []map[string]time.Duration
}

func newWorld(t *testing.T, seed uint64, n int, opts multicast.Options) *world {
	t.Helper()
	nw, err := simnet.New(simnet.Options{Seed: seed, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Grow(n, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	w := &world{t: t, nw: nw, got: make([]map[id.ID][]multicast.Delivery, n), accept: make([]bool, n),
		arrived: make([]map[string]time.Duration, n)}
	for i := range n {
		o := opts
		w.arrived[i] = map[string]time.Duration{}
		o.Deliver = func(d multicast.Delivery) {
			w.got[i][d.Topic] = append(w.got[i][d.Topic], d)
			w.arrived[i][string(d.Data)] = nw.Now()
		}
		o.Accept = func(id.ID, []byte) bool { return w.accept[i] }
		w.got[i] = map[id.ID][]multicast.Delivery{}
		a, err := multicast.Register(nw.Node(i).Machine, o)
		if err != nil {
			t.Fatal(err)
		}
		w.apps = append(w.apps, a)
	}
	return w
}

func (w *world) on(i int, f func(a *multicast.App) error) {
	w.t.Helper()
	var err error
	w.nw.RunOn(i, func() { err = f(w.apps[i]) })
	if err != nil {
		w.t.Fatalf("node %d: %v", i, err)
	}
}

func (w *world) subscribe(tp id.ID, nodes []int) {
	for _, i := range nodes {
		w.on(i, func(a *multicast.App) error { return a.Subscribe(tp) })
		w.nw.RunFor(10 * time.Millisecond)
	}
}

// publish has node i publish count messages to tp, gap apart, and returns
// their data.
func (w *world) publish(i int, tp id.ID, count int, gap time.Duration) [][]byte {
	var sent [][]byte
	for k := range count {
		w.published++
		data := fmt.Appendf(nil, "%d/%s/%d/%d", i, tp.Short(), k, w.published)
		w.on(i, func(a *multicast.App) error { return a.Publish(tp, data) })
		sent = append(sent, data)
		w.nw.RunFor(gap)
	}
	return sent
}

// received lists what node i got on tp from publisher p, in order.
func (w *world) received(i int, tp id.ID, p id.ID) []string {
	var out []string
	for _, d := range w.got[i][tp] {
		if d.Publisher == p {
			out = append(out, string(d.Data))
		}
	}
	return out
}

func pick(r *rand.Rand, n, k int, not ...int) []int {
	perm := r.Perm(n)
	var out []int
	for _, i := range perm {
		if len(out) == k {
			break
		}
		if !slices.Contains(not, i) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// On a stable overlay every subscriber gets every message exactly once,
// in the order its publisher sent it, and nobody else gets any.
func TestStableTreeDeliversEachMessageOnceInOrder(t *testing.T) {
	const n = 300
	w := newWorld(t, 1, n, multicast.Options{})
	r := rand.New(rand.NewPCG(1, 2))
	type pub struct {
		node int
		tp   id.ID
		sent []string
	}
	var pubs []pub
	subs := map[id.ID][]int{}
	for k := range 4 {
		tp := multicast.TopicID(fmt.Sprintf("topic-%d", k))
		subs[tp] = pick(r, n, 10+k*40)
		w.subscribe(tp, subs[tp])
		pubs = append(pubs, pub{node: r.IntN(n), tp: tp}, pub{node: r.IntN(n), tp: tp})
	}
	w.nw.RunFor(5 * time.Second)
	for round := range 30 {
		for i := range pubs {
			p := &pubs[i]
			p.sent = append(p.sent, strs(w.publish(p.node, p.tp, 1, 0))...)
		}
		w.nw.RunFor(time.Duration(50+round*5) * time.Millisecond)
	}
	w.nw.RunFor(10 * time.Second)
	for _, p := range pubs {
		self := w.nw.Node(p.node).Self().ID
		for i := range n {
			got := w.received(i, p.tp, self)
			if !slices.Contains(subs[p.tp], i) {
				if len(got) > 0 {
					t.Fatalf("node %d, not a subscriber of %s, got %d messages", i, p.tp.Short(), len(got))
				}
				continue
			}
			if !slices.Equal(got, p.sent) {
				t.Fatalf("subscriber %d of %s from %d: got %d messages %v, want %d in order", i, p.tp.Short(), p.node, len(got), got, len(p.sent))
			}
		}
	}
	var st multicast.Stats
	for _, a := range w.apps {
		s := a.Stats()
		st.Delivered += s.Delivered
		st.Duplicates += s.Duplicates
		st.Forwarded += s.Forwarded
		st.Repairs += s.Repairs
		st.Refused += s.Refused
	}
	t.Logf("delivered %d forwarded %d duplicates %d repairs %d refused %d events %d", st.Delivered, st.Forwarded, st.Duplicates, st.Repairs, st.Refused, w.nw.Events)
	if st.Repairs != 0 {
		t.Errorf("%d repairs on a stable overlay", st.Repairs)
	}
}

// treeCheck returns the tree's problems: every non-root member's parent
// must hold it as a child, and walking up from every subscriber must
// reach the root.
func (w *world) treeCheck(tp id.ID) []string {
	var bad []string
	info := map[id.ID]multicast.TopicInfo{}
	for i, a := range w.apps {
		if !w.nw.Node(i).Alive() {
			continue
		}
		for _, ti := range a.Topics() {
			if ti.Topic == tp {
				info[w.nw.Node(i).Self().ID] = ti
			}
		}
	}
	for x, ti := range info {
		if !ti.Subscribed {
			continue
		}
		cur := x
		for steps := 0; ; steps++ {
			c := info[cur]
			if c.Root {
				break
			}
			p, ok := info[c.Parent.ID]
			if c.Parent.Addr == "" || !ok || !slices.ContainsFunc(p.Children, func(h id.Handle) bool { return h.ID == cur }) || steps > 64 {
				bad = append(bad, fmt.Sprintf("subscriber %s: broken at %s (parent %s)", x.Short(), cur.Short(), c.Parent))
				break
			}
			cur = c.Parent.ID
		}
	}
	return bad
}

// After 10% of the nodes crash, the surviving subscribers receive again
// within 3 heartbeat periods.
func TestRepairAfterCrash(t *testing.T) {
	const n = 500
	w := newWorld(t, 2, n, multicast.Options{})
	r := rand.New(rand.NewPCG(3, 4))
	tp := multicast.TopicID("crash")
	subs := pick(r, n, 250)
	w.subscribe(tp, subs)
	pubNode := subs[0]
	w.nw.RunFor(5 * time.Second)
	w.publish(pubNode, tp, 5, time.Second)
	root, _ := w.nw.Root(tp)
	crashed := pick(r, n, n/10, pubNode, root.Index)
	orphans := 0
	for _, i := range subs {
		for _, ti := range w.apps[i].Topics() {
			if at, ok := w.nw.Lookup(ti.Parent.ID); ok && slices.Contains(crashed, at.Index) && !slices.Contains(crashed, i) {
				orphans++
			}
		}
	}
	t.Logf("%d surviving subscribers lose their parent", orphans)
	for _, i := range crashed {
		w.nw.Crash(i)
	}
	hb := core.SimConfig().HeartbeatInterval
	crashAt := w.nw.Now()
	// Publish once a second for 4 heartbeat periods.
	var sent []string
	for range int(4 * hb / time.Second) {
		sent = append(sent, strs(w.publish(pubNode, tp, 1, time.Second))...)
	}
	w.nw.RunFor(5 * time.Second)
	self := w.nw.Node(pubNode).Self().ID
	var survivors, late int
	var worst time.Duration
	for _, i := range subs {
		if slices.Contains(crashed, i) {
			continue
		}
		survivors++
		got := w.received(i, tp, self)
		// The first message after which it missed none.
		k := len(sent)
		for k > 0 && slices.Contains(got, sent[k-1]) {
			k--
		}
		if k == len(sent) {
			late++
			t.Errorf("subscriber %d receives nothing again", i)
			continue
		}
		again := w.arrived[i][sent[k]] - crashAt
		worst = max(worst, again)
		if again > 3*hb {
			late++
		}
	}
	t.Logf("%d of %d surviving subscribers late; receiving again at most %v after the crash (heartbeat %v)", late, survivors, worst, hb)
	if float64(late) > 0.001*float64(survivors) {
		t.Fatalf("%d of %d surviving subscribers did not receive again within 3 heartbeat periods", late, survivors)
	}
	if bad := w.treeCheck(tp); len(bad) > 0 {
		t.Fatalf("tree broken: %v", bad)
	}
}

// When the root crashes, the next closest node takes over from its
// replica, and publishing resumes within 2 heartbeat periods.
func TestRootFailover(t *testing.T) {
	const n = 300
	w := newWorld(t, 3, n, multicast.Options{})
	r := rand.New(rand.NewPCG(5, 6))
	tp := multicast.TopicID("failover")
	root, _ := w.nw.Root(tp)
	subs := pick(r, n, 100, root.Index)
	w.subscribe(tp, subs)
	pubNode := subs[0]
	w.nw.RunFor(5 * time.Second)
	w.publish(pubNode, tp, 3, time.Second)
	w.nw.RunFor(time.Minute) // a round of root-state replication
	w.nw.Crash(root.Index)
	hb := core.SimConfig().HeartbeatInterval
	crashAt := w.nw.Now()
	var sent []string
	var at []time.Duration
	for range int(3 * hb / time.Second) {
		at = append(at, w.nw.Now()-crashAt)
		sent = append(sent, strs(w.publish(pubNode, tp, 1, time.Second))...)
	}
	w.nw.RunFor(5 * time.Second)
	self := w.nw.Node(pubNode).Self().ID
	// The first message every subscriber got, and all after it.
	first := -1
	for k := range sent {
		all := true
		for _, i := range subs {
			if !slices.Contains(w.received(i, tp, self), sent[k]) {
				all = false
				break
			}
		}
		if all {
			first = k
			break
		}
	}
	if first < 0 {
		t.Fatal("no message published after the root crashed reached every subscriber")
	}
	var resumed time.Duration // when the first of them reached the last subscriber
	for _, i := range subs {
		resumed = max(resumed, w.arrived[i][sent[first]]-crashAt)
	}
	for _, i := range subs {
		got := w.received(i, tp, self)
		for _, s := range sent[first:] {
			if !slices.Contains(got, s) {
				t.Fatalf("subscriber %d missed %q, published after publishing resumed", i, s)
			}
		}
	}
	var takeovers uint64
	for _, a := range w.apps {
		takeovers += a.Stats().Takeovers
	}
	t.Logf("the first message published %v after the root crashed reached every subscriber; the last of them %v after the crash (heartbeat %v); takeovers %d",
		at[first], resumed, hb, takeovers)
	if resumed > 2*hb {
		t.Fatalf("publishing resumed %v after the root crashed, want within 2 heartbeat periods (%v)", resumed, 2*hb)
	}
	newRoot, _ := w.nw.Root(tp)
	for _, ti := range w.apps[newRoot.Index].Topics() {
		if ti.Topic == tp && !ti.Root {
			t.Fatalf("the new closest node %d is not the topic's root", newRoot.Index)
		}
	}
}

// Unsubscribing every subscriber takes the whole tree down: no node keeps
// state for the topic but (at most) its root.
func TestUnsubscribePrunesTree(t *testing.T) {
	const n = 200
	w := newWorld(t, 4, n, multicast.Options{})
	r := rand.New(rand.NewPCG(7, 8))
	tp := multicast.TopicID("prune")
	subs := pick(r, n, 60)
	w.subscribe(tp, subs)
	w.nw.RunFor(5 * time.Second)
	members := 0
	for _, a := range w.apps {
		members += len(a.Topics())
	}
	if members < len(subs) {
		t.Fatalf("%d tree members for %d subscribers", members, len(subs))
	}
	for _, i := range subs {
		w.on(i, func(a *multicast.App) error { a.Unsubscribe(tp); return nil })
	}
	w.nw.RunFor(5 * time.Second)
	left := 0
	for i, a := range w.apps {
		for _, ti := range a.Topics() {
			if !ti.Root || len(ti.Children) > 0 {
				t.Errorf("node %d still holds %+v", i, ti)
			}
			left++
		}
	}
	if left > 1 {
		t.Fatalf("%d nodes hold state for the topic after everyone unsubscribed (of %d members)", left, members)
	}
}

// With a bound on children, the bottleneck remover keeps every node within
// it, and delivery stays complete.
func TestBottleneckRemoverBoundsChildren(t *testing.T) {
	const n, bound = 200, 4
	w := newWorld(t, 5, n, multicast.Options{MaxChildren: bound})
	tp := multicast.TopicID("everyone")
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	w.subscribe(tp, all)
	w.nw.RunFor(10 * time.Second)
	sent := strs(w.publish(7, tp, 5, 100*time.Millisecond))
	w.nw.RunFor(5 * time.Second)
	var redirects uint64
	for i, a := range w.apps {
		redirects += a.Stats().Redirects
		if a.Children() > bound {
			t.Errorf("node %d has %d children, bound %d", i, a.Children(), bound)
		}
		if got := w.received(i, tp, w.nw.Node(7).Self().ID); !slices.Equal(got, sent) {
			t.Fatalf("node %d got %v, want %v", i, got, sent)
		}
	}
	t.Logf("redirects %d", redirects)
	if redirects == 0 {
		t.Fatal("no child was redirected: the bound was never reached")
	}
	if bad := w.treeCheck(tp); len(bad) > 0 {
		t.Fatalf("tree broken: %v", bad[:min(len(bad), 5)])
	}
}

// An anycast finds a subscriber that accepts, and reports none when no
// subscriber does.
func TestAnycast(t *testing.T) {
	const n = 200
	w := newWorld(t, 6, n, multicast.Options{})
	r := rand.New(rand.NewPCG(9, 10))
	tp := multicast.TopicID("anycast")
	subs := pick(r, n, 40)
	w.subscribe(tp, subs)
	w.nw.RunFor(5 * time.Second)
	run := func(from int) (multicast.AnycastResult, error) {
		var res multicast.AnycastResult
		var rerr error
		done := false
		w.on(from, func(a *multicast.App) error {
			return a.Anycast(tp, []byte("job"), func(r multicast.AnycastResult, err error) { res, rerr, done = r, err, true })
		})
		w.nw.RunFor(10 * time.Second)
		if !done {
			t.Fatal("anycast never ended")
		}
		return res, rerr
	}
	res, err := run(subs[3])
	if err != nil || res.Found {
		t.Fatalf("with no acceptor: %+v %v, want not found", res, err)
	}
	takers := subs[30:33]
	for _, i := range takers {
		w.accept[i] = true
	}
	for k := range 10 {
		from := r.IntN(n)
		res, err := run(from)
		if err != nil || !res.Found {
			t.Fatalf("anycast %d from %d: %+v %v", k, from, res, err)
		}
		at, _ := w.nw.Lookup(res.At.ID)
		if !slices.Contains(takers, at.Index) {
			t.Fatalf("anycast ended at %d, which does not accept", at.Index)
		}
	}
}

// The same seed gives the same run, delivery for delivery.
func TestDeterministic(t *testing.T) {
	run := func() uint64 {
		w := newWorld(t, 7, 120, multicast.Options{MaxChildren: 3})
		r := rand.New(rand.NewPCG(11, 12))
		tp := multicast.TopicID("det")
		w.subscribe(tp, pick(r, 120, 50))
		w.publish(3, tp, 10, 200*time.Millisecond)
		for _, i := range pick(r, 120, 12, 3) {
			w.nw.Crash(i)
		}
		w.publish(3, tp, 90, time.Second)
		h := fnv.New64a()
		for i := range w.got {
			for _, d := range w.got[i][tp] {
				fmt.Fprintf(h, "%d %d %s %d|", i, d.Seq, d.Data, d.Depth)
			}
			fmt.Fprintf(h, "%+v|", w.apps[i].Stats())
		}
		fmt.Fprintf(h, "%d", w.nw.Events)
		return h.Sum64()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs of one seed differ: %x vs %x", a, b)
	}
}
