package fuzz

import (
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// handles returns n deterministic node handles with real Ed25519 identities.
func handles(tb testing.TB, n int) []id.Handle {
	tb.Helper()
	out := make([]id.Handle, n)
	for i := range out {
		var seed [32]byte
		seed[0], seed[1] = byte(i), 0xf2
		priv, err := secure.GenerateKey(rand.NewChaCha8(seed))
		if err != nil {
			tb.Fatal(err)
		}
		p, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			tb.Fatal(err)
		}
		if out[i], err = secure.HandleFromPeer(p); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// book gives some handles addresses, for seeds that carry them.
func book(tb testing.TB, hs []id.Handle) transport.AddrFunc {
	tb.Helper()
	m := map[peer.ID][]ma.Multiaddr{}
	for i, h := range hs {
		if i%2 == 0 {
			continue
		}
		for _, s := range []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1", "/dns/node.example/tcp/443"}[:i%3+1] {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				tb.Fatal(err)
			}
			m[peer.ID(h.Addr)] = append(m[peer.ID(h.Addr)], a)
		}
	}
	return func(p peer.ID) []ma.Multiaddr { return m[p] }
}

// sampleMessages returns one message of every type, fields filled as that
// type uses them, plus a few edge cases.
func sampleMessages(hs []id.Handle) []*core.Message {
	key := id.MustParse("00112233445566778899aabbccddeeff")
	var out []*core.Message
	for t := core.MsgType(1); t.Valid(); t++ {
		m := &core.Message{Type: t, From: hs[0], To: hs[1], Seq: uint64(t) * 1000}
		switch t {
		case core.MsgRoute, core.MsgJoin:
			m.Key, m.Origin, m.App, m.Payload, m.Hops = key, hs[2], 3, []byte("hello"), 2
			m.Flags = core.FlagTrace
			m.Path = []id.Handle{hs[2], hs[3]}
			m.Sent = 1 << 40
			if t == core.MsgJoin {
				m.Key = hs[2].ID
				m.Flags = core.FlagJoining
			}
		case core.MsgRowRequest:
			m.Row = 3
		case core.MsgRowReply, core.MsgJoinRows:
			m.Row, m.Handles = 3, hs[2:7]
		case core.MsgJoinReply, core.MsgAnnounceAck, core.MsgHeartbeat, core.MsgLeafReply:
			m.Handles = hs[2:]
		case core.MsgAnnounce:
			m.Flags = core.FlagWantReply | core.FlagJoining
		case core.MsgProbe, core.MsgProbeReply:
			m.Sent = -5
		case core.MsgSuspect:
			m.Subject = hs[4]
		}
		out = append(out, m)
	}
	out = append(out,
		&core.Message{Type: core.MsgRoute, From: hs[0], To: hs[1], Payload: make([]byte, 3000), Row: -1, Flags: 0xff},
		&core.Message{Type: core.MsgLeafReply, From: hs[0], To: hs[0], Handles: []id.Handle{hs[0], hs[0]}},
	)
	return out
}
