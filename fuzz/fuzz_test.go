package fuzz

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
	"github.com/pastrynet/pastry/transport/pb"
)

func newCodec(tb testing.TB, addrs transport.AddrFunc) *transport.Codec {
	tb.Helper()
	c, err := transport.NewCodec(transport.Limits{}, addrs)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// messageSeeds returns valid encodings of every message type and damaged
// variants of them.
func messageSeeds(tb testing.TB) [][]byte {
	hs := handles(tb, 10)
	c := newCodec(tb, book(tb, hs))
	var out [][]byte
	for _, m := range sampleMessages(hs) {
		b, err := c.AppendMessage(nil, m)
		if err != nil {
			tb.Fatalf("seed %s: %v", m.Type, err)
		}
		out = append(out, b, b[:len(b)/2])
		flipped := bytes.Clone(b)
		flipped[len(b)*2/3] ^= 0x40
		out = append(out, flipped)
	}
	// A handle whose node id belongs to someone else.
	forged, _ := proto.Marshal(&pb.Frame{Body: &pb.Frame_Message{Message: &pb.Message{
		Type: pb.MsgType_MSG_TYPE_LEAF_REPLY,
		From: &pb.NodeHandle{NodeId: hs[0].ID[:], PeerId: []byte(hs[0].Addr)},
		To:   &pb.NodeHandle{NodeId: hs[1].ID[:], PeerId: []byte(hs[1].Addr)},
		Handles: []*pb.NodeHandle{
			{NodeId: hs[3].ID[:], PeerId: []byte(hs[2].Addr)},
		},
	}}})
	out = append(out, forged,
		transport.AppendPing(nil, 0), transport.AppendPong(nil, 1<<63),
		[]byte{}, []byte{0x0a, 0x00}, []byte{0x12, 0x02, 0x08, 0x01, 0x1a, 0x00})
	return out
}

// FuzzDecode: whatever the codec accepts is fully verified, agrees with
// the generated protobuf code, and re-encodes canonically.
func FuzzDecode(f *testing.F) {
	for _, b := range messageSeeds(f) {
		f.Add(b)
	}
	dec := newCodec(f, nil)
	lim := dec.Limits()
	ends := handles(f, 2) // the stream's, for ends the wire leaves out
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := dec.Decode(data)
		if err != nil {
			if transport.ReasonOf(err) == transport.ReasonOther {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		var gen pb.Frame
		if err := proto.Unmarshal(data, &gen); err != nil {
			t.Fatalf("codec accepted what the generated code rejects: %v", err)
		}
		switch fr.Kind {
		case transport.FramePing, transport.FramePong:
			n := gen.GetPing().GetNonce()
			if fr.Kind == transport.FramePong {
				n = gen.GetPong().GetNonce()
			}
			if n != fr.Nonce || (gen.GetPing() == nil) == (fr.Kind == transport.FramePing) {
				t.Fatalf("nonce %d, generated code says %d", fr.Nonce, n)
			}
			re := transport.AppendPing(nil, fr.Nonce)
			if fr.Kind == transport.FramePong {
				re = transport.AppendPong(nil, fr.Nonce)
			}
			if fr2, err := dec.Decode(re); err != nil || fr2.Kind != fr.Kind || fr2.Nonce != fr.Nonce {
				t.Fatalf("re-encoded nonce: %+v, %v", fr2, err)
			}
			return
		case transport.FrameHello:
			if !bytes.Equal(fr.Cert, gen.GetCert()) || gen.GetCert() == nil {
				t.Fatalf("certificate %x, generated code says %x", fr.Cert, gen.GetCert())
			}
			return
		case transport.FrameMessage:
		default:
			t.Fatalf("kind %d without error", fr.Kind)
		}
		m := fr.Msg
		checkMessage(t, m, lim)
		agreeWithGenerated(t, m, gen.GetMessage())
		// On a stream whose ends are the ones it names (or ours, where
		// it names none), the message is accepted with those ends.
		from, self := m.From, m.To
		if from == (id.Handle{}) {
			from = ends[0]
		}
		if self == (id.Handle{}) {
			self = ends[1]
		}
		if err := transport.SettleEnds(m, from, self); err != nil || m.From != from || m.To != self {
			t.Fatalf("ends %s -> %s not settled: %v", m.From, m.To, err)
		}
		checkAddrs(t, fr.Addrs, m, lim)

		// Re-encode with the addresses learned, decode, re-encode.
		enc := newCodec(t, func(p peer.ID) []ma.Multiaddr { return fr.AddrsOf(p) })
		b1, err := enc.AppendMessage(nil, m)
		if errors.Is(err, transport.ErrFrameTooLarge) {
			return // addresses repeated on every handle of a peer can outgrow the input
		}
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		fr2, err := dec.Decode(b1)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if err := transport.SettleEnds(fr2.Msg, from, self); err != nil || !reflect.DeepEqual(fr2.Msg, m) {
			t.Fatalf("round trip changed the message\n got %+v\nwant %+v", fr2.Msg, m)
		}
		checkAddrs(t, fr2.Addrs, fr2.Msg, lim)
		for _, e := range fr2.Addrs {
			if !reflect.DeepEqual(e.Addrs, fr.AddrsOf(e.Peer)) {
				t.Fatalf("addresses of %s: %v, first decode %v", e.Peer, e.Addrs, fr.AddrsOf(e.Peer))
			}
		}
		b2, err := enc.AppendMessage(nil, fr2.Msg)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not canonical (%v)\n%x\n%x", err, b1, b2)
		}
	})
}

