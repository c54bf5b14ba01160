package transport

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDialBlock(t *testing.T) {
	for _, c := range []struct {
		addr, block string
	}{
		{"/ip4/127.0.0.1/tcp/1", ""},
		{"/ip6/::1/tcp/1", ""},
		{"/ip4/203.0.113.5/tcp/1", "203.0.113.5/32"},
		{"/ip4/203.0.113.5/udp/9/quic-v1", "203.0.113.5/32"},
		{"/ip6/2001:db8:1:2:3::4/tcp/1", "2001:db8:1:2::/64"},
		{"/ip6/2001:db8:1:2:ffff::9/tcp/1", "2001:db8:1:2::/64"},
		{"/dns4/a.b.Example.com./tcp/1", "dns:example.com"},
		{"/dns/victim/tcp/1", "dns:victim"},
	} {
		got, ok := dialBlock(ma.StringCast(c.addr))
		if got != c.block || ok != (c.block != "") {
			t.Errorf("dialBlock(%s) = %q, %v; want %q", c.addr, got, ok, c.block)
		}
	}
}

func TestDialBudget(t *testing.T) {
	var b dialBudget
	now := time.Unix(1000, 0)
	victim := []ma.Multiaddr{ma.StringCast("/ip4/203.0.113.5/tcp/1"), ma.StringCast("/ip4/203.0.113.5/udp/1/quic-v1")}
	other := []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.1/tcp/1")}
	loop := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}
	for i := range dialBurst {
		if !b.take(victim, "", now) {
			t.Fatalf("take %d of a burst of %d refused", i, dialBurst)
		}
	}
	if b.take(victim, "", now) {
		t.Fatal("the burst exceeded")
	}
	if !b.take(other, "", now) || !b.take(loop, "", now) || !b.take(nil, "", now) {
		t.Fatal("another address, loopback or no address was refused")
	}
	// Both blocks or neither: the victim's empty bucket refuses, and the
	// other's token is not spent.
	before := b.m["198.51.100.1/32"].tokens
	if b.take(append(append([]ma.Multiaddr{}, other...), victim...), "", now) || b.m["198.51.100.1/32"].tokens != before {
		t.Fatal("a refused take spent a token")
	}
	if !b.take(victim, "", now.Add(4*time.Second)) { // 16 a minute: one per 3.75 s
		t.Fatal("not refilled after 4 s")
	}
	if b.take(victim, "", now.Add(5*time.Second)) {
		t.Fatal("refilled too fast")
	}
	taken := 0
	for range 10 * dialBurst {
		if b.take(victim, "", now.Add(time.Hour)) {
			taken++
		}
	}
	if taken != dialBurst { // refilled to the burst, not beyond
		t.Fatalf("after an hour, %d takes, want the burst of %d", taken, dialBurst)
	}
}

func TestDialBudgetPerSender(t *testing.T) {
	var b dialBudget
	now := time.Unix(1000, 0)
	addr := func(i int) []ma.Multiaddr {
		return []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/198.51.%d.%d/tcp/1", i/256, i%256))}
	}
	for i := range senderBurst {
		if !b.take(addr(i), "peer:A", now) {
			t.Fatalf("take %d of sender A's burst of %d refused", i, senderBurst)
		}
	}
	if b.take(addr(senderBurst), "peer:A", now) {
		t.Fatal("sender A's burst exceeded")
	}
	if k := b.m[fmt.Sprintf("198.51.%d.%d/32", senderBurst/256, senderBurst%256)]; k != nil {
		t.Fatalf("a take refused for the sender made the address's bucket (%v tokens)", k.tokens)
	}
	loop := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}
	if !b.take(addr(senderBurst), "peer:B", now) || !b.take(addr(senderBurst+1), "", now) || !b.take(loop, "peer:A", now) {
		t.Fatal("another sender, no sender or a loopback address was refused")
	}
	if !b.take(addr(senderBurst+2), "peer:A", now.Add(time.Second+time.Millisecond)) { // 64 a minute: one per 0.94 s
		t.Fatal("sender A not refilled after a second")
	}
}

