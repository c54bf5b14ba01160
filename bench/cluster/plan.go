package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"regexp"
	"strconv"
)

// Names: every namespace is NSPrefix+RUN+"-"+INDEX, every link LinkPrefix+RUN+...
const (
	NSPrefix   = "pbc-"
	LinkPrefix = "pbc"
	// MaxNodes is the most nodes one plan addresses: a /16 less the
	// first 256 addresses (the bridge's) and the broadcast address.
	MaxNodes = 1<<16 - 256 - 1
	// APIPort and P2PPort are every node's ports on its own address.
	APIPort = 7700
	P2PPort = 7701
)

var runRE = regexp.MustCompile(`^[0-9a-f]{4}$`)

// Plan is a local run's names and addresses. Node i lives in namespace
// Namespace(i), on address Addr(i) = the subnet's base + 256 + i; the
// bridge, in the root namespace, has Gateway() = base + 1. Consecutive
// indices have consecutive addresses, so a range of nodes is a few
// prefixes (Cover), which is what a partition blackholes.
type Plan struct {
	Run    string       // 4 hex digits
	Subnet netip.Prefix // a /16 of IPv4
	N      int
}

// NewRunID returns a fresh run id.
func NewRunID() string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// NewPlan checks and returns a plan.
func NewPlan(run string, subnet netip.Prefix, n int) (Plan, error) {
	if !runRE.MatchString(run) {
		return Plan{}, fmt.Errorf("run id %q: want 4 hex digits", run)
	}
	if !subnet.Addr().Is4() || subnet.Bits() != 16 || subnet.Masked() != subnet {
		return Plan{}, fmt.Errorf("subnet %s: want an IPv4 /16 such as 10.77.0.0/16", subnet)
	}
	if n < 1 || n > MaxNodes {
		return Plan{}, fmt.Errorf("%d nodes: want 1 to %d", n, MaxNodes)
	}
	return Plan{Run: run, Subnet: subnet, N: n}, nil
}

// Namespace is node i's network namespace.
func (p Plan) Namespace(i int) string { return NSPrefix + p.Run + "-" + strconv.Itoa(i) }

// Bridge is the bridge's name.
func (p Plan) Bridge() string { return LinkPrefix + p.Run + "br" }

// HostVeth is the root namespace's end of node i's veth pair (at most 14
// characters: Linux allows 15).
func (p Plan) HostVeth(i int) string { return LinkPrefix + p.Run + "h" + strconv.Itoa(i) }

// NodeVeth is node i's end, inside its namespace.
func (p Plan) NodeVeth(i int) string { return LinkPrefix + p.Run + "n" + strconv.Itoa(i) }

// Gateway is the bridge's address: the controller's, in the root namespace.
func (p Plan) Gateway() netip.Addr { return addrAt(p.Subnet, 1) }

// Addr is node i's address.
func (p Plan) Addr(i int) netip.Addr { return addrAt(p.Subnet, 256+uint32(i)) }

// Listen is node i's libp2p listen address.
func (p Plan) Listen(i int) string { return fmt.Sprintf("/ip4/%s/tcp/%d", p.Addr(i), P2PPort) }

// API is node i's HTTP API address.
func (p Plan) API(i int) string { return netip.AddrPortFrom(p.Addr(i), APIPort).String() }

func addrAt(base netip.Prefix, off uint32) netip.Addr {
	b := base.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Cover returns the fewest prefixes that hold exactly the addresses of
// nodes lo to hi-1.
func (p Plan) Cover(lo, hi int) []netip.Prefix {
	var out []netip.Prefix
	a, b := uint32(256+lo), uint32(256+hi) // offsets in the /16, [a, b)
	for a < b {
		// The largest aligned block at a that fits in [a, b).
		size := uint32(1) << bits.TrailingZeros32(a|1<<16)
		for a+size > b {
			size >>= 1
		}
		out = append(out, netip.PrefixFrom(addrAt(p.Subnet, a), 32-bits.TrailingZeros32(size)))
		a += size
	}
	return out
}
