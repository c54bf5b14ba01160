package core

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// measuringEnv is an environment whose proximity costs a measurement
// (ProximityCache): Proximity counts the measurements it would start.
type measuringEnv struct {
	prox     map[id.ID]uint32 // the true proximities
	known    map[id.ID]bool   // measured already
	measured []id.ID          // measurements started
}

func (e *measuringEnv) Uint64() uint64 { return 7 }

func (e *measuringEnv) Proximity(h id.Handle) uint32 {
	if e.known[h.ID] {
		return e.prox[h.ID]
	}
	e.measured = append(e.measured, h.ID)
	return routing.UnknownProximity
}

func (e *measuringEnv) KnownProximity(h id.Handle) uint32 {
	if e.known[h.ID] {
		return e.prox[h.ID]
	}
	return routing.UnknownProximity
}

// A stranger that sends a message unasked is measured and probed only
// when something would take it without knowing its proximity (the leaf
// set, an empty table slot), or when its proximity is known already and
// earns it a place. One that could only compete with a slot's occupant by
// a proximity not yet known costs nothing: no measurement, no probe.
func TestStrangersMeasuredOnlyWhenWanted(t *testing.T) {
	cfg := SimConfig()
	cfg.NeighborhoodSize = 0 // the table's and the leaf set's choices only
	self := id.Handle{ID: id.MustParse("80000000000000000000000000000000"), Addr: "self"}
	env := &measuringEnv{prox: map[id.ID]uint32{}, known: map[id.ID]bool{}}
	n, err := NewMachine(cfg, self, env)
	if err != nil {
		t.Fatal(err)
	}
	// A full leaf set and many table entries, proximity 20 ms, known.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		h := id.Handle{ID: id.Random(rng), Addr: fmt.Sprint("held-", i)}
		env.prox[h.ID], env.known[h.ID] = 20000, true
		n.state.Consider(routing.Entry{Handle: h, Prox: 20000})
	}
	if n.state.Leaves.Len() < cfg.LeafSetSize {
		t.Fatalf("leaf set of %d, want it full", n.state.Leaves.Len())
	}
	// Strangers far from self in the id space: the leaf set does not want
	// them. full: its row-0 slot (first digit 1) is taken; hole: the slot
	// of a digit no held entry has.
	full := id.Handle{ID: id.MustParse("1fffffffffffffffffffffffffffff01"), Addr: "full"}
	if _, taken := n.state.Table.Get(0, 1); !taken {
		t.Fatal("row 0, digit 1 is empty")
	}
	var hole id.Handle
	for r := 1; r < 32 && hole.Addr == ""; r++ {
		for c := range 1 << cfg.B {
			s := self.ID.String()[:r] + fmt.Sprintf("%x", c) + "0123456789abcdef0123456789abcdef"
			x := id.MustParse(s[:32])
			if _, taken := n.state.Table.Get(r, c); !taken && c != self.ID.Digit(r, cfg.B) && !n.state.Leaves.Wants(x) {
				hole = id.Handle{ID: x, Addr: "hole"}
				break
			}
		}
	}
	if hole.Addr == "" || n.state.Leaves.Wants(hole.ID) || n.state.Leaves.Wants(full.ID) {
		t.Fatalf("no hole found (%v), or the leaf set wants a stranger (%v, %v); table size %d", hole, n.state.Leaves.Wants(hole.ID), n.state.Leaves.Wants(full.ID), n.state.Table.Size())
	}
	env.prox[full.ID], env.prox[hole.ID] = 1, 1 // both far closer than the occupants

	n.probeStranger(full, false)
	if len(env.measured) != 0 || n.probes[full.ID] != nil {
		t.Fatalf("stranger for a full slot, proximity unknown: measured %v, probed %v; want neither", env.measured, n.probes[full.ID] != nil)
	}
	n.probeStranger(hole, false)
	if n.probes[hole.ID] == nil {
		t.Fatal("stranger for an empty slot: not probed")
	}
	env.known[full.ID] = true // measured since (it was a stranger of another kind, say)
	n.probeStranger(full, false)
	if n.probes[full.ID] == nil {
		t.Fatal("stranger for a full slot, known to be closer than its occupant: not probed")
	}
	// Without the cache (the simulator's environment) the proximity is
	// asked, and free.
	plain, err := NewMachine(cfg, self, fixedEnv{prox: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		plain.state.Consider(routing.Entry{Handle: id.Handle{ID: id.Random(rng), Addr: fmt.Sprint("held-", i)}, Prox: 20000})
	}
	plain.probeStranger(full, false)
	if plain.probes[full.ID] == nil {
		t.Fatal("simulator's environment: a closer stranger for a full slot not probed")
	}
}
