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

// wakeAt is the earliest armed timer, or 0.
func (n *Node) wakeAt() time.Duration {
	if len(n.timers) == 0 {
		return 0
	}
	return n.timers[0].at
}
