package transport

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
)

// A handle's addresses are parsed once per distinct byte string: the same
// bytes again give the same (shared) list, other bytes a new parse, and
// bytes that do not parse are refused every time.
func TestDecodeAddrCache(t *testing.T) {
	ids := testIDs(t, 3)
	var advert []ma.Multiaddr
	enc := testCodec(t, func(peer.ID) []ma.Multiaddr { return advert })
	dec := testCodec(t, nil)
	m := &core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Origin: ids[2].h, Key: ids[2].h.ID}
	decode := func() []ma.Multiaddr {
		t.Helper()
		b, err := enc.AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		f, err := dec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return f.AddrsOf(ids[2].pid)
	}
	advert = []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/4001"), mustAddr(t, "/ip6/::1/udp/4001/quic-v1")}
	a1, a2 := decode(), decode()
	if !slices.EqualFunc(a1, advert, ma.Multiaddr.Equal) || !slices.EqualFunc(a2, advert, ma.Multiaddr.Equal) {
		t.Fatalf("decoded %v and %v, sent %v", a1, a2, advert)
	}
	if &a1[0] != &a2[0] {
		t.Fatal("the same address bytes were parsed twice")
	}
	advert = advert[:1]
	if a3 := decode(); !slices.EqualFunc(a3, advert, ma.Multiaddr.Equal) {
		t.Fatalf("after the origin's addresses changed: decoded %v, sent %v", a3, advert)
	}
	advert = []ma.Multiaddr{mustAddr(t, "/ip4/10.0.0.1/tcp/1"), mustAddr(t, "/ip4/127.0.0.1/tcp/4001")}
	if a4 := decode(); !slices.EqualFunc(a4, advert, ma.Multiaddr.Equal) {
		t.Fatalf("same count, other addresses: decoded %v, sent %v", a4, advert)
	}

	// An address that does not parse: refused each time, never cached.
	good, err := enc.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	raw := advert[0].Bytes()
	bad := slices.Clone(good)
	i := indexOf(bad, raw)
	if i < 0 {
		t.Fatal("address bytes not found in the frame")
	}
	bad[i] = 0xff // no such protocol code
	for range 2 {
		if _, err := dec.Decode(bad); !errors.Is(err, ErrBadAddr) {
			t.Fatalf("unparsable address: %v, want ErrBadAddr", err)
		}
	}
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}

func TestAddrCacheBounded(t *testing.T) {
	var c addrCache
	a := []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}
	raw := [][]byte{a[0].Bytes()}
	for i := range addrCacheSize + 10 {
		c.put(peer.ID(fmt.Sprint(i)), raw, a)
		if len(c.m) > addrCacheSize {
			t.Fatalf("%d entries, bound %d", len(c.m), addrCacheSize)
		}
	}
	if got, ok := c.get(peer.ID(fmt.Sprint(addrCacheSize+9)), raw); !ok || &got[0] != &a[0] {
		t.Fatal("the latest entry is missing")
	}

	// Made-up peers with the largest handles the decoder accepts (8
	// addresses of 256 bytes): the byte bound starts the cache over long
	// before the peer bound would.
	var big addrCache
	lim := DefaultLimits()
	long := make([]byte, lim.MaxAddrLen)
	raws := make([][]byte, lim.MaxAddrs)
	for i := range raws {
		raws[i] = long
	}
	resets := 0
	for i := range addrCacheSize {
		before := len(big.m)
		big.put(peer.ID(fmt.Sprint("big", i)), raws, nil)
		if len(big.m) <= before {
			resets++
		}
		if big.bytes > addrCacheBytes {
			t.Fatalf("holds %d bytes, bound %d", big.bytes, addrCacheBytes)
		}
	}
	if resets == 0 {
		t.Fatal("8,192 peers of 8 x 256-byte addresses never reached the byte bound")
	}
	// Replacing a peer's entry accounts for the old one.
	var re addrCache
	for range 100 {
		re.put("p", raws, nil)
	}
	if want := len("p") + 2*lim.MaxAddrs*lim.MaxAddrLen; re.bytes != want || len(re.m) != 1 {
		t.Fatalf("one peer put 100 times: %d bytes, %d entries; want %d, 1", re.bytes, len(re.m), want)
	}
}

func TestSelfAddrsRefresh(t *testing.T) {
	var s selfAddrs
	loads := 0
	load := func() []ma.Multiaddr {
		loads++
		return []ma.Multiaddr{mustAddr(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", loads))}
	}
	t0 := time.Unix(1000, 0)
	first := s.get(t0, load)
	if again := s.get(t0.Add(addrRefresh-1), load); loads != 1 || !first[0].Equal(again[0]) {
		t.Fatalf("within the refresh: %d loads", loads)
	}
	if later := s.get(t0.Add(addrRefresh), load); loads != 2 || later[0].Equal(first[0]) {
		t.Fatalf("after the refresh: %d loads, %v", loads, later)
	}
}

func TestLearnedAddrsFresh(t *testing.T) {
	var l learnedAddrs
	p := peer.ID("p")
	as := []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}
	t0 := time.Unix(1000, 0)
	if l.fresh(p, as, t0) {
		t.Fatal("a list never added counts as fresh")
	}
	if !l.fresh(p, as, t0.Add(addrRefresh/2)) {
		t.Fatal("the same list a moment later is added again")
	}
	other := slices.Clone(as)
	if l.fresh(p, other, t0.Add(addrRefresh/2)) {
		t.Fatal("another list counts as fresh")
	}
	if l.fresh(p, other, t0.Add(2*addrRefresh)) {
		t.Fatal("a list added long ago counts as fresh")
	}
	if !l.fresh(p, nil, t0) {
		t.Fatal("an empty list needs adding")
	}
	// A transport's list is renewed in the peerstore well within its TTL.
	l2 := learnedAddrs{refresh: learnedRefresh(30 * time.Minute)}
	if l2.fresh(p, as, t0) || !l2.fresh(p, as, t0.Add(29*time.Second)) || l2.fresh(p, as, t0.Add(31*time.Second)) {
		t.Fatalf("refresh %v: a list is added again only after it", l2.refresh)
	}
	for ttl, want := range map[time.Duration]time.Duration{30 * time.Minute: 30 * time.Second, 60 * time.Second: 6 * time.Second, time.Second: addrRefresh} {
		if got := learnedRefresh(ttl); got != want {
			t.Errorf("learnedRefresh(%v) = %v, want %v", ttl, got, want)
		}
	}
	for i := range learnedSize + 10 {
		l.fresh(peer.ID(fmt.Sprint(i)), as, t0)
		if len(l.m) > learnedSize {
			t.Fatalf("%d entries, bound %d", len(l.m), learnedSize)
		}
	}
}
