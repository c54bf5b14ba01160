package proptest

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// nextHopCase is one random routing state: N other nodes, each offered to
// some of the state's structures, around a random self.
type nextHopCase struct {
	Seed uint64
	N    int // other nodes generated (some are only used as keys)
	B    int
	L    int
	M    int
}

func (c nextHopCase) String() string {
	return fmt.Sprintf("nextHopCase{Seed: %#x, N: %d, B: %d, L: %d, M: %d}", c.Seed, c.N, c.B, c.L, c.M)
}

func genNextHopCase() gopter.Gen {
	return gen.Struct(reflect.TypeOf(nextHopCase{}), map[string]gopter.Gen{
		"Seed": gen.UInt64().WithShrinker(gopter.NoShrinker),
		// Half the cases have at most 34 other nodes: overlays smaller than
		// L+1 are common for the larger L.
		"N": gen.OneGenOf(gen.IntRange(0, 34), gen.IntRange(0, 200)),
		"B": gen.OneConstOf(1, 2, 4, 8),
		"L": gen.OneConstOf(2, 4, 8, 16, 32),
		"M": gen.OneConstOf(0, 8, 32),
	})
}

// TestNextHopMatchesModel is property 6: routing.State.NextHop agrees with
// the paper's procedure, read plainly, on random states and keys.
func TestNextHopMatchesModel(t *testing.T) {
	t.Parallel()
	checkProp(t, "NextHop agrees with the brute-force model", -1,
		prop.ForAll(checkNextHop, genNextHopCase()))
}

// offer modes: which structures a generated node is offered to.
const (
	offerAll       = iota // State.Consider: all three
	offerLeaves           // LeafSet.Consider only
	offerTable            // RoutingTable.Consider only
	offerNeighbors        // NeighborhoodSet.Consider only
	offerNone             // never offered: a node this state does not know
)

