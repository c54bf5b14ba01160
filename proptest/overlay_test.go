package proptest

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

const (
	// settleTime follows the last join before an overlay counts as
	// settled: four heartbeat periods.
	settleTime = 2 * time.Minute
	// lookupWindow is how long lookups are given to arrive. A settled
	// overlay needs well under a second; after crashes a lookup may wait
	// out a few hop timeouts (1 s each in SimConfig) for dead table entries.
	lookupWindow = time.Minute
)

// overlayCase is an overlay grown by N joins in simnet.
type overlayCase struct {
	Seed uint64
	N    int
	B    int
	L    int
	Gap  time.Duration // between joins: 50 ms joins overlap, 2 s ones do not
	Topo string        // "plane" (the paper's 1000x1000 plane) or "constant" (10 ms everywhere)
}

func (c overlayCase) String() string {
	return fmt.Sprintf("overlayCase{Seed: %#x, N: %d, B: %d, L: %d, Gap: %d * time.Millisecond, Topo: %q}",
		c.Seed, c.N, c.B, c.L, c.Gap.Milliseconds(), c.Topo)
}

func genOverlayCase() gopter.Gen {
	return gen.Struct(reflect.TypeOf(overlayCase{}), map[string]gopter.Gen{
		"Seed": gen.UInt64().WithShrinker(gopter.NoShrinker),
		"N":    gen.IntRange(5, 80),
		"B":    gen.OneConstOf(1, 2, 4),
		"L":    gen.OneConstOf(4, 8, 16, 32),
		"Gap":  gen.OneConstOf(50*time.Millisecond, 500*time.Millisecond, 2*time.Second),
		"Topo": gen.OneConstOf("plane", "plane", "constant"),
	})
}

// overlay is a grown network with a lookup tracker on every node.
type overlay struct {
	c      overlayCase
	nw     *simnet.Network
	lk     *simnet.Lookups
	sent   []*sentLookup // by the lookup's sequence number - 1
	traced bool          // lookups go through hopApp
	dups   int           // hopApp's duplicate deliveries
}

type sentLookup struct {
	origin    int
	key       id.ID
	delivered bool
	correct   bool
	at        int
	hops      int
	// For traced lookups (hopApp): each hop by the step of the routing
	// procedure that chose it, and the route.
	leaf, table, rare int
	trace             []string
}

// grow builds the case's overlay, one join at a time, and lets it settle.
func (c overlayCase) grow() (*overlay, error) {
	cfg := core.SimConfig()
	cfg.B, cfg.LeafSetSize = c.B, c.L
	var topo simnet.Topology = simnet.NewPlane()
	if c.Topo == "constant" {
		topo = simnet.Constant(10 * time.Millisecond)
	}
	nw, err := simnet.New(simnet.Options{Seed: c.Seed, Node: cfg, Topology: topo})
	if err != nil {
		return nil, err
	}
	o := &overlay{c: c, nw: nw, lk: simnet.NewLookups(nw)}
	// Lookups numbers lookups 1, 2, ... in the order they are issued.
	o.lk.OnDeliver = func(at *simnet.Host, seq uint64, m *core.Message, correct bool) {
		if seq >= 1 && seq <= uint64(len(o.sent)) {
			s := o.sent[seq-1]
			s.delivered, s.correct, s.at, s.hops = true, correct, at.Index, int(m.Hops)
		}
	}
	if err := nw.Grow(c.N, c.Gap, o.lk); err != nil {
		return nil, err
	}
	nw.RunFor(settleTime)
	return o, nil
}

// allJoined reports nodes that are up but did not finish joining (they
// would be invisible to CheckLeafSets, which looks at joined nodes only).
func (o *overlay) allJoined() string {
	var bad []string
	for _, n := range o.nw.Nodes() {
		if n.Alive() && n.Status() != core.StatusJoined {
			bad = append(bad, fmt.Sprintf("node %d %s is %s", n.Index, n.Self().ID.Short(), n.Status()))
		}
	}
	if len(bad) > 0 {
		return "not every node joined: " + strings.Join(bad, ", ")
	}
	return ""
}

