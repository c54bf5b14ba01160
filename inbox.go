package pastry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pastrynet/pastry/core"
)

// inbox holds the messages the transport received until the event loop
// takes them: one queue per sending peer, served round robin, so that a
// peer that floods the node fills its own queue and not the others'. An
// honest peer's acks and probe replies then still get through, and it is
// not suspected because an attacker's traffic crowded them out. Routed
// messages (routes and joins, the ones the node must forward) are also
// rate-limited per sending peer: a peer past its rate has its routed
// messages dropped unacknowledged, so its hops time out and it routes
// around this node, as it would around a slow one.
//
// Bounds: perPeer messages in one peer's queue, max in all. A peer's full
// queue makes room for its control message by dropping its newest routed
// one. When all are full, a message from a peer with a shorter queue than
// the longest takes the place of the longest queue's newest routed
// message, or of its newest message if it has none. The per-peer state
// (queue and rate bucket) of peers with nothing queued and a full bucket
// is forgotten when more than maxInboxPeers are kept (then that of others
// with nothing queued). Safe for concurrent
// use: the transport's goroutines push, the loop pops.
type inbox struct {
	mu      sync.Mutex
	peers   map[string]*inboxPeer
	ring    []*inboxPeer // peers with something queued, in service order
	total   int
	max     int
	perPeer int
	// rate and burst limit one peer's routed messages (per second); zero
	// rate: no limit.
	rate, burst float64
	wake        chan struct{} // a token while anything is queued

	drops, limited atomic.Uint64
}

type inboxPeer struct {
	key    string
	q      []*core.Message
	ringed bool
	tokens float64
	at     time.Time
}

// maxInboxPeers bounds the per-peer state kept for peers with nothing
// queued.
const maxInboxPeers = 4096

func newInbox(size int, rate, burst float64) *inbox {
	return &inbox{peers: map[string]*inboxPeer{}, max: size, perPeer: max(16, size/8),
		rate: rate, burst: burst, wake: make(chan struct{}, 1)}
}

// push queues m, or drops it (counted), and wakes the loop. The wake-up
// is sent once the lock is released: a loop woken while push still held it
// would run on the other core and block on the lock at once.
func (b *inbox) push(m *core.Message, now time.Time) {
	if b.queue(m, now) {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// queue is push's part under the lock; it reports whether m was queued.
func (b *inbox) queue(m *core.Message, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.peers[m.From.Addr]
	if p == nil {
		if len(b.peers) >= maxInboxPeers && !b.prune(now) {
			b.drops.Add(1) // every peer kept has something queued
			return false
		}
		p = &inboxPeer{key: m.From.Addr, tokens: b.burst, at: now}
		b.peers[p.key] = p
	}
	if b.rate > 0 && routed(m) {
		p.tokens = min(b.burst, p.tokens+now.Sub(p.at).Seconds()*b.rate)
		p.at = now
		if p.tokens < 1 {
			b.limited.Add(1)
			return false
		}
		p.tokens--
	}
	switch {
	case len(p.q) >= b.perPeer:
		// A peer's full queue keeps its control messages (acks, probes,
		// replies) before its routed ones: a node that forwards a flood
		// must not have its own probes and acks dropped behind it, and be
		// suspected for it.
		if routed(m) || !p.dropRouted() {
			b.drops.Add(1)
			return false
		}
		b.total--
		b.drops.Add(1)
	case b.total >= b.max:
		long := p
		for _, x := range b.ring {
			if len(x.q) > len(long.q) {
				long = x
			}
		}
		if len(long.q) <= len(p.q)+1 {
			b.drops.Add(1)
			return false
		}
		if !long.dropRouted() {
			long.q[len(long.q)-1] = nil
			long.q = long.q[:len(long.q)-1]
		}
		b.total--
		b.drops.Add(1)
	}
	p.q = append(p.q, m)
	b.total++
	if !p.ringed {
		p.ringed = true
		b.ring = append(b.ring, p)
	}
	return true
}

// routed reports whether m is a message the node would forward (the kind
// rate-limited per peer).
func routed(m *core.Message) bool { return m.Type == core.MsgRoute || m.Type == core.MsgJoin }

// dropRouted removes the newest routed message from p's queue, if it has
// one, and reports whether it did.
func (p *inboxPeer) dropRouted() bool {
	for i := len(p.q) - 1; i >= 0; i-- {
		if routed(p.q[i]) {
			copy(p.q[i:], p.q[i+1:])
			p.q[len(p.q)-1] = nil
			p.q = p.q[:len(p.q)-1]
			return true
		}
	}
	return false
}

// pop takes the next message, round robin over the peers, or nil.
func (b *inbox) pop() *core.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) == 0 {
		return nil
	}
	p := b.ring[0]
	m := p.q[0]
	p.q[0] = nil
	p.q = p.q[1:]
	b.total--
	b.ring = b.ring[1:]
	if len(p.q) > 0 {
		b.ring = append(b.ring, p)
	} else {
		p.ringed, p.q = false, nil
	}
	if b.total > 0 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return m
}

// prune forgets the peers that have nothing queued and a full bucket, or,
// if none has, any with nothing queued (their buckets start full again);
// it reports whether there is room for another peer.
func (b *inbox) prune(now time.Time) bool {
	for k, p := range b.peers {
		if !p.ringed && (b.rate == 0 || p.tokens+now.Sub(p.at).Seconds()*b.rate >= b.burst) {
			delete(b.peers, k)
		}
	}
	for k, p := range b.peers {
		if len(b.peers) < maxInboxPeers {
			break
		}
		if !p.ringed {
			delete(b.peers, k)
		}
	}
	return len(b.peers) < maxInboxPeers
}

// queued is the number of messages waiting.
func (b *inbox) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}
