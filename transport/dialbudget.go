package transport

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The measurement dial budget: at most dialBurst measurements that must
// dial may start towards one IP address (an IPv6 /64) at once, refilled
// at dialRefill per minute, and at most senderBurst for the handles one
// sender sent (the peers on one IP address or IPv6 /64 share it; see
// senderKey), refilled at senderRefill per minute. Loopback is exempt (a
// devnet runs hundreds of nodes on 127.0.0.1).
//
// The sender's burst covers the most a joiner hears of from one sender:
// the root's rows and leaf set, about 60 + 32 nodes at 100,000 nodes with
// a secure-mode leaf set. Handles past a budget stay unmeasured until
// they are heard of again, with the refill.
const (
	dialBurst     = 16
	dialRefill    = 16 // per minute
	senderBurst   = 128
	senderRefill  = 64 // per minute
	maxDialBucket = 4096
)

// dialBudget bounds the proximity measurements that dial any one address,
// and those that the handles of any one sender cause. Every handle a node
// receives carries addresses its sender chose, and the runtime measures
// every node it hears of: without a budget, a peer could send handles of
// many made-up peer IDs that all carry one victim's address and have
// every node it reaches dial the victim once per ID; without the
// sender's, it could spread them over many victims and have every node
// dial each of them. Safe for concurrent use.
//
// A missing bucket is a full one, so buckets are made only when a take
// spends from them. The map holds at most maxDialBucket: when a take needs
// more room, buckets that have refilled are dropped (at most once a
// second); if that frees none, the take is refused. Forgetting the spent
// buckets instead would let a few peers that fill the map with handles of
// many addresses reset every budget, their own included.
type dialBudget struct {
	mu     sync.Mutex
	m      map[string]*dialBucket
	pruned time.Time // the last drop of refilled buckets
}

type dialBucket struct {
	tokens, burst, refill float64 // refill per minute
	at                    time.Time
}

// level is the bucket's tokens at now.
func (k *dialBucket) level(now time.Time) float64 {
	return min(k.burst, k.tokens+max(now.Sub(k.at), 0).Minutes()*k.refill)
}

// budgetKey names a bucket and its limits.
type budgetKey struct {
	key           string
	burst, refill float64
}

// senderKey names the sender budget of the peer p whose message named the
// peer to measure, given the remote addresses of p's connections: the
// address block of the first that has one, so that identities on one
// host (they cost nothing to make) share one budget; p itself when it is
// reached over loopback only (a devnet) or not connected; "" for no
// sender.
func senderKey(p peer.ID, remotes []ma.Multiaddr) string {
	if p == "" {
		return ""
	}
	for _, a := range remotes {
		if blk, ok := dialBlock(a); ok {
			return "from:" + blk
		}
	}
	return "peer:" + string(p)
}

// take spends one token for each distinct address block of addrs (the
// ones a dial to the peer would try) and one of sender's budget (see
// senderKey; "" for none), and reports whether all had one; if any is
// empty it spends none.
func (b *dialBudget) take(addrs []ma.Multiaddr, sender string, now time.Time) bool {
	var keys []budgetKey
	for _, a := range addrs {
		if p, ok := dialBlock(a); ok && !slices.ContainsFunc(keys, func(k budgetKey) bool { return k.key == p }) {
			keys = append(keys, budgetKey{p, dialBurst, dialRefill})
		}
	}
	if len(keys) == 0 {
		return true
	}
	if sender != "" {
		keys = append(keys, budgetKey{sender, senderBurst, senderRefill}) // no block starts so
	}
	return b.spend(keys, now)
}

// spend takes one token from each of keys' buckets if all have one, and
// reports whether they had.
func (b *dialBudget) spend(keys []budgetKey, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*dialBucket{}
	}
	missing := 0
	for _, k := range keys {
		if e := b.m[k.key]; e == nil {
			missing++
		} else if e.level(now) < 1 {
			return false
		}
	}
	if len(b.m)+missing > maxDialBucket {
		if now.Sub(b.pruned) >= time.Second {
			b.pruned = now
			for key, e := range b.m {
				if e.level(now) >= e.burst {
					delete(b.m, key)
				}
			}
		}
		if len(b.m)+missing > maxDialBucket {
			return false // full of spent buckets: proximity stays unknown for now
		}
	}
	for _, k := range keys {
		e := b.m[k.key]
		if e == nil {
			e = &dialBucket{tokens: k.burst, burst: k.burst, refill: k.refill, at: now}
			b.m[k.key] = e
		}
		e.tokens, e.at = e.level(now)-1, now
	}
	return true
}

// dialBlock is the block a belongs to for the budget: the IPv4 address
// itself, an IPv6 address's /64, a DNS name's last two labels (whoever
// controls a domain can point any number of names at one host); loopback
// addresses have none.
func dialBlock(a ma.Multiaddr) (string, bool) {
	if manet.IsIPLoopback(a) {
		return "", false
	}
	if ip, err := manet.ToIP(a); err == nil {
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return "", false
		}
		addr = addr.Unmap()
		bits := 32
		if addr.Is6() {
			bits = 64
		}
		p, err := addr.Prefix(bits)
		return p.String(), err == nil
	}
	for _, code := range []int{ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR} {
		if name, err := a.ValueForProtocol(code); err == nil {
			labels := strings.Split(strings.TrimSuffix(strings.ToLower(name), "."), ".")
			if len(labels) > 2 {
				labels = labels[len(labels)-2:]
			}
			return "dns:" + strings.Join(labels, "."), true
		}
	}
	return "", false
}
