package transport

import (
	"sync"
	"time"
	"weak"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Addresses travel with handles (see Codec). Two caches keep that off the
// routing path: the host's own addresses, which go with every message this
// node originates, and which learned address lists were added to the
// peerstore a moment ago, which every message routed from one origin
// repeats.

// addrRefresh is how long either cache trusts what it holds.
const addrRefresh = time.Second

// selfAddrs caches the host's addresses for addrRefresh.
type selfAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs []ma.Multiaddr
}

// get returns the cached list, calling load when it is older than
// addrRefresh. The list is shared: do not modify it.
func (s *selfAddrs) get(now time.Time, load func() []ma.Multiaddr) []ma.Multiaddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() || now.Sub(s.at) >= addrRefresh {
		s.addrs, s.at = load(), now
	}
	return s.addrs
}

// learnedAddrs remembers, per peer, the address list last added to the
// peerstore and when. The codec shares one parsed list between the frames
// that carry the same bytes, so the same list again is recognised by
// identity.
type learnedAddrs struct {
	mu      sync.Mutex
	m       map[peer.ID]learned
	refresh time.Duration // zero: addrRefresh
}

// learnedRefresh is how often a learned list that keeps arriving is added
// to the peerstore again, to renew its TTL there: a tenth of the TTL, at
// most 30 s. Every message routed from an origin carries the origin's
// addresses, and adding them is not cheap (about 2% of a 64-node
// overlay's CPU when it was done once a second).
func learnedRefresh(ttl time.Duration) time.Duration {
	return max(addrRefresh, min(ttl/10, 30*time.Second))
}

// learned records the list by its first element's address, weakly: it
// must not keep alive the lists of the made-up peers a flood names.
type learned struct {
	first weak.Pointer[ma.Multiaddr]
	n     int
	at    time.Time
}

const learnedSize = 8192

// fresh reports whether as is the list added for p less than l.refresh
// ago; if not, it records as as added now (the caller adds it).
func (l *learnedAddrs) fresh(p peer.ID, as []ma.Multiaddr, now time.Time) bool {
	if len(as) == 0 {
		return true
	}
	refresh := l.refresh
	if refresh == 0 {
		refresh = addrRefresh
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[p]; ok && e.first.Value() == &as[0] && e.n == len(as) && now.Sub(e.at) < refresh {
		return true
	}
	if l.m == nil || len(l.m) >= learnedSize {
		l.m = make(map[peer.ID]learned)
	}
	l.m[p] = learned{first: weak.Make(&as[0]), n: len(as), at: now}
	return false
}

// Addresses learned second-hand. A handle's addresses are its sender's
// word: for the handle of a peer other than the sender, nothing shows yet
// that the peer exists. Such addresses go into the peerstore for
// UnverifiedAddrTTL only (not AddrTTL), at most maxUnverifiedAddrs of a
// peer; at most maxUnverified peers are held that way at once; and each
// sender (by its address block, as for the dial budget) may add at most
// addrBurst new ones at once and addrRefill a minute. A peer is verified,
// and its addresses kept for AddrTTL, once it talks to this node itself
// (a message or a pong from it). So a flood of handles of made-up peers
// costs the node a bounded, short-lived part of its peerstore, whatever
// the number of identities sending it.
const (
	maxUnverified      = 1024
	maxUnverifiedAddrs = 4
	addrBurst          = 256
	addrRefill         = 128 // per minute
)

// unverifiedPeers are the peers held in the peerstore on another's word,
// with when that ends. Safe for concurrent use.
type unverifiedPeers struct {
	mu sync.Mutex
	m  map[peer.ID]time.Time
}

// add records p until until, unless the set is full of peers that have
// not expired; it reports whether p is recorded.
func (u *unverifiedPeers) add(p peer.ID, now, until time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[peer.ID]time.Time{}
	}
	if _, ok := u.m[p]; !ok && len(u.m) >= maxUnverified {
		for q, end := range u.m {
			if !now.Before(end) {
				delete(u.m, q)
			}
		}
		if len(u.m) >= maxUnverified {
			return false
		}
	}
	u.m[p] = until
	return true
}

// has reports whether p is held unverified (and not expired).
func (u *unverifiedPeers) has(p peer.ID, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	end, ok := u.m[p]
	return ok && now.Before(end)
}

// expired takes the peers whose time is up out of the set.
func (u *unverifiedPeers) expired(now time.Time) []peer.ID {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []peer.ID
	for p, end := range u.m {
		if !now.Before(end) {
			out = append(out, p)
			delete(u.m, p)
		}
	}
	return out
}

// verify forgets p, reporting whether it was held unverified.
func (u *unverifiedPeers) verify(p peer.ID) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.m[p]
	delete(u.m, p)
	return ok
}
