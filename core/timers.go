package core

import (
	"container/heap"
	"time"
)

// timerKind names what a timer is for.
type timerKind uint8

const (
	timerHeartbeat   timerKind = iota + 1 // periodic: heartbeats, neighbour silence, dead-list expiry
	timerRowExchange                      // periodic: routing-table row exchange
	timerHopAck                           // a routed message's next hop (key: seq)
	timerProbe                            // a probe's reply (key: probe seq)
	timerJoin                             // the join's reply (key: join attempt)
)

// timer is one armed timer. Timers are never cancelled: a fired timer whose
// key no longer names live state is ignored.
type timer struct {
	at   time.Duration
	kind timerKind
	key  uint64
}

// timerHeap is a min-heap on (at, insertion order), deterministic for equal
// deadlines because container/heap is.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any          { old := *h; t := old[len(old)-1]; *h = old[:len(old)-1]; return t }
func (n *Node) arm(at time.Duration, kind timerKind, key uint64) {
	heap.Push(&n.timers, timer{at: at, kind: kind, key: key})
}

// wakeAt is the earliest armed timer that still has work to do, or 0.
// Timers whose reply already came (most hop-ack and probe timers) are
// dropped from the top of the heap here, so that the driver is not asked
// to wake the node for nothing: in the simulator such wake-ups were about a
// sixth of all events.
func (n *Node) wakeAt() time.Duration {
	for len(n.timers) > 0 && n.settled(n.timers[0]) {
		heap.Pop(&n.timers)
	}
	if len(n.timers) == 0 {
		return 0
	}
	return n.timers[0].at
}

// settled reports whether firing t would do nothing: the state it was armed
// for is gone. Periodic timers are never settled.
func (n *Node) settled(t timer) bool {
	switch t.kind {
	case timerHopAck:
		return n.pending[t.key] == nil
	case timerProbe:
		_, ok := n.probeSeq[t.key]
		return !ok
	case timerJoin:
		return n.status != StatusJoining || t.key != n.joinAttempt
	}
	return false
}