// randomIDs draws n distinct ids other than self from r. Many are made to
// share long prefixes with self or to sit close to it or to the ring's
// wrap point, so that deep table rows, leaf-range edges and wrap-around
// arithmetic all get exercised.
func randomIDs(r *rand.Rand, self id.ID, n int) []id.ID {
	seen := map[id.ID]bool{self: true}
	out := make([]id.ID, 0, n)
	for len(out) < n {
		var x id.ID
		switch k := r.IntN(20); {
		case k < 10:
			x = id.Random(r)
		case k < 15: // shares the first s bits with self
			s := 1 + r.IntN(40)
			x = fromBits(plain(self).bits[:s] + plain(id.Random(r)).bits[s:])
		case k < 18: // self plus or minus a small offset
			off := new(big.Int).SetUint64(r.Uint64() >> uint(r.IntN(64)))
			if r.IntN(2) == 0 {
				off.Neg(off)
			}
			x = fromBig(off.Add(off, plain(self).n))
		default: // near 0 on either side
			off := new(big.Int).SetUint64(r.Uint64() >> uint(r.IntN(64)))
			if r.IntN(2) == 0 {
				off.Neg(off)
			}
			x = fromBig(off)
		}
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// fromBits parses 128 binary digits.
func fromBits(s string) id.ID {
	n, ok := new(big.Int).SetString(s, 2)
	if !ok || len(s) != id.Bits {
		panic("fromBits: " + s)
	}
	return fromBig(n)
}

// fromBig reduces n mod 2^128 and returns it as an id.
func fromBig(n *big.Int) id.ID {
	m := new(big.Int).Mod(n, ringSize)
	var x id.ID
	m.FillBytes(x[:])
	return x
}

type offer struct {
	e    routing.Entry
	mode int
}

// nextHopFixture is a built state with its model.
type nextHopFixture struct {
	st     *routing.State
	model  *modelState
	known  []id.ID // offered to at least one structure
	others []id.ID // every generated id
}

// buildNextHopFixture builds a routing.State from the case, and the model
// of what it should hold, computed in closed form from the offers (each
// node is offered at most once to each structure):
//   - leaf set: the L/2 closest offered nodes on each side;
//   - routing table: per cell, the first offered node of least proximity
//     (a node takes a cell only from a strictly farther one);
//   - neighbourhood set: the M offered nodes of least known proximity,
//     earlier offers first among equals.
func buildNextHopFixture(c nextHopCase) (*nextHopFixture, error) {
	idr := rand.New(rand.NewPCG(c.Seed, 1))
	offr := rand.New(rand.NewPCG(c.Seed, 2))
	self := id.Random(idr)
	others := randomIDs(idr, self, c.N)

	offers := make([]offer, len(others))
	for i, x := range others {
		o := offer{e: routing.Entry{Handle: id.Handle{ID: x}, Prox: uint32(offr.IntN(64))}}
		if offr.IntN(5) == 0 {
			o.e.Prox = routing.UnknownProximity
		}
		switch k := offr.IntN(20); {
		case k < 13:
			o.mode = offerAll
		case k < 15:
			o.mode = offerLeaves
		case k < 17:
			o.mode = offerTable
		case k < 19:
			o.mode = offerNeighbors
		default:
			o.mode = offerNone
		}
		offers[i] = o
	}
	offr.Shuffle(len(offers), func(i, j int) { offers[i], offers[j] = offers[j], offers[i] })

	st, err := routing.NewState(id.Handle{ID: self}, c.B, c.L, c.M)
	if err != nil {
		return nil, err
	}
	ps := plain(self)
	m := &modelState{self: ps, b: c.B, l: c.L, table: map[[2]int]plainID{}}
	var leafOffered, nbrOffered []offer
	tableProx := map[[2]int]uint32{}
	var known []id.ID
	for _, o := range offers {
		switch o.mode {
		case offerAll:
			st.Consider(o.e)
		case offerLeaves:
			st.Leaves.Consider(o.e)
		case offerTable:
			st.Table.Consider(o.e)
		case offerNeighbors:
			st.Neighbors.Consider(o.e)
		}
		if o.mode != offerNone {
			known = append(known, o.e.ID)
		}
		if o.mode == offerAll || o.mode == offerLeaves {
			leafOffered = append(leafOffered, o)
		}
		if o.mode == offerAll || o.mode == offerTable {
			x := plain(o.e.ID)
			row := prefixLen(ps, x, c.B)
			cell := [2]int{row, x.digit(row, c.B)}
			if p, ok := tableProx[cell]; !ok || o.e.Prox < p {
				m.table[cell], tableProx[cell] = x, o.e.Prox
			}
		}
		if (o.mode == offerAll || o.mode == offerNeighbors) && o.e.Prox != routing.UnknownProximity {
			nbrOffered = append(nbrOffered, o)
		}
	}
	var lp []plainID
	for _, o := range leafOffered {
		lp = append(lp, plain(o.e.ID))
	}
	m.left = closestSide(ps, lp, c.L/2, false)
	m.right = closestSide(ps, lp, c.L/2, true)
	slices.SortStableFunc(nbrOffered, func(a, b offer) int { return int(a.e.Prox) - int(b.e.Prox) })
	for _, o := range nbrOffered[:min(c.M, len(nbrOffered))] {
		m.neighbors = append(m.neighbors, plain(o.e.ID))
	}
	return &nextHopFixture{st: st, model: m, known: known, others: others}, nil
}

// compareStructures reports how the built state differs from the model's
// closed form, if it does.
func compareStructures(st *routing.State, m *modelState) string {
	if got, want := entryIDs(st.Leaves.Left()), idsOf(m.left); !slices.Equal(got, want) {
		return fmt.Sprintf("leaf set left side %s, model %s", shortIDs(got), shortIDs(want))
	}
	if got, want := entryIDs(st.Leaves.Right()), idsOf(m.right); !slices.Equal(got, want) {
		return fmt.Sprintf("leaf set right side %s, model %s", shortIDs(got), shortIDs(want))
	}
	tab, err := realTable(m.self, st.Table)
	if err != nil {
		return err.Error()
	}
	for cell, x := range m.table {
		if y, ok := tab[cell]; !ok || y.id != x.id {
			return fmt.Sprintf("table cell %v holds %s (present %v), model %s", cell, y.id.Short(), ok, x.id.Short())
		}
	}
	if len(tab) != len(m.table) || st.Table.Size() != len(m.table) {
		return fmt.Sprintf("table has %d cells (Size %d), model %d", len(tab), st.Table.Size(), len(m.table))
	}
	if got, want := entryIDs(st.Neighbors.Members()), idsOf(m.neighbors); !slices.Equal(got, want) {
		return fmt.Sprintf("neighbourhood set %s, model %s", shortIDs(got), shortIDs(want))
	}
	return ""
}

// testKeys returns keys worth routing from this state: random ones, node
// ids (self, known and unknown nodes) and their neighbours, the edges of the
// leaf-set range, keys aimed at every kind of routing-table cell, exact
// ties between two nodes, and the point opposite self.
func testKeys(r *rand.Rand, f *nextHopFixture) []id.ID {
	m := f.model
	keys := []id.ID{m.self.id, fromBig(new(big.Int).Add(m.self.n, new(big.Int).Rsh(ringSize, 1)))}
	for range 8 {
		keys = append(keys, id.Random(r))
	}
	pick := func(xs []id.ID) (id.ID, bool) {
		if len(xs) == 0 {
			return id.ID{}, false
		}
		return xs[r.IntN(len(xs))], true
	}
	for range 10 {
		if x, ok := pick(f.known); ok {
			keys = append(keys, x)
		}
		if x, ok := pick(f.others); ok {
			keys = append(keys, x)
		}
	}
	one := big.NewInt(1)
	for range 4 {
		x := m.self
		if y, ok := pick(f.known); ok && r.IntN(3) > 0 {
			x = plain(y)
		}
		keys = append(keys, fromBig(new(big.Int).Add(x.n, one)), fromBig(new(big.Int).Sub(x.n, one)))
	}
	if len(m.left) > 0 {
		lo, hi := m.left[len(m.left)-1], m.right[len(m.right)-1]
		for _, x := range []plainID{lo, hi} {
			keys = append(keys, x.id, fromBig(new(big.Int).Add(x.n, one)), fromBig(new(big.Int).Sub(x.n, one)))
		}
	}
	// Cell keys: self's first row digits, then digit col, then random.
	for range 10 {
		rows := min(id.Digits(m.b), 24)
		row, col := r.IntN(rows), r.IntN(1<<uint(m.b))
		bits := fmt.Sprintf("%0*b", m.b, col)
		keys = append(keys, fromBits(m.self.bits[:row*m.b]+bits+plain(id.Random(r)).bits[(row+1)*m.b:]))
	}
	// Ties: the midpoints of both arcs between two nodes (exactly halfway
	// when the arc's length is even, one off otherwise).
	for range 6 {
		a, b := m.self, m.self
		if x, ok := pick(f.known); ok {
			a = plain(x)
		}
		if x, ok := pick(f.known); ok {
			b = plain(x)
		}
		half := new(big.Int).Rsh(clockwise(a, b), 1)
		keys = append(keys, fromBig(new(big.Int).Add(a.n, half)))
		half = new(big.Int).Rsh(clockwise(b, a), 1)
		keys = append(keys, fromBig(new(big.Int).Add(b.n, half)))
	}
	return keys
}

// checkNextHop builds the case's state and compares NextHop with the model
// for every test key, with no skipped nodes, with a random skip set, and
// with the model's own first choice skipped.
func checkNextHop(c nextHopCase) string {
	f, err := buildNextHopFixture(c)
	if err != nil {
		return err.Error()
	}
	if d := compareStructures(f.st, f.model); d != "" {
		return c.String() + ": built state differs from the model: " + d
	}
	r := rand.New(rand.NewPCG(c.Seed, 3))
	skipRate := []float64{0, 0.2, 0.6}[r.IntN(3)]
	skipped := map[id.ID]bool{}
	for _, x := range f.known {
		if r.Float64() < skipRate {
			skipped[x] = true
		}
	}
	randomSkip := func(x id.ID) bool { return skipped[x] }
	var fails []string
	for _, key := range testKeys(r, f) {
		want, wantFwd := f.model.nextHop(key, nil)
		skips := []struct {
			name string
			fn   routing.SkipFunc
		}{
			{"no skip", nil},
			{fmt.Sprintf("skip %d of %d known", len(skipped), len(f.known)), randomSkip},
		}
		if wantFwd {
			first := want
			skips = append(skips, struct {
				name string
				fn   routing.SkipFunc
			}{"skip " + first.Short(), func(x id.ID) bool { return x == first }})
		}
		for _, s := range skips {
			mw, mf := f.model.nextHop(key, s.fn)
			h, fwd := f.st.NextHop(key, s.fn)
			if fwd != mf || fwd && h.ID != mw {
				fails = append(fails, fmt.Sprintf("key %s (%s): NextHop = (%s, %v), model (%s, %v)%s",
					key, s.name, h.ID.Short(), fwd, mw.Short(), mf, describeRoute(f.model, key)))
			}
		}
		if len(fails) >= 3 {
			break
		}
	}
	if len(fails) > 0 {
		return fmt.Sprintf("%s self %s, leaves %d (left %s right %s), table %d, neighbours %d:\n  %s",
			c, f.model.self.id.Short(), len(f.model.leafMembers()), shortIDs(idsOf(f.model.left)), shortIDs(idsOf(f.model.right)),
			len(f.model.table), len(f.model.neighbors), strings.Join(fails, "\n  "))
	}
	return ""
}

// describeRoute says which step of the procedure the model took for key.
func describeRoute(m *modelState, key id.ID) string {
	d := plain(key)
	if m.inLeafRange(d) {
		return fmt.Sprintf(" [model: in leaf range, covers all %v]", m.coversAll())
	}
	l := prefixLen(d, m.self, m.b)
	x, ok := m.table[[2]int{l, d.digit(l, m.b)}]
	return fmt.Sprintf(" [model: prefix %d, cell (%d,%d) = %s %v]", l, l, d.digit(l, m.b), x.id.Short(), ok)
}
