package proptest

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The metamorphic test runs random sequences of operations on one
// routing.State, as the protocol core would issue them, and after every
// operation compares the state with a model:
//
//   - consider(x, prox): State.Consider, a node heard of or from;
//   - remove(x): State.Remove, a node declared failed;
//   - repair: every present node offered again (what the core's leaf-set
//     repair achieves by asking the farthest leaves for their leaf sets).
//
// The leaf set's model is kept per side, and is as plain as it gets: a
// side is the L/2 nearest (in its direction) of the nodes offered to it
// that it still holds, plus the new one; a removal deletes and nothing
// refills the gap, because a leaf set cannot recall a node it has pushed
// out. Where that gap cannot exist (no removal since the start or the last
// repair) the model is the literal one: the L/2 closest present nodes on
// each side. Routing-table entries must satisfy the prefix invariant and be
// present nodes with their latest entry; NextHop must agree with the
// plain routing procedure over the model's leaf set and the real table and
// neighbourhood set.

// mmConfig is a sequence's fixed setting.
type mmConfig struct {
	seed     uint64
	self     id.ID
	b, l, m  int
	universe []id.ID // the nodes operations draw from; may include self
}

// mmModel is the model state: immutable, NextState returns a new one.
type mmModel struct {
	cfg         *mmConfig
	present     map[id.ID]routing.Entry // offered and not removed since
	left, right []routing.Entry         // the leaf set's sides, nearest first
	// removedSinceRepair is true when a leaf may be missing that a repair
	// would restore.
	removedSinceRepair bool
	// What the last operation must have returned.
	wantAdded   bool
	wantEvicted []id.ID
	wantWasLeaf bool
}

func (m *mmModel) String() string {
	c := m.cfg
	return fmt.Sprintf("seed=%#x self=%s b=%d L=%d M=%d universe=%d", c.seed, c.self.Short(), c.b, c.l, c.m, len(c.universe))
}

func (m *mmModel) clone() *mmModel {
	n := *m
	n.present = make(map[id.ID]routing.Entry, len(m.present))
	for k, v := range m.present {
		n.present[k] = v
	}
	n.left, n.right = slices.Clone(m.left), slices.Clone(m.right)
	n.wantAdded, n.wantEvicted, n.wantWasLeaf = false, nil, false
	return &n
}

func (m *mmModel) memberIDs() []id.ID {
	var out []id.ID
	for _, e := range append(slices.Clone(m.left), m.right...) {
		if !slices.Contains(out, e.ID) {
			out = append(out, e.ID)
		}
	}
	return out
}

// nearest returns the half entries of es nearest to self in one direction.
func (m *mmModel) nearest(es []routing.Entry, cw bool) []routing.Entry {
	self := plain(m.cfg.self)
	ps := make([]plainID, len(es))
	byID := map[id.ID]routing.Entry{}
	for i, e := range es {
		ps[i] = plain(e.ID)
		byID[e.ID] = e
	}
	var out []routing.Entry
	for _, p := range closestSide(self, ps, m.cfg.l/2, cw) {
		out = append(out, byID[p.id])
	}
	return out
}

// withEntry returns side with e added, or replacing the entry of its id.
func withEntry(side []routing.Entry, e routing.Entry) []routing.Entry {
	out := slices.DeleteFunc(slices.Clone(side), func(x routing.Entry) bool { return x.ID == e.ID })
	return append(out, e)
}

func (m *mmModel) considered(e routing.Entry) *mmModel {
	n := m.clone()
	if e.ID == m.cfg.self {
		return n // a node never considers itself
	}
	before := m.memberIDs()
	n.present[e.ID] = e
	n.left = n.nearest(withEntry(m.left, e), false)
	n.right = n.nearest(withEntry(m.right, e), true)
	after := n.memberIDs()
	n.wantAdded = !slices.Contains(before, e.ID) && slices.Contains(after, e.ID)
	for _, x := range before {
		if !slices.Contains(after, x) {
			n.wantEvicted = append(n.wantEvicted, x)
		}
	}
	return n
}

func (m *mmModel) removed(x id.ID) *mmModel {
	n := m.clone()
	n.wantWasLeaf = slices.Contains(m.memberIDs(), x)
	delete(n.present, x)
	drop := func(e routing.Entry) bool { return e.ID == x }
	n.left = slices.DeleteFunc(n.left, drop)
	n.right = slices.DeleteFunc(n.right, drop)
	n.removedSinceRepair = n.removedSinceRepair || n.wantWasLeaf
	return n
}

