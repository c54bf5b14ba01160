package transport

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestAddrBlock: addresses in one IPv4 /16 or IPv6 /32 share a block,
// others do not; loopback, private, link-local and non-IP addresses are
// exempt.
func TestAddrBlock(t *testing.T) {
	block := func(s string) (uint64, bool) {
		t.Helper()
		return AddrBlock(ma.StringCast(s))
	}
	same := [][2]string{
		{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.250.9/udp/4001/quic-v1"},
		{"/ip6/2001:db8:1:2::1/tcp/4001", "/ip6/2001:db8:ffff::2/tcp/1"},
	}
	for _, p := range same {
		a, ok1 := block(p[0])
		b, ok2 := block(p[1])
		if !ok1 || !ok2 || a != b {
			t.Errorf("%s and %s: blocks %x (%v), %x (%v), want one", p[0], p[1], a, ok1, b, ok2)
		}
	}
	differ := [][2]string{
		{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.1.113.7/tcp/4001"},
		{"/ip6/2001:db8:1::1/tcp/4001", "/ip6/2001:db9:1::1/tcp/4001"},
		{"/ip4/32.1.13.184/tcp/1", "/ip6/2001:db8::1/tcp/1"}, // 32.1.13.184 is 0x20010db8
	}
	for _, p := range differ {
		a, _ := block(p[0])
		b, _ := block(p[1])
		if a == b {
			t.Errorf("%s and %s: one block %x", p[0], p[1], a)
		}
	}
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/1", "/ip4/10.1.2.3/tcp/1", "/ip4/192.168.1.1/tcp/1", "/ip4/172.16.0.1/tcp/1",
		"/ip4/169.254.1.1/tcp/1", "/ip6/::1/tcp/1", "/ip6/fd00::1/tcp/1", "/ip6/fe80::1/tcp/1",
		"/ip4/0.0.0.0/tcp/1", "/dns4/example.com/tcp/1",
	} {
		if g, ok := block(s); ok {
			t.Errorf("%s: block %x, want exempt", s, g)
		}
	}
}