// checkMessage asserts what every accepted message must satisfy.
func checkMessage(t *testing.T, m *core.Message, lim transport.Limits) {
	t.Helper()
	if !m.Type.Valid() {
		t.Fatalf("accepted type %d", m.Type)
	}
	if len(m.Payload) > lim.MaxPayload || len(m.Handles) > lim.MaxHandles || len(m.Path) > lim.MaxPath {
		t.Fatalf("limits broken: payload %d handles %d path %d", len(m.Payload), len(m.Handles), len(m.Path))
	}
	all := append([]id.Handle{m.From, m.To, m.Origin, m.Subject}, m.Path...)
	all = append(all, m.Handles...)
	for i, h := range all {
		if h == (id.Handle{}) && i < 4 {
			continue // optional: From and To are the stream's ends when left out
		}
		want, err := secure.NodeIDFromPeer(peer.ID(h.Addr))
		if err != nil || want != h.ID {
			t.Fatalf("handle %d accepted unverified: %s (%v)", i, h, err)
		}
	}
}

// checkAddrs asserts what every frame's learned addresses must satisfy:
// one entry per peer, a peer named by one of m's handles, 1 to MaxAddrs
// addresses.
func checkAddrs(t *testing.T, addrs []transport.PeerAddrs, m *core.Message, lim transport.Limits) {
	t.Helper()
	all := append([]id.Handle{m.From, m.To, m.Origin, m.Subject}, m.Path...)
	all = append(all, m.Handles...)
	for i, e := range addrs {
		if len(e.Addrs) == 0 || len(e.Addrs) > lim.MaxAddrs {
			t.Fatalf("%d addresses learned for %s", len(e.Addrs), e.Peer)
		}
		for _, o := range addrs[:i] {
			if o.Peer == e.Peer {
				t.Fatalf("addresses learned twice for %s", e.Peer)
			}
		}
		if !slices.ContainsFunc(all, func(h id.Handle) bool { return h.Addr == string(e.Peer) }) {
			t.Fatalf("addresses learned for %s, which no handle names", e.Peer)
		}
	}
}

// agreeWithGenerated compares a decoded message with the generated code's
// reading of the same bytes.
func agreeWithGenerated(t *testing.T, m *core.Message, g *pb.Message) {
	t.Helper()
	h := func(x *pb.NodeHandle) id.Handle {
		if x == nil {
			return id.Handle{}
		}
		return id.Handle{ID: id.ID(x.GetNodeId()), Addr: string(x.GetPeerId())}
	}
	hs := func(xs []*pb.NodeHandle) []id.Handle {
		var out []id.Handle
		for _, x := range xs {
			out = append(out, h(x))
		}
		return out
	}
	var key id.ID
	copy(key[:], g.GetKey())
	want := &core.Message{
		Type: core.MsgType(g.GetType()), Flags: core.Flags(g.GetFlags()),
		From: h(g.GetFrom()), To: h(g.GetTo()), Seq: g.GetSeq(), Key: key,
		Origin: h(g.GetOrigin()), App: core.AppID(g.GetApp()), Hops: uint16(g.GetHops()),
		Path: hs(g.GetPath()), Sent: g.GetSent(), Row: int16(g.GetRow()), Copy: g.GetCopyId(),
		Handles: hs(g.GetHandles()), Subject: h(g.GetSubject()),
	}
	if len(g.GetPayload()) > 0 {
		want.Payload = g.GetPayload()
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("codec and generated code disagree\n codec %+v\n   gen %+v", m, want)
	}
}

