package fuzz

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// secureCodec is a codec in certificate mode for certNet, with the
// authority of certSeeds, on certTime's clock.
func secureCodec(tb testing.TB, a *secure.Authority) *transport.Codec {
	tb.Helper()
	c := newCodec(tb, nil)
	v, err := secure.NewVerifier(a.Public(), certNet, 0, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		tb.Fatal(err)
	}
	priv, err := secure.GenerateKey(rand.NewChaCha8([32]byte{0xee}))
	if err != nil {
		tb.Fatal(err)
	}
	own, err := a.Issue(priv.GetPublic(), certNet, certTime, time.Hour, rand.NewChaCha8([32]byte{0xef}))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.SetSecurity(transport.Security{Verifier: v, Own: own, Now: func() time.Time { return certTime }}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// certHandle encodes a NodeHandle carrying cert.
func certHandle(tb testing.TB, cert []byte, nodeID id.ID) []byte {
	tb.Helper()
	c, err := secure.ParseCertificate(cert)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := c.PeerID()
	if err != nil {
		tb.Fatal(err)
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, nodeID[:])
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(p))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendBytes(b, cert)
}

// FuzzDecodeSecure decodes frames in certificate mode (the wire of a
// secure network: handles carrying certificates, the opener's certificate
// frame). Whatever it accepts names only nodes whose certificates it
// verified for the ids claimed (the codec now knows each), re-encodes,
// and decodes again to the same message; every refusal has a reason.
func FuzzDecodeSecure(f *testing.F) {
	a, certs := certSeeds(f)
	handles := make([][]byte, len(certs))
	for i, c := range certs {
		cert, _ := secure.ParseCertificate(c)
		handles[i] = certHandle(f, c, cert.NodeID())
	}
	msg := func(typ core.MsgType, row int, hs ...[]byte) []byte {
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(typ))
		if row > 0 {
			m = protowire.AppendTag(m, 13, protowire.VarintType)
			m = protowire.AppendVarint(m, uint64(row))
		}
		for _, h := range hs {
			m = protowire.AppendTag(m, 14, protowire.BytesType)
			m = protowire.AppendBytes(m, h)
		}
		var fr []byte
		fr = protowire.AppendTag(fr, 1, protowire.BytesType)
		return protowire.AppendBytes(fr, m)
	}
	f.Add(msg(core.MsgJoinReply, 2, handles...))
	f.Add(msg(core.MsgHeartbeat, 1, handles[0], handles[2]))
	f.Add(msg(core.MsgLeafReply, 0, handles[1], certHandle(f, certs[0], id.ID{1})))
	var hello []byte
	hello = protowire.AppendTag(hello, 4, protowire.BytesType)
	f.Add(protowire.AppendBytes(hello, certs[0]))
	dec := secureCodec(f, a) // what it learns (verified certificates) it keeps across inputs, as a node does
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := dec.Decode(data)
		if err != nil {
			if transport.ReasonOf(err) == transport.ReasonOther {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if fr.Kind == transport.FrameHello {
			cert, err := secure.ParseCertificate(fr.Cert)
			if err != nil {
				return // VerifyHello refuses it
			}
			p, err := cert.PeerID()
			if err != nil {
				return
			}
			h, err := dec.VerifyHello(p, fr.Cert)
			if err == nil && h.ID != cert.NodeID() {
				t.Fatalf("hello admitted id %s, certificate says %s", h.ID, cert.NodeID())
			}
			if err != nil && !errors.Is(err, transport.ErrBadCert) {
				t.Fatalf("hello refused without ErrBadCert: %v", err)
			}
			return
		}
		if fr.Kind != transport.FrameMessage {
			return
		}
		m := fr.Msg
		all := append(append([]id.Handle{m.From, m.To, m.Origin, m.Subject}, m.Path...), m.Handles...)
		for _, h := range all {
			if h == (id.Handle{}) {
				continue
			}
			if _, x, ok := dec.Certificate(peer.ID(h.Addr)); !ok || x != h.ID {
				t.Fatalf("handle %s admitted without a verified certificate for its id", h)
			}
		}
		if m.From == (id.Handle{}) || m.To == (id.Handle{}) {
			return // the stream's ends: not on the wire, and not this test's
		}
		b, err := dec.AppendMessage(nil, m)
		if errors.Is(err, transport.ErrFrameTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("an admitted message does not encode: %v", err)
		}
		fr2, err := dec.Decode(b)
		if err != nil || !reflect.DeepEqual(fr2.Msg, m) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, fr2.Msg, m)
		}
	})
}