// liveNodes lists the indices of live joined nodes.
func (o *overlay) liveNodes() []int {
	var out []int
	for _, n := range o.nw.Nodes() {
		if n.Alive() && n.Status() == core.StatusJoined {
			out = append(out, n.Index)
		}
	}
	return out
}

// lookup routes a lookup for key from node origin: through simnet's
// Lookups, or as a traced message of hopApp once trace has been called.
func (o *overlay) lookup(origin int, key id.ID) error {
	o.sent = append(o.sent, &sentLookup{origin: origin, key: key})
	var err error
	if o.traced {
		p := make([]byte, 8)
		binary.BigEndian.PutUint64(p, uint64(len(o.sent)))
		err = o.nw.RouteFrom(origin, core.Message{Key: key, App: hopAppID, Payload: p})
	} else {
		_, err = o.lk.Lookup(origin, key)
	}
	if err != nil {
		return fmt.Errorf("lookup %s from node %d: %w", key.Short(), origin, err)
	}
	return nil
}

// hopAppID is the application hopApp registers under.
const hopAppID core.AppID = 0x5a5a

// trace registers hopApp on every node; later lookups go through it.
func (o *overlay) trace() error {
	for _, n := range o.nw.Nodes() {
		if _, err := n.RegisterApplication(hopAppID, &hopApp{o: o, n: n}); err != nil {
			return err
		}
	}
	o.traced = true
	return nil
}

// hopApp records, at every hop of a lookup, which step of the routing
// procedure chose the next hop, judged from the forwarding node's state at
// that moment (the Forward upcall runs as the node routes), and where the
// lookup was delivered.
type hopApp struct {
	o *overlay
	n *simnet.Host
}

func (a *hopApp) sent(m *core.Message) *sentLookup {
	if len(m.Payload) != 8 {
		return nil
	}
	if seq := binary.BigEndian.Uint64(m.Payload); seq >= 1 && seq <= uint64(len(a.o.sent)) {
		return a.o.sent[seq-1]
	}
	return nil
}

func (a *hopApp) Forward(m *core.Message, next *id.Handle) bool {
	s := a.sent(m)
	if s == nil {
		return true
	}
	st := a.n.State()
	b := st.B()
	k, self := plain(m.Key), plain(st.Self.ID)
	l := prefixLen(self, k, b)
	step := "leaf"
	switch {
	case st.Leaves.Covers(m.Key):
		s.leaf++
	default:
		if e, ok := st.Table.Get(l, k.digit(l, b)); ok && e.ID == next.ID {
			s.table++
			step = "table"
			break
		}
		s.rare++
		step = "rare case"
		for _, x := range a.o.nw.Live() {
			if prefixLen(plain(x), k, b) > l {
				step = fmt.Sprintf("rare case; table hole at row %d column %d, %s fits", l, k.digit(l, b), x.Short())
				break
			}
		}
	}
	s.trace = append(s.trace, fmt.Sprintf("%s (shares %d; %s)", self.id.Short(), l, step))
	return true
}

func (a *hopApp) Deliver(m *core.Message) {
	s := a.sent(m)
	if s == nil {
		return
	}
	if s.delivered {
		a.o.dups++
		return
	}
	root, _ := a.o.nw.Root(m.Key)
	s.delivered, s.at, s.hops = true, a.n.Index, int(m.Hops)
	s.correct = root != nil && root.Index == a.n.Index
	s.trace = append(s.trace, a.n.Self().ID.Short()+" (delivered)")
}

func (a *hopApp) Update(id.Handle, bool) {}