// FuzzMessageRoundTrip: every well-formed message of a valid type survives
// encode and decode unchanged.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add(uint8(core.MsgRoute), uint8(core.FlagTrace), uint64(7), []byte("0123456789abcdef"), uint32(1), []byte("payload"), uint16(3), int64(-1), int16(2), []byte{0, 1, 2, 3, 4, 5})
	f.Add(uint8(core.MsgHeartbeat), uint8(0), uint64(0), []byte{}, uint32(0), []byte{}, uint16(0), int64(0), int16(-32768), []byte{1, 0, 0x80, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint8(core.MsgSuspect), uint8(0xff), uint64(1<<63), []byte{0xff}, uint32(1<<31), make([]byte, 300), uint16(65535), int64(1<<62), int16(32767), []byte{9, 8, 0x41})
	f.Add(uint8(0), uint8(0), uint64(0), []byte{}, uint32(0), []byte{}, uint16(0), int64(0), int16(0), []byte{0, 1})
	hs := handles(f, 12)
	c := newCodec(f, book(f, hs))
	f.Fuzz(func(t *testing.T, typ, flags uint8, seq uint64, key []byte, app uint32, payload []byte,
		hops uint16, sent int64, row int16, sel []byte) {
		pick := func(i int) id.Handle { return hs[int(sel[i%len(sel)])%len(hs)] }
		if len(sel) < 2 {
			sel = append(sel, 0, 1)
		}
		m := &core.Message{Type: core.MsgType(typ), Flags: core.Flags(flags), From: pick(0), To: pick(1),
			Seq: seq, App: core.AppID(app), Hops: hops, Sent: sent, Row: row,
			Copy: uint32(seq >> 17)} // not a fuzz argument of its own: the corpus keeps its shape
		copy(m.Key[:], key)
		if len(payload) > 0 {
			m.Payload = payload
		}
		// sel[2:] lays out the optional handles: bit 7 set puts the handle in
		// Path, bit 6 makes it the Origin, else it goes to Handles; 0x41
		// (both 6 and 0) makes it the Subject.
		for i := 2; i < len(sel) && i < 64; i++ {
			h := hs[int(sel[i]&0x3f)%len(hs)]
			switch {
			case sel[i]&0x80 != 0:
				m.Path = append(m.Path, h)
			case sel[i]&0x41 == 0x41:
				m.Subject = h
			case sel[i]&0x40 != 0:
				m.Origin = h
			default:
				m.Handles = append(m.Handles, h)
			}
		}
		b, err := c.AppendMessage(nil, m)
		if !m.Type.Valid() {
			if !errors.Is(err, transport.ErrBadType) {
				t.Fatalf("type %d: err = %v", typ, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid message does not encode: %v", err)
		}
		fr, err := c.Decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := transport.SettleEnds(fr.Msg, m.From, m.To); err != nil || !reflect.DeepEqual(fr.Msg, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", fr.Msg, m)
		}
		if n, err := c.FrameSize(m); err != nil || n != len(b) {
			t.Fatalf("FrameSize %d, %v; encoded %d", n, err, len(b))
		}
	})
}

// FuzzFrameReader: frames read back re-encode to exactly the bytes read
// (the length encoding is canonical), and limits hold.
func FuzzFrameReader(f *testing.F) {
	var two []byte
	two = append(transport.AppendFrameHeader(two, 3), "abc"...)
	two = transport.AppendFrameHeader(two, 0)
	f.Add(two)
	f.Add(append(transport.AppendFrameHeader(nil, 5000), make([]byte, 5000)...))
	f.Add(transport.AppendFrameHeader(nil, 1<<20))
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x05, 1, 2})
	for _, b := range messageSeeds(f)[:3] {
		f.Add(append(transport.AppendFrameHeader(nil, len(b)), b...))
	}
	const max = 8192 // small, so the fuzzer reaches it; above 4096 frames take the pooled path
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := transport.NewFrameReader(bytes.NewReader(data), max)
		defer fr.Release()
		var frames [][]byte
		var err error
		for len(frames) <= len(data) {
			var p []byte
			if p, err = fr.ReadFrame(); err != nil {
				break
			}
			if len(p) > max {
				t.Fatalf("frame of %d bytes, limit %d", len(p), max)
			}
			frames = append(frames, bytes.Clone(p))
		}
		if err == nil {
			t.Fatal("more frames than bytes")
		}
		if err != io.EOF && transport.ReasonOf(err) == transport.ReasonOther {
			t.Fatalf("error without a reason: %v", err)
		}
		var buf bytes.Buffer
		fw := transport.NewFrameWriter(&buf, max)
		for _, p := range frames {
			if err := fw.WriteFrame(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, buf.Bytes()) {
			t.Fatal("frames re-encode to other bytes than were read")
		}
		if err == io.EOF && buf.Len() != len(data) {
			t.Fatalf("clean end after %d of %d bytes", buf.Len(), len(data))
		}
	})
}