// repaired is the literal model: after every present node is offered again,
// each side is the L/2 closest present nodes.
func (m *mmModel) repaired() *mmModel {
	n := m.clone()
	all := n.presentEntries()
	n.left, n.right = n.nearest(all, false), n.nearest(all, true)
	n.removedSinceRepair = false
	return n
}

// presentEntries lists present nodes in universe order (deterministic).
func (m *mmModel) presentEntries() []routing.Entry {
	var out []routing.Entry
	for _, x := range m.cfg.universe {
		if e, ok := m.present[x]; ok {
			out = append(out, e)
		}
	}
	return out
}

// mmSnapshot is what an operation returned and the state it left, read
// through the public API.
type mmSnapshot struct {
	added       bool
	evicted     []id.ID
	wasLeaf     bool
	left, right []routing.Entry
	leafLen     int
	complete    bool
	contains    map[id.ID]bool
	table       map[[2]int]plainID
	tableEntry  map[id.ID]routing.Entry
	tableErr    error
	tableSize   int
	neighbors   []routing.Entry
	hops        []mmHop
}

type mmHop struct {
	key    id.ID
	next   id.ID
	fwd    bool
	covers bool
}

func snapshot(st *routing.State, keys, universe []id.ID) *mmSnapshot {
	s := &mmSnapshot{
		left: slices.Clone(st.Leaves.Left()), right: slices.Clone(st.Leaves.Right()),
		leafLen: st.Leaves.Len(), complete: st.Leaves.Complete(),
		contains: map[id.ID]bool{}, tableEntry: map[id.ID]routing.Entry{},
		tableSize: st.Table.Size(), neighbors: slices.Clone(st.Neighbors.Members()),
	}
	for _, x := range universe {
		s.contains[x] = st.Leaves.Contains(x)
	}
	s.table, s.tableErr = realTable(plain(st.Self.ID), st.Table)
	st.Table.ForEach(func(_, _ int, e routing.Entry) bool { s.tableEntry[e.ID] = e; return true })
	for _, k := range keys {
		h, fwd := st.NextHop(k, nil)
		s.hops = append(s.hops, mmHop{key: k, next: h.ID, fwd: fwd, covers: st.Leaves.Covers(k)})
	}
	return s
}

