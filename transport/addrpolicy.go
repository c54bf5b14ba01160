package transport

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// AddrPolicy says which addresses a node dials and learns. Every handle a
// node receives carries its peer's addresses, and the node pings every
// node it hears of to measure its proximity, so without a policy any peer
// can make a node dial addresses of its choosing (a service on the node's
// own private network, say). A policy is enforced twice: learned
// addresses it refuses never enter the peerstore (the AddrFilter option),
// and the host refuses to dial them whatever their source (identify, the
// peerstore, a caller; HostConfig.AddrPolicy, or Gater for a host built
// otherwise).
// Inbound connections are not affected.
type AddrPolicy uint8

const (
	// AddrsAll dials any address (the default: a devnet on loopback, a
	// cluster on a LAN, or a mix).
	AddrsAll AddrPolicy = iota
	// AddrsPublic dials only publicly routable addresses (and DNS names
	// outside localhost and the special-use domains): for nodes on the
	// internet.
	AddrsPublic
	// AddrsPrivate dials only private, loopback and link-local addresses
	// (and localhost names): for a network that must stay inside a LAN.
	AddrsPrivate
)

var addrPolicyNames = [...]string{AddrsAll: "all", AddrsPublic: "public", AddrsPrivate: "private"}

// String returns the policy's name, as ParseAddrPolicy accepts it.
func (p AddrPolicy) String() string {
	if int(p) < len(addrPolicyNames) {
		return addrPolicyNames[p]
	}
	return fmt.Sprintf("AddrPolicy(%d)", uint8(p))
}

// ParseAddrPolicy reads "all", "public" or "private" (in any case).
func ParseAddrPolicy(s string) (AddrPolicy, error) {
	for i, n := range addrPolicyNames {
		if strings.EqualFold(s, n) {
			return AddrPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("address policy %q: want all, public or private", s)
}

// Allows reports whether the policy lets the node dial a.
func (p AddrPolicy) Allows(a ma.Multiaddr) bool {
	switch p {
	case AddrsAll:
		return true
	case AddrsPublic:
		return manet.IsPublicAddr(a)
	case AddrsPrivate:
		return manet.IsPrivateAddr(a)
	}
	return false
}

// AllowsPeerAddr is Allows in the form AddrFilter takes.
func (p AddrPolicy) AllowsPeerAddr(_ peer.ID, a ma.Multiaddr) bool { return p.Allows(a) }

// Check returns an error naming a if the policy refuses it.
func (p AddrPolicy) Check(a ma.Multiaddr) error {
	if p.Allows(a) {
		return nil
	}
	return fmt.Errorf("address %s is refused by the address policy %q", a, p)
}

// Gater returns a connection gater that refuses outbound dials to the
// addresses p refuses and allows everything else, for hosts built
// without HostOptions: libp2p.ConnectionGater(p.Gater()).
func (p AddrPolicy) Gater() connmgr.ConnectionGater { return policyGater{p} }

// policyGater is AddrPolicy.Gater's gater.
type policyGater struct{ p AddrPolicy }

var _ connmgr.ConnectionGater = policyGater{}

func (policyGater) InterceptPeerDial(peer.ID) bool                     { return true }
func (g policyGater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool { return g.p.Allows(a) }
func (policyGater) InterceptAccept(network.ConnMultiaddrs) bool        { return true }
func (policyGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (policyGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
