package transport

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

type identity struct {
	priv crypto.PrivKey
	pid  peer.ID
	h    id.Handle
}

func newIdentity(t testing.TB, seed uint64) identity {
	t.Helper()
	var s [32]byte
	s[0], s[1], s[2] = byte(seed), byte(seed>>8), 0x5a
	priv, err := secure.GenerateKey(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	h, err := secure.HandleFromPeer(pid)
	if err != nil {
		t.Fatal(err)
	}
	return identity{priv, pid, h}
}

func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fullMessage returns a message of type typ with every field set, using ids
// (at least 6) for its handles.
func fullMessage(typ core.MsgType, ids []identity) *core.Message {
	return &core.Message{
		Type: typ, Flags: core.FlagTrace | core.FlagWantReply,
		From: ids[0].h, To: ids[1].h, Seq: 1<<40 + uint64(typ),
		Key:    id.MustParse("0123456789abcdef0123456789abcdef"),
		Origin: ids[2].h, App: 7, Payload: []byte("payload of " + typ.String()),
		Hops: 3, Path: []id.Handle{ids[2].h, ids[3].h},
		Sent: -12345, Row: 5, Copy: 0xdeadbeef,
		Handles: []id.Handle{ids[3].h, ids[4].h, ids[5].h},
		Subject: ids[5].h,
	}
}

// allTypes lists every valid core.MsgType.
func allTypes() []core.MsgType {
	var ts []core.MsgType
	for t := core.MsgType(1); t.Valid(); t++ {
		ts = append(ts, t)
	}
	return ts
}

// addrBook is an AddrFunc over a fixed map.
func addrBook(m map[peer.ID][]ma.Multiaddr) AddrFunc {
	return func(p peer.ID) []ma.Multiaddr { return m[p] }
}

func testCodec(t testing.TB, addrs AddrFunc) *Codec {
	t.Helper()
	c, err := NewCodec(Limits{}, addrs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMain fails the run if any transport goroutine outlives the tests:
// every test must close what it starts.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var left string
		for range 100 { // up to ~1 s for goroutines that are finishing
			if left = transportGoroutines(); left == "" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if left != "" {
			fmt.Fprintf(os.Stderr, "transport goroutines leaked:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// ph is a handle naming peer p only (Ping and RTT read only its Addr).
func ph(p peer.ID) id.Handle { return id.Handle{Addr: string(p)} }
