package simnet

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWakeHeapAgainstBruteForce drives the wake-up heap with random sets,
// moves and removals and checks, after each, that its top is the earliest
// (at, seq) of a plain map of the same wake-ups and that every node's
// position is recorded where it is.
func TestWakeHeapAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w wakeHeap
	want := map[int32]event{}
	var seq uint64
	for step := range 20000 {
		node := int32(r.IntN(300))
		if r.IntN(4) == 0 {
			w.remove(node)
			delete(want, node)
		} else {
			seq++
			at := time.Duration(r.IntN(1000))
			w.set(node, at, seq)
			want[node] = event{at: at, seq: seq, node: node, msg: -1}
		}
		if len(w.h) != len(want) {
			t.Fatalf("step %d: %d wake-ups, want %d", step, len(w.h), len(want))
		}
		var best *event
		for _, e := range want {
			if best == nil || e.before(best) {
				best = &e
			}
		}
		if best != nil && w.h[0] != *best {
			t.Fatalf("step %d: top %+v, want %+v", step, w.h[0], *best)
		}
		for i, e := range w.h {
			if int(w.pos[e.node]) != i || w.at(e.node) != want[e.node].at {
				t.Fatalf("step %d: node %d at %d, pos %d", step, e.node, i, w.pos[e.node])
			}
			if i > 0 && w.h[i].before(&w.h[(i-1)/4]) {
				t.Fatalf("step %d: heap order broken at %d", step, i)
			}
		}
	}
}

// TestMsgHeapOrder pops messages in (at, seq) order.
func TestMsgHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h msgHeap
	for i := range 5000 {
		h.push(event{at: time.Duration(r.IntN(100)), seq: uint64(i + 1)})
	}
	prev := h.pop()
	for len(h) > 0 {
		e := h.pop()
		if e.before(&prev) {
			t.Fatalf("%+v popped after %+v", e, prev)
		}
		prev = e
	}
}
