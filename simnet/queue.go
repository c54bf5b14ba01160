package simnet

import (
	"slices"
	"time"
)

// The event queue. Message deliveries are kept in a 4-ary min-heap on
// (at, seq); node wake-ups in an indexed 4-ary heap with at most one entry
// per node, moved in place when the node's next timer changes. A plain heap
// holding both (container/heap, as before) boxed every event in an
// interface (an allocation per push and per pop), and left behind a stale
// wake-up whenever a node's next timer moved, plus an empty one whenever
// that timer settled (a probe answered, a hop acknowledged): about a fifth
// of all events at 100,000 nodes did nothing. Both heaps order by the same
// (at, seq), and seq is unique, so the order of events is total and a seed
// still reproduces a run exactly (whatever the heaps' shape).

// event is one message delivery (msg >= 0, a slab index) or wake-up (-1).
type event struct {
	at   time.Duration
	seq  uint64
	node int32
	msg  int32
}

func (e *event) before(f *event) bool {
	return e.at < f.at || e.at == f.at && e.seq < f.seq
}

// msgHeap is a 4-ary min-heap: half the levels of a binary heap, and a
// node's four children share two cache lines.
type msgHeap []event

func (h *msgHeap) push(e event) {
	s := append(*h, e)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !s[i].before(&s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func (h *msgHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if s[k].before(&s[m]) {
				m = k
			}
		}
		if !s[m].before(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// wakeHeap holds each node's next wake-up; pos[node] is its index, or -1.
type wakeHeap struct {
	h   []event
	pos []int32
}

// set schedules node's wake-up at (at, seq), replacing any earlier one.
func (w *wakeHeap) set(node int32, at time.Duration, seq uint64) {
	for int(node) >= len(w.pos) {
		w.pos = append(w.pos, -1)
	}
	e := event{at: at, seq: seq, node: node, msg: -1}
	i := int(w.pos[node])
	if i < 0 {
		w.h = append(w.h, e)
		i = len(w.h) - 1
		w.pos[node] = int32(i)
		w.up(i)
		return
	}
	old := w.h[i]
	w.h[i] = e
	if e.before(&old) {
		w.up(i)
	} else {
		w.down(i)
	}
}

// remove cancels node's wake-up, if any.
func (w *wakeHeap) remove(node int32) {
	if int(node) >= len(w.pos) || w.pos[node] < 0 {
		return
	}
	i := int(w.pos[node])
	w.pos[node] = -1
	n := len(w.h) - 1
	if i != n {
		w.h[i] = w.h[n]
		w.pos[w.h[i].node] = int32(i)
	}
	w.h = w.h[:n]
	if i < n {
		w.up(i)
		w.down(i)
	}
}

// at returns node's scheduled wake-up time, or 0.
func (w *wakeHeap) at(node int32) time.Duration {
	if int(node) >= len(w.pos) || w.pos[node] < 0 {
		return 0
	}
	return w.h[w.pos[node]].at
}

func (w *wakeHeap) swap(i, j int) {
	w.h[i], w.h[j] = w.h[j], w.h[i]
	w.pos[w.h[i].node] = int32(i)
	w.pos[w.h[j].node] = int32(j)
}

// The wake-up heap is 4-ary too: a million nodes' wake-ups are 20 levels
// of a binary heap, a cache miss each, and every event moves one.

func (w *wakeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 4
		if !w.h[i].before(&w.h[p]) {
			return
		}
		w.swap(i, p)
		i = p
	}
}

func (w *wakeHeap) down(i int) {
	n := len(w.h)
	for {
		c := 4*i + 1
		if c >= n {
			return
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if w.h[k].before(&w.h[m]) {
				m = k
			}
		}
		if !w.h[m].before(&w.h[i]) {
			return
		}
		w.swap(i, m)
		i = m
	}
}

// fix restores the heap order after events' times were changed in place.
func (h *msgHeap) fix() {
	all := slices.Clone(*h)
	*h = (*h)[:0]
	for _, e := range all {
		h.push(e)
	}
}