// lookups routes, from live nodes, a random key from every live node, and
// from random live nodes every live node's id, the ids one above and one
// below it, the two keys halfway between each pair of ring neighbours (an
// exact tie when the gap is even), and extra. All randomness comes from r.
func (o *overlay) lookups(r *rand.Rand, extra []id.ID) error {
	origins := o.liveNodes()
	if len(origins) == 0 {
		return fmt.Errorf("no live node")
	}
	from := func() int { return origins[r.IntN(len(origins))] }
	for _, i := range origins {
		if err := o.lookup(i, id.Random(r)); err != nil {
			return err
		}
	}
	live := o.nw.Live()
	one := big.NewInt(1)
	keys := append([]id.ID(nil), extra...)
	for i, x := range live {
		p := plain(x)
		keys = append(keys, x, fromBig(new(big.Int).Add(p.n, one)), fromBig(new(big.Int).Sub(p.n, one)))
		if len(live) > 1 {
			next := plain(live[(i+1)%len(live)])
			mid := new(big.Int).Add(p.n, new(big.Int).Rsh(clockwise(p, next), 1))
			keys = append(keys, fromBig(mid), fromBig(mid.Add(mid, one)))
		}
	}
	for _, k := range keys {
		if err := o.lookup(from(), k); err != nil {
			return err
		}
	}
	return nil
}

// checkDelivered reports lookups not delivered exactly once at the key's
// root, the live node numerically closest to it.
func (o *overlay) checkDelivered() string {
	var bad []string
	n := 0
	for _, s := range o.sent {
		if s.delivered && s.correct {
			continue
		}
		n++
		if len(bad) >= 3 {
			continue
		}
		root, _ := o.nw.Root(s.key)
		where := "never delivered"
		if s.delivered {
			where = fmt.Sprintf("delivered at node %d %s after %d hops", s.at, o.nw.Node(s.at).Self().ID.Short(), s.hops)
		}
		bad = append(bad, fmt.Sprintf("key %s from node %d %s: %s; root is node %d %s",
			s.key, s.origin, o.nw.Node(s.origin).Self().ID.Short(), where, root.Index, root.Self().ID.Short()))
	}
	if n > 0 {
		return fmt.Sprintf("%d of %d lookups missed the root: %s", n, len(o.sent), strings.Join(bad, "; "))
	}
	if d := o.lk.Dups + o.dups; d > 0 {
		return fmt.Sprintf("%d lookups delivered more than once", d)
	}
	return ""
}

// checkTables checks every live node's routing table twice over: with
// simnet's CheckTables, and with the plain model's reading of the row/column
// prefix invariant (realTable). It also reports entries that name no node
// of the network.
func (o *overlay) checkTables() string {
	if err := o.nw.CheckTables(); err != nil {
		return err.Error()
	}
	for _, n := range o.nw.Nodes() {
		if !n.Alive() {
			continue
		}
		if _, err := realTable(plain(n.Self().ID), n.State().Table); err != nil {
			return fmt.Sprintf("node %d: %v", n.Index, err)
		}
		var bad string
		n.State().Table.ForEach(func(r, c int, e routing.Entry) bool {
			if _, ok := o.nw.Lookup(e.ID); !ok {
				bad = fmt.Sprintf("node %d: table row %d column %d holds %s, which is no node", n.Index, r, c, e.ID)
				return false
			}
			return true
		})
		if bad != "" {
			return bad
		}
	}
	return ""
}

// failf formats a property failure with the case that reproduces it.
func failf(c fmt.Stringer, format string, args ...any) string {
	return fmt.Sprintf("%s: %s", c, fmt.Sprintf(format, args...))
}

// checkSettledLookups is property 1: after the joins settle, a lookup for
// any key from any node is delivered at the numerically closest live node.
func checkSettledLookups(c overlayCase) string {
	o, err := c.grow()
	if err != nil {
		return failf(c, "%v", err)
	}
	if bad := o.allJoined(); bad != "" {
		return failf(c, "%s", bad)
	}
	if err := o.lookups(rand.New(rand.NewPCG(c.Seed, 7)), nil); err != nil {
		return failf(c, "%v", err)
	}
	o.nw.RunFor(lookupWindow)
	if bad := o.checkDelivered(); bad != "" {
		return failf(c, "%s", bad)
	}
	return ""
}

