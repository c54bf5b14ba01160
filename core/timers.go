package core

import "time"

// timerKind names what a timer is for.
type timerKind uint8

const (
	timerHeartbeat   timerKind = iota + 1 // periodic: heartbeats, neighbour silence, dead-list expiry
	timerRowExchange                      // periodic: routing-table row exchange
	timerHopAck                           // a routed message's next hop (key: seq)
	timerProbe                            // a probe's reply (key: probe seq)
	timerJoin                             // the join's reply (key: join attempt)
	timerActivate                         // activation's deadline (key: join attempt)
	timerApp                              // an application's timer (key: its TimerID)
	timerVouch                            // ask leaves about a would-be leaf (key: its seq in vouchWait)
)

// timer is one armed timer. Timers are never cancelled: a fired timer whose
// key no longer names live state is ignored.
type timer struct {
	at   time.Duration
	seq  uint32 // arming order: equal deadlines fire in the order armed
	kind timerKind
	key  uint64
}

func (t *timer) before(u *timer) bool {
	return t.at < u.at || t.at == u.at && t.seq-u.seq > 1<<31
}

// timerHeap is a binary min-heap on (at, arming order). It is typed rather
// than container/heap's, whose interface boxing allocated on every push and
// pop: one of the simulator's larger allocation sources.
type timerHeap struct {
	h   []timer
	seq uint32
}

func (q *timerHeap) push(t timer) {
	q.seq++
	t.seq = q.seq
	q.h = append(q.h, t)
	h := q.h
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *timerHeap) pop() timer {
	h := q.h
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1].before(&h[c]) {
			c++
		}
		if !h[c].before(&h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	q.h = h
	return top
}

func (n *Machine) arm(at time.Duration, kind timerKind, key uint64) {
	n.timers.push(timer{at: at, kind: kind, key: key})
}

// wakeAt is the earliest armed timer that still has work to do, or 0.
// Timers whose reply already came (most hop-ack and probe timers) are
// dropped from the top of the heap here, so that the driver is not asked
// to wake the node for nothing: in the simulator such wake-ups were about a
// sixth of all events.
func (n *Machine) wakeAt() time.Duration {
	for len(n.timers.h) > 0 && n.settled(n.timers.h[0]) {
		n.timers.pop()
	}
	n.timers.shrink()
	if len(n.timers.h) == 0 {
		return 0
	}
	return n.timers.h[0].at
}

// shrink gives back a heap's array once it is mostly empty. A burst (a
// join's probes and announcements) grows a node's heap to a hundred
// timers or more, and a slice keeps its capacity: at 10,000 simulated
// nodes the heaps held 3.2 KB a node at the end of a run, about a fifth of
// the live heap, for one or two timers in use. Copying keeps the order
// (the heap's array is copied as it is).
func (q *timerHeap) shrink() {
	if c := cap(q.h); c > minTimerCap && len(q.h) <= c/4 {
		h := make([]timer, len(q.h), max(minTimerCap, 2*len(q.h)))
		copy(h, q.h)
		q.h = h
	}
}

// minTimerCap is the heap capacity never given back: a joined node keeps
// a heartbeat, a row exchange and a probe or two armed.
const minTimerCap = 8

// settled reports whether firing t would do nothing: the state it was armed
// for is gone. Periodic timers are never settled.
func (n *Machine) settled(t timer) bool {
	switch t.kind {
	case timerHopAck:
		return n.pending[t.key] == nil
	case timerProbe:
		_, ok := n.probeSeq[t.key]
		return !ok
	case timerJoin:
		return n.status != StatusJoining || t.key != n.joinAttempt
	case timerApp:
		_, ok := n.appTimers[t.key]
		return !ok
	case timerVouch:
		_, ok := n.vouchWait[t.key]
		return !ok
	}
	return false
}