// check compares a snapshot with the model after the operation.
func (m *mmModel) check(s *mmSnapshot, op string) *gopter.PropResult {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	switch {
	case strings.HasPrefix(op, "consider"):
		slices.SortFunc(s.evicted, func(a, b id.ID) int { return a.Cmp(b) })
		want := slices.SortedFunc(slices.Values(m.wantEvicted), func(a, b id.ID) int { return a.Cmp(b) })
		if s.added != m.wantAdded || !slices.Equal(s.evicted, want) {
			fail("Consider returned added=%v evicted=%s, model added=%v evicted=%s", s.added, shortIDs(s.evicted), m.wantAdded, shortIDs(want))
		}
	case strings.HasPrefix(op, "remove"):
		if s.wasLeaf != m.wantWasLeaf {
			fail("Remove returned wasLeaf=%v, model %v", s.wasLeaf, m.wantWasLeaf)
		}
	}

	// The leaf set, side by side, entries and all.
	if !slices.Equal(s.left, m.left) {
		fail("left side %s, model %s", shortIDs(entryIDs(s.left)), shortIDs(entryIDs(m.left)))
	}
	if !slices.Equal(s.right, m.right) {
		fail("right side %s, model %s", shortIDs(entryIDs(s.right)), shortIDs(entryIDs(m.right)))
	}
	if !m.removedSinceRepair {
		all := m.presentEntries()
		wl, wr := entryIDs(m.nearest(all, false)), entryIDs(m.nearest(all, true))
		if gl, gr := entryIDs(s.left), entryIDs(s.right); !slices.Equal(gl, wl) || !slices.Equal(gr, wr) {
			fail("leaf set left %s right %s, but the L/2 closest present nodes are left %s right %s",
				shortIDs(gl), shortIDs(gr), shortIDs(wl), shortIDs(wr))
		}
	}
	members := m.memberIDs()
	if s.leafLen != len(members) {
		fail("leaf set Len %d, model %d members", s.leafLen, len(members))
	}
	if want := len(m.left) == m.cfg.l/2 && len(m.right) == m.cfg.l/2; s.complete != want {
		fail("leaf set Complete %v, model %v", s.complete, want)
	}
	for x, got := range s.contains {
		if got != slices.Contains(members, x) {
			fail("leaf set Contains(%s) = %v, model %v", x.Short(), got, !got)
		}
	}

	// The routing table: the prefix invariant, and only present nodes with
	// their latest entry.
	if s.tableErr != nil {
		fail("%v", s.tableErr)
	}
	if s.tableSize != len(s.tableEntry) {
		fail("table Size %d, but it holds %d entries", s.tableSize, len(s.tableEntry))
	}
	for x, e := range s.tableEntry {
		if p, ok := m.present[x]; !ok || p != e {
			fail("table holds %s (prox %d), present %v with %+v", x.Short(), e.Prox, ok, p)
		}
	}

	// The neighbourhood set: at most M present nodes of known proximity,
	// nearest first.
	if len(s.neighbors) > m.cfg.m {
		fail("neighbourhood set holds %d, M = %d", len(s.neighbors), m.cfg.m)
	}
	for i, e := range s.neighbors {
		if _, ok := m.present[e.ID]; !ok || e.Prox == routing.UnknownProximity || i > 0 && e.Prox < s.neighbors[i-1].Prox {
			fail("neighbourhood set %d: %s prox %d (present %v)", i, e.ID.Short(), e.Prox, ok)
		}
	}

	// Routing over the model's leaf set and the table and neighbourhood
	// set as they are.
	ms := &modelState{self: plain(m.cfg.self), b: m.cfg.b, l: m.cfg.l, table: s.table}
	for _, e := range m.left {
		ms.left = append(ms.left, plain(e.ID))
	}
	for _, e := range m.right {
		ms.right = append(ms.right, plain(e.ID))
	}
	for _, e := range s.neighbors {
		ms.neighbors = append(ms.neighbors, plain(e.ID))
	}
	for _, h := range s.hops {
		if want := ms.inLeafRange(plain(h.key)); h.covers != want {
			fail("Covers(%s) = %v, model %v", h.key, h.covers, want)
		}
		next, fwd := ms.nextHop(h.key, nil)
		if h.fwd != fwd || fwd && h.next != next {
			fail("NextHop(%s) = (%s, %v), model (%s, %v)%s", h.key, h.next.Short(), h.fwd, next.Short(), fwd, describeRoute(ms, h.key))
		}
	}

	if len(bad) > 0 {
		return gopter.NewPropResult(false, fmt.Sprintf("after %s: %s", op, strings.Join(bad, "; ")))
	}
	return &gopter.PropResult{Status: gopter.PropTrue}
}

// mmCmd is one operation. Its keys are routed after it, to compare NextHop.
type mmCmd struct {
	kind  string // "consider", "remove", "repair"
	e     routing.Entry
	keys  []id.ID
	cfg   *mmConfig
	label string
}

func (c *mmCmd) String() string { return c.label }

func (c *mmCmd) Run(sut commands.SystemUnderTest) commands.Result {
	u := sut.(*mmSUT)
	st := u.st
	var s *mmSnapshot
	switch c.kind {
	case "consider":
		added, ev := st.Consider(c.e)
		if c.e.ID != st.Self.ID {
			u.present[c.e.ID] = c.e
		}
		s = snapshot(st, c.keys, c.cfg.universe)
		s.added, s.evicted = added, entryIDs(ev)
	case "remove":
		was := st.Remove(c.e.ID)
		delete(u.present, c.e.ID)
		s = snapshot(st, c.keys, c.cfg.universe)
		s.wasLeaf = was
	case "repair":
		for _, x := range c.cfg.universe {
			if e, ok := u.present[x]; ok {
				st.Consider(e)
			}
		}
		s = snapshot(st, c.keys, c.cfg.universe)
	}
	return s
}

func (c *mmCmd) NextState(state commands.State) commands.State {
	m := state.(*mmModel)
	switch c.kind {
	case "consider":
		return m.considered(c.e)
	case "remove":
		return m.removed(c.e.ID)
	default:
		return m.repaired()
	}
}

func (c *mmCmd) PreCondition(commands.State) bool { return true }

func (c *mmCmd) PostCondition(state commands.State, result commands.Result) *gopter.PropResult {
	return state.(*mmModel).check(result.(*mmSnapshot), c.label)
}

// mmSUT is the state under test. The repair operation needs to know which
// nodes are present, as the core learns them from other nodes; the SUT
// keeps that list itself.
type mmSUT struct {
	st      *routing.State
	present map[id.ID]routing.Entry
}