// checkSettledLeafSets is property 2: every leaf set is the true L/2
// closest live nodes on each side.
func checkSettledLeafSets(c overlayCase) string {
	o, err := c.grow()
	if err != nil {
		return failf(c, "%v", err)
	}
	if bad := o.allJoined(); bad != "" {
		return failf(c, "%s", bad)
	}
	if bad := o.nw.CheckLeafSets(3); len(bad) > 0 {
		return failf(c, "%d leaf sets differ from the truth: %s", len(bad), strings.Join(bad, "; "))
	}
	return ""
}

// checkSettledTables is property 3: every routing-table entry satisfies
// the row/column prefix invariant (and names a node of the network).
func checkSettledTables(c overlayCase) string {
	o, err := c.grow()
	if err != nil {
		return failf(c, "%v", err)
	}
	if bad := o.checkTables(); bad != "" {
		return failf(c, "%s", bad)
	}
	return ""
}

// hopBound is ceil(log_{2^b} n) + 1, in integers.
func hopBound(n, b int) int {
	h := 0
	for p := 1; p < n; p <<= uint(b) {
		h++
	}
	return h + 1
}

// denseDigits is, for key, the smallest j such that at most half of the
// live nodes share j or more leading digits with key. Any node sharing j
// digits with key has a leaf set that covers key (the at most half nodes of
// that prefix lie within L/2 of it on each side). For a key whose prefix
// neighbourhood is as dense as the average, j <= ceil(log_{2^b} N).
func denseDigits(live []plainID, k plainID, b, half int) int {
	shared := make([]int, len(live))
	for i, x := range live {
		shared[i] = prefixLen(x, k, b)
	}
	for j := 0; ; j++ {
		n := 0
		for _, s := range shared {
			if s >= j {
				n++
			}
		}
		if n <= half {
			return j
		}
	}
}

// checkHopBound is property 5. The bound asked for, ceil(log_{2^b} N) + 1,
// does not hold by design (TestSettledOverlayHopBoundStrict, strict=true,
// shows counterexamples): the paper's ceil(log_{2^b} N) is the expected
// hop count, assuming complete routing tables. Two things break it:
//
//   - a key whose prefix neighbourhood holds more nodes than average needs
//     more digits before a leaf set covers it (denseDigits);
//   - the rare case: when no node shares one more digit with the key (or
//     the table has a hole), the route moves to numerically closer nodes
//     with the same prefix, up to L/2 nodes a hop.
//
// What the design does guarantee, and this checks for every lookup, is
// that the hops other than rare-case hops number at most
// max(ceil(log_{2^b} N), denseDigits) + 1: every routing-table hop gains a
// digit, a node sharing denseDigits digits covers the key, and a leaf-set
// hop goes straight to the root. That is the requested bound whenever the
// key's neighbourhood is no denser than average and the route needs no rare
// case. Hops are classified by hopApp as the nodes forward; they must add
// up to the hop count the lookup arrived with.
func checkHopBound(c overlayCase, strict bool) string {
	o, err := c.grow()
	if err != nil {
		return failf(c, "%v", err)
	}
	if bad := o.allJoined(); bad != "" {
		return failf(c, "%s", bad)
	}
	if err := o.trace(); err != nil {
		return failf(c, "%v", err)
	}
	if err := o.lookups(rand.New(rand.NewPCG(c.Seed, 8)), nil); err != nil {
		return failf(c, "%v", err)
	}
	o.nw.RunFor(lookupWindow)
	if bad := o.checkDelivered(); bad != "" {
		return failf(c, "%s", bad)
	}
	live := plainAll(o.nw.Live())
	logN := hopBound(len(live), c.B) - 1
	var bad []string
	n, hist := 0, []int{}
	for _, s := range o.sent {
		for len(hist) <= s.hops {
			hist = append(hist, 0)
		}
		hist[s.hops]++
		if s.leaf+s.table+s.rare != s.hops {
			return failf(c, "lookup %s from node %d took %d hops, but %d were seen forwarded: %s",
				s.key, s.origin, s.hops, s.leaf+s.table+s.rare, strings.Join(s.trace, " -> "))
		}
		var over string
		if bound := logN + 1; strict && s.hops > bound {
			over = fmt.Sprintf("%d hops > ceil(log_%d %d) + 1 = %d", s.hops, 1<<uint(c.B), len(live), bound)
		} else if d := denseDigits(live, plain(s.key), c.B, c.L/2); !strict && s.leaf+s.table > max(logN, d)+1 {
			over = fmt.Sprintf("%d leaf-set and table hops > max(ceil(log_%d %d) = %d, %d digits to a prefix at most L/2 nodes share) + 1",
				s.leaf+s.table, 1<<uint(c.B), len(live), logN, d)
		}
		if over != "" {
			n++
			if len(bad) < 3 {
				bad = append(bad, fmt.Sprintf("key %s from node %d: %s; route %s", s.key, s.origin, over, strings.Join(s.trace, " -> ")))
			}
		}
	}
	if n > 0 {
		return failf(c, "%d of %d lookups took too many hops (histogram %v): %s", n, len(o.sent), hist, strings.Join(bad, "; "))
	}
	return ""
}