// A full map refuses new buckets rather than forgetting the spent ones:
// otherwise peers that fill it with handles of many addresses would reset
// every budget, their own included. Refilled buckets make room.
func TestDialBudgetFull(t *testing.T) {
	var b dialBudget
	now := time.Unix(1000, 0)
	addr := func(i int) []ma.Multiaddr {
		return []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/1", i>>16&255, i>>8&255, i&255))}
	}
	next := 0
	for range senderBurst {
		if !b.take(addr(next), "peer:A", now) {
			t.Fatal("sender A's burst refused")
		}
		next++
	}
	for len(b.m) < maxDialBucket {
		if !b.take(addr(next), "", now) {
			t.Fatalf("take refused with %d buckets of %d", len(b.m), maxDialBucket)
		}
		next++
	}
	if b.take(addr(next), "", now) {
		t.Fatal("a new bucket was made in a map full of spent ones")
	}
	if !b.take(addr(0), "", now) {
		t.Fatal("a bucket already there was refused in a full map")
	}
	if b.take(addr(next), "peer:A", now.Add(100*time.Millisecond)) {
		t.Fatal("sender A's spent budget was reset by a full map")
	}
	// 4 s on, the buckets spent once have refilled (16 a minute) and are
	// dropped; A's, 128 down at 64 a minute, has not.
	later := now.Add(4 * time.Second)
	if !b.take(addr(next), "", later) {
		t.Fatal("refilled buckets did not make room")
	}
	if b.m["peer:A"] == nil || len(b.m) > senderBurst+3 {
		t.Fatalf("after the drop: %d buckets, A's kept: %v", len(b.m), b.m["peer:A"] != nil)
	}
}

// Senders share a budget by the address block their connection comes
// from: identities cost nothing to make, hosts and /64s do. A sender
// reached only over loopback (a devnet) or not connected has its own.
func TestSenderKey(t *testing.T) {
	addrs := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, ma.StringCast(s))
		}
		return out
	}
	for _, c := range []struct {
		name    string
		p       peer.ID
		remotes []ma.Multiaddr
		want    string
	}{
		{"no sender", "", addrs("/ip4/198.51.100.7/tcp/1"), ""},
		{"not connected", "A", nil, "peer:A"},
		{"loopback only", "A", addrs("/ip4/127.0.0.1/tcp/1", "/ip6/::1/udp/2/quic-v1"), "peer:A"},
		{"IPv4", "A", addrs("/ip4/198.51.100.7/udp/4001/quic-v1"), "from:198.51.100.7/32"},
		{"another identity on that host", "B", addrs("/ip4/198.51.100.7/tcp/5"), "from:198.51.100.7/32"},
		{"the first connection with a block", "A", addrs("/ip4/127.0.0.1/tcp/1", "/ip4/192.0.2.1/tcp/1"), "from:192.0.2.1/32"},
		{"IPv6 /64", "C", addrs("/ip6/2001:db8:1:2:aaaa::1/tcp/1"), "from:2001:db8:1:2::/64"},
		{"IPv4-mapped", "D", addrs("/ip6/::ffff:198.51.100.7/tcp/1"), "from:198.51.100.7/32"},
	} {
		if got := senderKey(c.p, c.remotes); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// Two identities on one host spend one burst.
	var b dialBudget
	now := time.Unix(1000, 0)
	a := senderKey("A", addrs("/ip4/198.51.100.7/tcp/1"))
	bb := senderKey("B", addrs("/ip4/198.51.100.7/tcp/2"))
	spent := 0
	for i := range 2 * senderBurst {
		s := a
		if i%2 == 1 {
			s = bb
		}
		if b.take([]ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/203.0.%d.%d/tcp/1", i/256, i%256))}, s, now) {
			spent++
		}
	}
	if spent != senderBurst {
		t.Fatalf("two identities on one host measured %d fresh peers at once, want one burst of %d", spent, senderBurst)
	}
}
