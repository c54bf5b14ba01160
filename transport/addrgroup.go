package transport

import (
	"net"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pastrynet/pastry/id"
)

// AddrGroup implements core.AddressGrouper for the admission policy's
// address diversity: the block (IPv4 /16, IPv6 /32) of the address h's
// peer is connected from, or else of the first address the peerstore
// holds for it. Loopback, private (RFC 1918, unique local), link-local and
// unspecified addresses are exempt (ok false): a devnet on one host or a
// cluster on one LAN shares one block, and the bound is about blocks an
// attacker can rent on the internet.
func (t *Libp2p) AddrGroup(h id.Handle) (uint64, bool) {
	p := peer.ID(h.Addr)
	for _, c := range t.h.Network().ConnsToPeer(p) {
		if g, ok := AddrBlock(c.RemoteMultiaddr()); ok {
			return g, true
		}
	}
	for _, a := range t.h.Peerstore().Addrs(p) {
		if g, ok := AddrBlock(a); ok {
			return g, true
		}
	}
	return 0, false
}

// AddrBlock is a's diversity block: 4<<32 | the first 16 bits of an IPv4
// address, 6<<32 | the first 32 bits of an IPv6 one; ok false for
// addresses without an IP and for exempt ones (see AddrGroup).
func AddrBlock(a ma.Multiaddr) (uint64, bool) {
	if a == nil {
		return 0, false
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return 0, false
	}
	return IPBlock(ip)
}

// IPBlock is AddrBlock for an IP address.
func IPBlock(ip net.IP) (uint64, bool) {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
		return 0, false
	}
	if v4 := ip.To4(); v4 != nil {
		return 4<<32 | uint64(v4[0])<<8 | uint64(v4[1]), true
	}
	if v6 := ip.To16(); v6 != nil {
		return 6<<32 | uint64(v6[0])<<24 | uint64(v6[1])<<16 | uint64(v6[2])<<8 | uint64(v6[3]), true
	}
	return 0, false
}