// mmKeys derives the keys routed after an operation: a universe id, its
// two neighbours on the ring, self, and a random key.
func mmKeys(cfg *mmConfig, probe uint64) []id.ID {
	r := rand.New(rand.NewPCG(probe, 5))
	x := plain(cfg.universe[r.IntN(len(cfg.universe))])
	one := big.NewInt(1)
	return []id.ID{x.id, fromBig(new(big.Int).Add(x.n, one)), fromBig(new(big.Int).Sub(x.n, one)), cfg.self, id.Random(r)}
}

func genMMInitial() gopter.Gen {
	return func(p *gopter.GenParameters) *gopter.GenResult {
		c := &mmConfig{
			seed: p.NextUint64(),
			b:    []int{1, 2, 4, 8}[p.Rng.Intn(4)],
			l:    []int{2, 4, 8, 16, 32}[p.Rng.Intn(5)],
			m:    []int{0, 4, 16}[p.Rng.Intn(3)],
		}
		r := rand.New(rand.NewPCG(c.seed, 4))
		c.self = id.Random(r)
		c.universe = randomIDs(r, c.self, 1+r.IntN(3*c.l+8))
		if r.IntN(4) == 0 {
			c.universe = append(c.universe, c.self)
		}
		return gopter.NewGenResult(&mmModel{cfg: c, present: map[id.ID]routing.Entry{}}, gopter.NoShrinker)
	}
}

func genMMCommand(state commands.State) gopter.Gen {
	m := state.(*mmModel)
	cfg := m.cfg
	n := len(cfg.universe)
	var presentIdx []int
	for i, x := range cfg.universe {
		if _, ok := m.present[x]; ok {
			presentIdx = append(presentIdx, i)
		}
	}
	prox := gen.OneGenOf(gen.UInt32Range(0, 15), gen.Const(uint32(routing.UnknownProximity)))
	consider := gopter.CombineGens(gen.IntRange(0, n-1), prox, gen.UInt64()).Map(func(v []interface{}) commands.Command {
		i, px := v[0].(int), v[1].(uint32)
		e := routing.Entry{Handle: id.Handle{ID: cfg.universe[i]}, Prox: px}
		return &mmCmd{kind: "consider", e: e, keys: mmKeys(cfg, v[2].(uint64)), cfg: cfg,
			label: fmt.Sprintf("consider(%d:%s prox=%d)", i, e.ID.Short(), px)}
	})
	remove := gopter.CombineGens(gen.IntRange(0, 4*n-1), gen.UInt64()).Map(func(v []interface{}) commands.Command {
		i := v[0].(int) % n
		if len(presentIdx) > 0 && v[0].(int) >= n { // mostly remove present nodes
			i = presentIdx[v[0].(int)%len(presentIdx)]
		}
		x := cfg.universe[i]
		return &mmCmd{kind: "remove", e: routing.Entry{Handle: id.Handle{ID: x}}, keys: mmKeys(cfg, v[1].(uint64)), cfg: cfg,
			label: fmt.Sprintf("remove(%d:%s)", i, x.Short())}
	})
	repair := gen.UInt64().Map(func(probe uint64) commands.Command {
		return &mmCmd{kind: "repair", keys: mmKeys(cfg, probe), cfg: cfg, label: "repair"}
	})
	return gen.Weighted([]gen.WeightedGen{
		{Weight: 12, Gen: consider},
		{Weight: 5, Gen: remove},
		{Weight: 1, Gen: repair},
	})
}

// TestMetamorphicRoutingState is the metamorphic property: random
// Consider/Remove/repair sequences against the model.
func TestMetamorphicRoutingState(t *testing.T) {
	t.Parallel()
	cmds := &commands.ProtoCommands{
		NewSystemUnderTestFunc: func(initial commands.State) commands.SystemUnderTest {
			m := initial.(*mmModel)
			st, err := routing.NewState(id.Handle{ID: m.cfg.self}, m.cfg.b, m.cfg.l, m.cfg.m)
			if err != nil {
				panic(err) // the generator only makes valid configs
			}
			return &mmSUT{st: st, present: map[id.ID]routing.Entry{}}
		},
		InitialStateGen: genMMInitial(),
		GenCommandFunc:  genMMCommand,
	}
	checkProp(t, "Consider/Remove sequences match the model", -1, commands.Prop(cmds))
}