func TestSettledOverlayRoutesToRoot(t *testing.T) {
	t.Parallel()
	checkProp(t, "after joins settle, every lookup reaches the numerically closest live node", simShrinks,
		prop.ForAll(checkSettledLookups, genOverlayCase()))
}

func TestSettledOverlayLeafSets(t *testing.T) {
	t.Parallel()
	checkProp(t, "after joins settle, every leaf set is the true L/2 closest on each side", simShrinks,
		prop.ForAll(checkSettledLeafSets, genOverlayCase()))
}

func TestSettledOverlayTables(t *testing.T) {
	t.Parallel()
	checkProp(t, "every routing-table entry satisfies the prefix invariant", simShrinks,
		prop.ForAll(checkSettledTables, genOverlayCase()))
}

func TestSettledOverlayHopBound(t *testing.T) {
	t.Parallel()
	checkProp(t, "hops other than rare-case hops never exceed max(ceil(log_2^b N), digits to a sparse prefix) + 1", simShrinks,
		prop.ForAll(func(c overlayCase) string { return checkHopBound(c, false) }, genOverlayCase()))
}

// TestSettledOverlayHopBoundStrict is property 5 as first stated: hops never
// exceed ceil(log_{2^b} N) + 1. It does not hold by design (it is the
// paper's expected hop count plus one, not a maximum), so it runs only with
// PASTRY_PROPTEST_STRICT_HOPS=1. Two counterexamples it found:
//
//	overlayCase{Seed: 0x15fc63b8a79100af, N: 42, B: 2, L: 4, Gap: 500 * time.Millisecond, Topo: "plane"}
//
// The lookup for key a2db3f83... (node a2db3f83's own id) from node 19
// takes 5 hops > ceil(log_4 42) + 1 = 4: four routing-table hops, each
// gaining one base-4 digit, then a leaf-set hop. 12 of the 42 nodes start
// with digit 2 (2.6 expected), 7 with 22, 4 with 220 and 2 with 2202, so
// only a node sharing four digits has a leaf set (L/2 = 2 a side) that
// covers the key. A dense prefix neighbourhood.
//
//	overlayCase{Seed: 0x9540bc4b524e5eae, N: 60, B: 4, L: 4, Gap: 2 * time.Second, Topo: "plane"}
//	(first found with PASTRY_PROPTEST_SEED=2)
//
// Key 5ff0e34e... from node 18: 4 hops > ceil(log_16 60) + 1 = 3: 35832381
// -table-> 55742319 -rare-> 59980fe6 -rare-> 5e750365 -leaf-> 616cc337.
// No node starts with 5f, so the route walks the 5 nodes numerically
// closer, L/2 at a time: the rare case.
func TestSettledOverlayHopBoundStrict(t *testing.T) {
	if os.Getenv("PASTRY_PROPTEST_STRICT_HOPS") == "" {
		t.Skip("the strict hop bound does not hold by design; set PASTRY_PROPTEST_STRICT_HOPS=1 to see counterexamples")
	}
	t.Parallel()
	checkProp(t, "hops never exceed ceil(log_2^b N) + 1", simShrinks,
		prop.ForAll(func(c overlayCase) string { return checkHopBound(c, true) }, genOverlayCase()))
}