// FuzzKeyFile: a key file loads only if it holds a canonical Ed25519 key
// and has safe permissions, and is never modified either way.
func FuzzKeyFile(f *testing.F) {
	priv, err := secure.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := crypto.MarshalPrivateKey(priv)
	secp, _, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	secpBytes, _ := crypto.MarshalPrivateKey(secp)
	f.Add(good, uint16(0o600))
	f.Add(good, uint16(0o644))
	f.Add(good[:40], uint16(0o600))
	f.Add(append(bytes.Clone(good), 0), uint16(0o400))
	f.Add(secpBytes, uint16(0o600))
	f.Add([]byte{}, uint16(0o600))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----"), uint16(0o600))
	f.Fuzz(func(t *testing.T, data []byte, mode uint16) {
		perm := os.FileMode(mode&0o077) | 0o600
		path := filepath.Join(t.TempDir(), "node.key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		k, created, err := secure.LoadOrCreateKey(path)
		after, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(after, data) {
			t.Fatalf("key file changed (%v)", rerr)
		}
		_, perr := secure.ParseKey(data)
		if err != nil {
			if !errors.Is(err, secure.ErrKeyFile) || !strings.Contains(err.Error(), path) {
				t.Fatalf("unclear error: %v", err)
			}
			if perr == nil && perm&0o077 == 0 {
				t.Fatalf("ParseKey accepts what LoadOrCreateKey refuses: %v", err)
			}
			return
		}
		if created || perm&0o077 != 0 || perr != nil {
			t.Fatalf("loaded: created=%v mode=%04o ParseKey=%v", created, perm, perr)
		}
		if k.Type() != crypto.Ed25519 {
			t.Fatalf("loaded a %s key", k.Type())
		}
		if canon, _ := crypto.MarshalPrivateKey(k); !bytes.Equal(canon, data) {
			t.Fatal("loaded a key from a non-canonical file")
		}
		if _, err := secure.NodeID(k.GetPublic()); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzIDParse: accepted text is 32 hex digits and round-trips.
func FuzzIDParse(f *testing.F) {
	for _, s := range []string{"00112233445566778899aabbccddeeff", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "", "0x1122", "g0112233445566778899aabbccddeeff", "00112233445566778899aabbccddeef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := id.Parse(s)
		if err != nil {
			if !errors.Is(err, id.ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if x.String() != strings.ToLower(s) {
			t.Fatalf("Parse(%q).String() = %q", s, x)
		}
		if y, err := id.Parse(x.String()); err != nil || y != x {
			t.Fatalf("round trip: %s, %v", y, err)
		}
		if y, err := id.FromBytes(x[:]); err != nil || y != x {
			t.Fatalf("FromBytes: %s, %v", y, err)
		}
	})
}

// FuzzNodeIDFromPeer: an accepted peer ID is the canonical peer ID of an
// Ed25519 key, and its node id is that key's.
func FuzzNodeIDFromPeer(f *testing.F) {
	for _, h := range handles(f, 3) {
		f.Add([]byte(h.Addr))
		f.Add([]byte(h.Addr)[:20])
	}
	_, secp, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
	sp, _ := peer.IDFromPublicKey(secp)
	f.Add([]byte(sp))
	sha, _ := mh.Sum([]byte("x"), mh.SHA2_256, -1)
	f.Add([]byte(sha))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := peer.ID(b)
		x, err := secure.NodeIDFromPeer(p)
		h, herr := secure.HandleFromPeer(p)
		if (err == nil) != (herr == nil) {
			t.Fatalf("NodeIDFromPeer %v, HandleFromPeer %v", err, herr)
		}
		if err != nil {
			if !errors.Is(err, secure.ErrPeerID) {
				t.Fatalf("error %v does not wrap ErrPeerID", err)
			}
			return
		}
		pub, err := p.ExtractPublicKey()
		if err != nil || pub.Type() != crypto.Ed25519 {
			t.Fatalf("accepted peer ID without an Ed25519 key: %v", err)
		}
		canon, _ := peer.IDFromPublicKey(pub)
		if canon != p {
			t.Fatal("accepted a non-canonical peer ID")
		}
		want, _ := secure.NodeID(pub)
		if x != want || h.ID != x || h.Addr != string(p) {
			t.Fatalf("node id %s, handle %+v, want %s", x, h, want)
		}
	})
}
