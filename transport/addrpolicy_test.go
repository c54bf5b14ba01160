package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

func TestAddrPolicyAllows(t *testing.T) {
	cases := []struct {
		addr                 string
		all, public, private bool
	}{
		{"/ip4/127.0.0.1/tcp/1", true, false, true},
		{"/ip4/10.1.2.3/tcp/1", true, false, true},
		{"/ip4/192.168.1.1/udp/1/quic-v1", true, false, true},
		{"/ip4/169.254.0.9/tcp/1", true, false, true},
		{"/ip6/::1/tcp/1", true, false, true},
		{"/ip6/fe80::1/tcp/1", true, false, true},
		{"/ip4/8.8.8.8/tcp/4001", true, true, false},
		{"/ip6/2606:4700::1111/udp/1/quic-v1", true, true, false},
		{"/ip4/0.0.0.0/tcp/1", true, false, false}, // unspecified: neither
		{"/ip4/203.0.113.5/tcp/1", true, false, false},
		{"/dns4/example.com/tcp/1", true, true, false},
		{"/dns4/localhost/tcp/1", true, false, true},
	}
	for _, c := range cases {
		a := ma.StringCast(c.addr)
		for _, p := range []struct {
			pol  AddrPolicy
			want bool
		}{{AddrsAll, c.all}, {AddrsPublic, c.public}, {AddrsPrivate, c.private}} {
			if got := p.pol.Allows(a); got != p.want {
				t.Errorf("%s.Allows(%s) = %v, want %v", p.pol, c.addr, got, p.want)
			}
			if err := p.pol.Check(a); (err == nil) != p.want || (err != nil && !strings.Contains(err.Error(), c.addr)) {
				t.Errorf("%s.Check(%s) = %v", p.pol, c.addr, err)
			}
		}
	}
	if AddrPolicy(9).Allows(ma.StringCast("/ip4/8.8.8.8/tcp/1")) {
		t.Error("an unknown policy allows")
	}
}

func TestParseAddrPolicy(t *testing.T) {
	for _, p := range []AddrPolicy{AddrsAll, AddrsPublic, AddrsPrivate} {
		for _, s := range []string{p.String(), strings.ToUpper(p.String())} {
			got, err := ParseAddrPolicy(s)
			if err != nil || got != p {
				t.Errorf("ParseAddrPolicy(%q) = %v, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "none", "publics", "AddrPolicy(9)"} {
		if _, err := ParseAddrPolicy(s); err == nil || !strings.Contains(err.Error(), "want all, public or private") {
			t.Errorf("ParseAddrPolicy(%q): %v", s, err)
		}
	}
	cfg := DefaultHostConfig(newIdentity(t, 1).priv)
	cfg.AddrPolicy = 3
	if _, err := HostOptions(cfg); err == nil || !strings.Contains(err.Error(), "AddrPolicy") {
		t.Errorf("HostOptions with policy 3: %v", err)
	}
}

// A host whose policy is public dials no loopback address, whoever gave
// it (here the peerstore, as a learned or saved address would be); the
// peer can still connect to it, and then the two talk. With the policy
// as its AddrFilter, the transport keeps refused addresses learned from
// handles out of the peerstore.
func TestAddrPolicyRefusesDials(t *testing.T) {
	pub := newNodeHost(t, 1, func(hc *HostConfig) { hc.AddrPolicy = AddrsPublic }, AddrFilter(AddrsPublic.AllowsPeerAddr))
	b, c := newNode(t, 2), newNode(t, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), peerstore.PermanentAddrTTL)
	if err := pub.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID()}); err == nil {
		t.Fatal("a public-only host dialled a loopback address")
	}
	if _, err := pub.t.Ping(ctx, ph(b.h.ID())); err == nil {
		t.Fatal("a public-only host pinged a peer at a loopback address")
	}

	// b dials in; pub answers on that connection.
	b.h.Peerstore().AddAddrs(pub.h.ID(), pub.h.Addrs(), peerstore.PermanentAddrTTL)
	if _, err := b.t.Ping(ctx, ph(pub.h.ID())); err != nil {
		t.Fatalf("inbound connection refused: %v", err)
	}
	introduce(b, c)
	if err := b.t.Send(&core.Message{Type: core.MsgLeafReply, From: b.id.h, To: pub.id.h, Handles: []id.Handle{c.id.h}}); err != nil {
		t.Fatal(err)
	}
	pub.in.waitN(t, 1, 5*time.Second)
	if as := pub.h.Peerstore().Addrs(c.h.ID()); len(as) != 0 {
		t.Fatalf("refused addresses learned from a handle: %v", as)
	}
	if n := pub.t.Stats().AddrsRefused; n != uint64(len(c.h.Addrs())) {
		t.Fatalf("%d refused addresses counted, want %d", n, len(c.h.Addrs()))
	}
	if n := b.t.Stats().AddrsRefused; n != 0 {
		t.Fatalf("a transport without a filter counted %d refused addresses", n)
	}
}
