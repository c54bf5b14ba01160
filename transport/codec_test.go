package transport

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport/pb"
)

func testIDs(t testing.TB, n int) []identity {
	ids := make([]identity, n)
	for i := range ids {
		ids[i] = newIdentity(t, uint64(i+1))
	}
	return ids
}

func TestCodecRoundTripEveryType(t *testing.T) {
	ids := testIDs(t, 6)
	book := map[peer.ID][]ma.Multiaddr{
		ids[2].pid: {mustAddr(t, "/ip4/127.0.0.1/tcp/4001"), mustAddr(t, "/ip4/127.0.0.1/udp/4001/quic-v1")},
		ids[3].pid: {mustAddr(t, "/dns/example.org/tcp/1")},
	}
	// From and To go without addresses, but for an announcement's From;
	// the book has some for them too.
	withFromTo := maps.Clone(book)
	withFromTo[ids[0].pid] = []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}
	withFromTo[ids[1].pid] = []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/2")}
	c := testCodec(t, addrBook(withFromTo))
	for _, typ := range allTypes() {
		m := fullMessage(typ, ids)
		b, err := c.AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("%s: encode: %v", typ, err)
		}
		if n, err := c.FrameSize(m); err != nil || n != len(b) {
			t.Fatalf("%s: FrameSize = %d, %v; encoded %d", typ, n, err, len(b))
		}
		f, err := c.Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", typ, err)
		}
		// The hop's ends are the stream's: To never goes on the wire,
		// From only in an announcement (for its addresses).
		wantFrom := id.Handle{}
		if typ == core.MsgAnnounce {
			wantFrom = m.From
		}
		if f.Kind != FrameMessage || f.Msg.From != wantFrom || f.Msg.To != (id.Handle{}) {
			t.Fatalf("%s: decoded ends %s -> %s, want %s -> none", typ, f.Msg.From, f.Msg.To, wantFrom)
		}
		if err := SettleEnds(f.Msg, m.From, m.To); err != nil || !reflect.DeepEqual(f.Msg, m) {
			t.Fatalf("%s: round trip (%v)\n got %+v\nwant %+v", typ, err, f.Msg, m)
		}
		want := book
		if typ == core.MsgAnnounce {
			want = maps.Clone(book)
			want[ids[0].pid] = withFromTo[ids[0].pid]
		}
		if !addrsAre(f, want) {
			t.Fatalf("%s: addrs\n got %v\nwant %v", typ, f.Addrs, want)
		}
		// The prefixed form is the length and the same bytes.
		pf, _ := c.AppendMessageFrame(nil, m)
		if want := append(AppendFrameHeader(nil, len(b)), b...); !bytes.Equal(pf, want) {
			t.Fatalf("%s: prefixed frame differs", typ)
		}
	}
}

// addrsAre says whether f carried exactly the (non-empty) lists of want:
// as many entries, and each peer's the one wanted (so no peer twice).
func addrsAre(f Frame, want map[peer.ID][]ma.Multiaddr) bool {
	if len(f.Addrs) != len(want) {
		return false
	}
	for p, as := range want {
		if !reflect.DeepEqual(f.AddrsOf(p), as) {
			return false
		}
	}
	return true
}

// Frame.Addrs has one entry per peer that carried addresses, in handle
// order, from the first of its handles that carried any; a frame's list is
// its own, unchanged by later decodes.
func TestDecodeAddrsPerPeer(t *testing.T) {
	ids := testIDs(t, 9)
	addr := func(i int) ma.Multiaddr { return mustAddr(t, fmt.Sprintf("/ip4/10.0.0.%d/tcp/1", i)) }
	h := func(x identity, addrs ...ma.Multiaddr) *pb.NodeHandle {
		ph := &pb.NodeHandle{NodeId: x.h.ID[:], PeerId: []byte(x.pid)}
		for _, a := range addrs {
			ph.Addrs = append(ph.Addrs, a.Bytes())
		}
		return ph
	}
	m := &pb.Message{
		Type: pb.MsgType_MSG_TYPE_ROUTE, From: h(ids[0]), To: h(ids[1]), Key: make([]byte, 16),
		Origin: h(ids[2], addr(2), addr(12)),
		Path:   []*pb.NodeHandle{h(ids[2], addr(99)), h(ids[3])}, // a later handle of 2; 3 without
		Handles: []*pb.NodeHandle{h(ids[3], addr(3)), h(ids[4], addr(4)), h(ids[5], addr(5)),
			h(ids[6], addr(6)), h(ids[5], addr(98)), h(ids[7], addr(7))},
		Subject: h(ids[8], addr(8)),
	}
	c := testCodec(t, nil)
	f, err := c.Decode(marshalFrame(t, m))
	if err != nil {
		t.Fatal(err)
	}
	want := []PeerAddrs{
		{ids[2].pid, []ma.Multiaddr{addr(2), addr(12)}}, {ids[3].pid, []ma.Multiaddr{addr(3)}},
		{ids[4].pid, []ma.Multiaddr{addr(4)}}, {ids[5].pid, []ma.Multiaddr{addr(5)}},
		{ids[6].pid, []ma.Multiaddr{addr(6)}}, {ids[7].pid, []ma.Multiaddr{addr(7)}},
		{ids[8].pid, []ma.Multiaddr{addr(8)}},
	}
	if !reflect.DeepEqual(f.Addrs, want) {
		t.Fatalf("addrs\n got %v\nwant %v", f.Addrs, want)
	}
	if a := f.AddrsOf(ids[5].pid); !reflect.DeepEqual(a, want[3].Addrs) || f.AddrsOf(ids[0].pid) != nil {
		t.Fatalf("AddrsOf: %v, %v", a, f.AddrsOf(ids[0].pid))
	}
	// Decodes after it, with other addresses and fewer peers, leave it be.
	m.Origin, m.Path, m.Handles, m.Subject = h(ids[3], addr(33)), nil, []*pb.NodeHandle{h(ids[2], addr(22))}, nil
	for range 2 {
		f2, err := c.Decode(marshalFrame(t, m))
		if err != nil {
			t.Fatal(err)
		}
		if want2 := []PeerAddrs{{ids[3].pid, []ma.Multiaddr{addr(33)}}, {ids[2].pid, []ma.Multiaddr{addr(22)}}}; !reflect.DeepEqual(f2.Addrs, want2) {
			t.Fatalf("second frame's addrs\n got %v\nwant %v", f2.Addrs, want2)
		}
	}
	if !reflect.DeepEqual(f.Addrs, want) {
		t.Fatalf("first frame's addrs changed by later decodes\n got %v\nwant %v", f.Addrs, want)
	}
}

// The same before and past the point where the decoder indexes the peers
// (addrsIndexAt).
func TestDecodeAddrsManyPeers(t *testing.T) {
	n := 2*addrsIndexAt + 3
	ids := testIDs(t, n)
	addr := func(i int) ma.Multiaddr { return mustAddr(t, fmt.Sprintf("/ip4/10.0.%d.%d/tcp/1", i/256, i%256)) }
	m := &pb.Message{Type: pb.MsgType_MSG_TYPE_LEAF_REPLY}
	var want []PeerAddrs
	for i, x := range ids {
		m.Handles = append(m.Handles, &pb.NodeHandle{NodeId: x.h.ID[:], PeerId: []byte(x.pid), Addrs: [][]byte{addr(i).Bytes()}})
		want = append(want, PeerAddrs{x.pid, []ma.Multiaddr{addr(i)}})
		// Later handles of peers from before the index and from after
		// it: they change nothing.
		for _, j := range []int{0, 1, addrsIndexAt - 2, addrsIndexAt - 1, addrsIndexAt, addrsIndexAt + 1} {
			if i == j+1 || i == n-1 {
				y := ids[j]
				m.Handles = append(m.Handles, &pb.NodeHandle{NodeId: y.h.ID[:], PeerId: []byte(y.pid), Addrs: [][]byte{addr(1000 + j).Bytes()}})
			}
		}
	}
	f, err := testCodec(t, nil).Decode(marshalFrame(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Addrs, want) {
		t.Fatalf("addrs\n got %v\nwant %v", f.Addrs, want)
	}
}

func TestCodecMinimalMessage(t *testing.T) {
	ids := testIDs(t, 2)
	c := testCodec(t, nil)
	m := &core.Message{Type: core.MsgProbe, From: ids[0].h, To: ids[1].h}
	b, err := c.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	// Type alone: the ends are the stream's.
	if want := []byte{byte(fFrameMessage<<3 | protowire.BytesType), 2, byte(fMsgType << 3), byte(m.Type)}; !bytes.Equal(b, want) {
		t.Fatalf("encoded %x, want %x", b, want)
	}
	f, err := c.Decode(b)
	if err != nil || f.Addrs != nil {
		t.Fatalf("got %+v, %v, %v", f.Msg, f.Addrs, err)
	}
	if err := SettleEnds(f.Msg, m.From, m.To); err != nil || !reflect.DeepEqual(f.Msg, m) {
		t.Fatalf("got %+v, %v", f.Msg, err)
	}
}

// A received message's ends are the stream's; a message that names
// others is refused, whichever end it names.
func TestSettleEnds(t *testing.T) {
	ids := testIDs(t, 3)
	from, self, other := ids[0].h, ids[1].h, ids[2].h
	cases := []struct {
		name     string
		from, to id.Handle
		want     error
	}{
		{"both left out", id.Handle{}, id.Handle{}, nil},
		{"both named", from, self, nil},
		{"impersonation", other, id.Handle{}, ErrFromMismatch},
		{"same peer, other node id", id.Handle{ID: other.ID, Addr: from.Addr}, self, ErrFromMismatch},
		{"misdirected", from, other, ErrMisdirected},
		{"misdirected, from left out", id.Handle{}, other, ErrMisdirected},
	}
	for _, tc := range cases {
		m := &core.Message{Type: core.MsgRoute, From: tc.from, To: tc.to}
		err := SettleEnds(m, from, self)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && (m.From != from || m.To != self) {
			t.Errorf("%s: ends %s -> %s", tc.name, m.From, m.To)
		}
	}
}

func TestPingPongRoundTrip(t *testing.T) {
	c := testCodec(t, nil)
	for _, nonce := range []uint64{0, 1, 1 << 63} {
		for kind, enc := range map[FrameKind]func([]byte, uint64) []byte{FramePing: AppendPing, FramePong: AppendPong} {
			f, err := c.Decode(enc(nil, nonce))
			if err != nil || f.Kind != kind || f.Nonce != nonce {
				t.Fatalf("kind %d nonce %d: %+v, %v", kind, nonce, f, err)
			}
		}
	}
	// The prefixed form used on streams.
	fr := NewFrameReader(bytes.NewReader(appendNonceFrame(nil, fFramePong, 42)), 0)
	p, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f, err := c.Decode(p); err != nil || f.Kind != FramePong || f.Nonce != 42 {
		t.Fatalf("%+v, %v", f, err)
	}
}

// The hand-written codec must agree with the code generated from
// pastry.proto, byte for byte: this is what makes the schema the contract.
func TestCodecMatchesGeneratedCode(t *testing.T) {
	ids := testIDs(t, 6)
	book := map[peer.ID][]ma.Multiaddr{ids[3].pid: {mustAddr(t, "/ip4/10.0.0.1/tcp/9")}}
	c := testCodec(t, addrBook(book))
	for _, typ := range allTypes() {
		m := fullMessage(typ, ids)
		ours, err := c.AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		var gen pb.Frame
		if err := proto.Unmarshal(ours, &gen); err != nil {
			t.Fatalf("%s: generated code cannot parse ours: %v", typ, err)
		}
		gm := gen.GetMessage()
		if gm.GetType() != pb.MsgType(m.Type) || gm.GetSeq() != m.Seq || gm.GetSent() != m.Sent || gm.GetCopyId() != m.Copy ||
			gm.GetRow() != int32(m.Row) || gm.GetHops() != uint32(m.Hops) || !bytes.Equal(gm.GetPayload(), m.Payload) ||
			len(gm.GetHandles()) != len(m.Handles) || len(gm.GetPath()) != len(m.Path) ||
			(gm.GetFrom() != nil) != (typ == core.MsgAnnounce) || gm.GetTo() != nil ||
			len(gm.GetHandles()[0].GetAddrs()) != 1 || len(gm.GetFrom().GetAddrs()) != 0 {
			t.Fatalf("%s: generated code reads %v", typ, gm)
		}
		theirs, err := proto.MarshalOptions{Deterministic: true}.Marshal(&gen)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("%s: encodings differ\n ours %x\ntheirs %x", typ, ours, theirs)
		}
	}
	for _, nonce := range []uint64{0, 99} {
		ping, _ := proto.Marshal(&pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{Nonce: nonce}}})
		pong, _ := proto.Marshal(&pb.Frame{Body: &pb.Frame_Pong{Pong: &pb.Pong{Nonce: nonce}}})
		if !bytes.Equal(ping, AppendPing(nil, nonce)) || !bytes.Equal(pong, AppendPong(nil, nonce)) {
			t.Fatalf("ping/pong %d differ from generated code", nonce)
		}
	}
}

// The wire enum and core.MsgType must list the same types with the same
// numbers.
func TestWireEnumMatchesCore(t *testing.T) {
	for v := range int32(64) {
		name, inPB := pb.MsgType_name[v]
		typ := core.MsgType(v)
		if v == 0 {
			if name != "MSG_TYPE_INVALID" || typ.Valid() {
				t.Fatalf("value 0: %q", name)
			}
			continue
		}
		if inPB != typ.Valid() {
			t.Fatalf("value %d: in pastry.proto %v (%q), valid in core %v", v, inPB, name, typ.Valid())
		}
		if inPB {
			want := "MSG_TYPE_" + strings.ToUpper(strings.ReplaceAll(typ.String(), "-", "_"))
			if name != want {
				t.Fatalf("value %d: pastry.proto says %s, core says %s", v, name, want)
			}
		}
		if typ.Valid() && v >= MsgTypeSlots {
			t.Fatalf("core has %d message types; raise MsgTypeSlots", v+1)
		}
	}
}

// genMessage is a valid wire message built with the generated code, for
// tests that tamper with one field.
func genMessage(ids []identity) *pb.Message {
	h := func(x identity) *pb.NodeHandle {
		return &pb.NodeHandle{NodeId: x.h.ID[:], PeerId: []byte(x.pid)}
	}
	return &pb.Message{
		Type: pb.MsgType_MSG_TYPE_ROUTE, From: h(ids[0]), To: h(ids[1]), Origin: h(ids[2]),
		Path: []*pb.NodeHandle{h(ids[2])}, Handles: []*pb.NodeHandle{h(ids[3])}, Subject: h(ids[4]),
		Key: make([]byte, 16),
	}
}

func marshalFrame(t testing.TB, m *pb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(&pb.Frame{Body: &pb.Frame_Message{Message: m}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejectsNodeIDMismatchInEveryHandle(t *testing.T) {
	ids := testIDs(t, 6)
	c := testCodec(t, nil)
	if _, err := c.Decode(marshalFrame(t, genMessage(ids))); err != nil {
		t.Fatalf("the untampered message: %v", err)
	}
	wrong := ids[5].h.ID[:] // a real node id, of someone else
	tamper := map[string]func(m *pb.Message){
		"from":    func(m *pb.Message) { m.From.NodeId = wrong },
		"to":      func(m *pb.Message) { m.To.NodeId = wrong },
		"origin":  func(m *pb.Message) { m.Origin.NodeId = wrong },
		"subject": func(m *pb.Message) { m.Subject.NodeId = wrong },
		"path":    func(m *pb.Message) { m.Path[0].NodeId = wrong },
		"handles": func(m *pb.Message) {
			m.Handles = append(m.Handles, &pb.NodeHandle{NodeId: wrong, PeerId: []byte(ids[0].pid)})
		},
	}
	for field, f := range tamper {
		m := genMessage(ids)
		f(m)
		_, err := c.Decode(marshalFrame(t, m))
		if !errors.Is(err, ErrNodeIDMismatch) || ReasonOf(err) != ReasonNodeIDMismatch {
			t.Errorf("%s: err = %v, want ErrNodeIDMismatch", field, err)
			continue
		}
		if !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %q does not name the field", field, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	ids := testIDs(t, 6)
	c := testCodec(t, nil)
	lim := c.Limits()
	priv, _ := secure.GenerateKey(nil)
	pub, _ := priv.GetPublic().Raw()
	sha, _ := mh.Sum(pub, mh.SHA2_256, -1)
	addr := mustAddr(t, "/ip4/1.2.3.4/tcp/5").Bytes()

	cases := []struct {
		name   string
		tamper func(m *pb.Message)
		want   error
	}{
		{"invalid type", func(m *pb.Message) { m.Type = 0 }, ErrBadType},
		{"unknown type", func(m *pb.Message) { m.Type = 18 }, ErrBadType},
		{"huge type", func(m *pb.Message) { m.Type = 1 << 20 }, ErrBadType},
		{"flags", func(m *pb.Message) { m.Flags = 256 }, ErrLimit},
		{"hops", func(m *pb.Message) { m.Hops = 1 << 16 }, ErrLimit},
		{"row high", func(m *pb.Message) { m.Row = 1 << 15 }, ErrLimit},
		{"row low", func(m *pb.Message) { m.Row = -1<<15 - 1 }, ErrLimit},
		{"short key", func(m *pb.Message) { m.Key = []byte{1, 2, 3} }, ErrBadID},
		{"long key", func(m *pb.Message) { m.Key = make([]byte, 17) }, ErrBadID},
		{"short node id", func(m *pb.Message) { m.From.NodeId = m.From.NodeId[:15] }, ErrBadID},
		{"empty handle", func(m *pb.Message) { m.Handles = append(m.Handles, &pb.NodeHandle{}) }, ErrBadID},
		{"no peer id", func(m *pb.Message) { m.To.PeerId = nil }, ErrBadPeerID},
		{"garbage peer id", func(m *pb.Message) { m.To.PeerId = bytes.Repeat([]byte{7}, 38) }, ErrBadPeerID},
		{"long peer id", func(m *pb.Message) { m.To.PeerId = make([]byte, 100) }, ErrBadPeerID},
		{"hashed peer id", func(m *pb.Message) { m.To.PeerId = sha }, ErrBadPeerID},
		{"payload", func(m *pb.Message) { m.Payload = make([]byte, lim.MaxPayload+1) }, ErrLimit},
		{"handles", func(m *pb.Message) {
			for range lim.MaxHandles {
				m.Handles = append(m.Handles, m.From)
			}
		}, ErrLimit},
		{"path", func(m *pb.Message) {
			for range lim.MaxPath {
				m.Path = append(m.Path, m.From)
			}
		}, ErrLimit},
		{"addrs", func(m *pb.Message) {
			for range lim.MaxAddrs + 1 {
				m.From.Addrs = append(m.From.Addrs, addr)
			}
		}, ErrLimit},
		{"addr length", func(m *pb.Message) { m.Origin.Addrs = [][]byte{make([]byte, lim.MaxAddrLen+1)} }, ErrLimit},
		{"bad addr", func(m *pb.Message) { m.Origin.Addrs = [][]byte{{0xff, 0xff, 0xff}} }, ErrBadAddr},
		{"empty addr", func(m *pb.Message) { m.Origin.Addrs = [][]byte{{}} }, ErrBadAddr},
	}
	for _, tc := range cases {
		m := genMessage(ids)
		tc.tamper(m)
		_, err := c.Decode(marshalFrame(t, m))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Wire-level damage the generated code cannot express.
func TestDecodeRejectsMalformedWire(t *testing.T) {
	ids := testIDs(t, 6)
	c := testCodec(t, nil)
	good := marshalFrame(t, genMessage(ids))
	// The Message body inside the Frame.
	_, _, n := protowire.ConsumeTag(good)
	msg, _ := protowire.ConsumeBytes(good[n:])
	from := genMessage(ids).From
	fromField, _ := proto.Marshal(&pb.Message{From: from})
	frame := func(parts ...[]byte) []byte {
		var m []byte
		for _, p := range parts {
			m = append(m, p...)
		}
		b := protowire.AppendTag(nil, fFrameMessage, protowire.BytesType)
		return protowire.AppendBytes(b, m)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	cases := map[string][]byte{
		"empty frame":          {},
		"truncated":            good[:len(good)-3],
		"two bodies":           append(append([]byte{}, good...), AppendPing(nil, 1)...),
		"duplicate type":       frame(msg, varint(fMsgType, 1)),
		"duplicate from":       frame(msg, fromField),
		"wrong wire type":      frame(msg, protowire.AppendTag(nil, fMsgSeq, protowire.Fixed64Type), make([]byte, 8)),
		"group":                frame(msg, protowire.AppendTag(nil, 99, protowire.StartGroupType), protowire.AppendTag(nil, 99, protowire.EndGroupType)),
		"body is varint":       varint(fFrameMessage, 5),
		"bad tag":              {0x00},
		"field number 2^29":    frame(msg, varint(1<<29, 1)),
		"overlong varint":      frame(msg, protowire.AppendTag(nil, fMsgSeq, protowire.VarintType), bytes.Repeat([]byte{0xff}, 11)),
		"copy id over 32 bits": frame(msg, varint(fMsgCopy, 1<<32)),
		"ping repeated nonce":  protowire.AppendBytes(protowire.AppendTag(nil, fFramePing, protowire.BytesType), append(varint(fNonce, 1), varint(fNonce, 2)...)),
	}
	for name, b := range cases {
		_, err := c.Decode(b)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if r := ReasonOf(err); r == ReasonOther {
			t.Errorf("%s: error %v has no reason", name, err)
		}
	}
	// Unknown fields are skipped, for forward compatibility.
	f, err := c.Decode(append(frame(msg, varint(200, 1)), protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), []byte("x"))...))
	if err != nil || f.Msg.Type != core.MsgRoute {
		t.Fatalf("unknown fields: %v", err)
	}
	// Too large as a whole.
	small, _ := NewCodec(Limits{MaxFrame: 64, MaxPayload: 10, MaxHandles: 1, MaxPath: 1, MaxAddrs: 1, MaxAddrLen: 10}, nil)
	if _, err := small.Decode(good); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	ids := testIDs(t, 6)
	c := testCodec(t, nil)
	cases := map[string]struct {
		m    *core.Message
		want error
	}{
		"nil":         {nil, ErrBadType},
		"invalid":     {&core.Message{From: ids[0].h, To: ids[1].h}, ErrBadType},
		"no from":     {&core.Message{Type: core.MsgProbe, To: ids[1].h}, ErrMissingHandle},
		"no to":       {&core.Message{Type: core.MsgProbe, From: ids[1].h}, ErrMissingHandle},
		"sim handle":  {&core.Message{Type: core.MsgProbe, From: ids[0].h, To: ids[1].h, Subject: id.Handle{ID: id.MustParse("0123456789abcdef0123456789abcdef")}}, ErrBadPeerID},
		"payload":     {&core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Payload: make([]byte, 1<<20+1)}, ErrLimit},
		"handles":     {&core.Message{Type: core.MsgLeafReply, From: ids[0].h, To: ids[1].h, Handles: make([]id.Handle, 513)}, ErrLimit},
		"path":        {&core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Path: make([]id.Handle, 257)}, ErrLimit},
		"empty entry": {&core.Message{Type: core.MsgLeafReply, From: ids[0].h, To: ids[1].h, Handles: make([]id.Handle, 1)}, ErrBadPeerID},
		"not a peer":  {&core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Origin: id.Handle{ID: ids[1].h.ID, Addr: "node-1"}}, ErrBadPeerID},
		"bad from":    {&core.Message{Type: core.MsgAnnounce, From: id.Handle{ID: ids[0].h.ID, Addr: "node-0"}, To: ids[1].h}, ErrBadPeerID},
		"forged id":   {&core.Message{Type: core.MsgLeafReply, From: ids[0].h, To: ids[1].h, Handles: []id.Handle{{ID: ids[2].h.ID, Addr: ids[3].h.Addr}}}, ErrNodeIDMismatch},
	}
	for name, tc := range cases {
		out, err := c.AppendMessage([]byte("keep"), tc.m)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst modified on error: %q", name, out)
		}
	}
	small, _ := NewCodec(Limits{MaxFrame: 100, MaxPayload: 100, MaxHandles: 1, MaxPath: 1, MaxAddrs: 1, MaxAddrLen: 10}, nil)
	m := &core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Payload: make([]byte, 100)}
	if _, err := small.AppendMessage(nil, m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame too large: %v", err)
	}
}

func TestEncodeTrimsAddresses(t *testing.T) {
	ids := testIDs(t, 2)
	long := mustAddr(t, "/dns/"+strings.Repeat("a", 250)+"/tcp/1")
	var many []ma.Multiaddr
	for i := range 12 {
		many = append(many, mustAddr(t, "/ip4/127.0.0.1/tcp/"+string(rune('1'+i%9))))
		if i == 2 {
			many = append(many, long)
		}
	}
	c, _ := NewCodec(Limits{MaxFrame: DefaultMaxFrame, MaxPayload: 1, MaxHandles: 1, MaxPath: 1, MaxAddrs: 8, MaxAddrLen: 32}, addrBook(map[peer.ID][]ma.Multiaddr{ids[0].pid: many}))
	b, err := c.AppendMessage(nil, &core.Message{Type: core.MsgLeafReply, From: ids[1].h, To: ids[1].h, Handles: []id.Handle{ids[0].h}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := f.AddrsOf(ids[0].pid)
	if len(got) != 8 {
		t.Fatalf("sent %d addresses, want 8", len(got))
	}
	for _, a := range got {
		if a.Equal(long) {
			t.Fatal("sent an address over MaxAddrLen")
		}
	}
}

func TestNewCodecValidatesLimits(t *testing.T) {
	bad := DefaultLimits()
	bad.MaxPayload = bad.MaxFrame + 1
	if _, err := NewCodec(bad, nil); err == nil || !strings.Contains(err.Error(), "MaxPayload") {
		t.Fatalf("err = %v", err)
	}
	bad = DefaultLimits()
	bad.MaxFrame = maxFrameLimit + 1
	if _, err := NewCodec(bad, nil); err == nil || !strings.Contains(err.Error(), "MaxFrame") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeCachedAndUncachedAgree(t *testing.T) {
	ids := testIDs(t, 6)
	c := testCodec(t, nil)
	b, _ := c.AppendMessage(nil, fullMessage(core.MsgHeartbeat, ids))
	f1, err1 := c.Decode(b)
	f2, err2 := c.Decode(b) // handles now cached
	if err1 != nil || err2 != nil || !reflect.DeepEqual(f1.Msg, f2.Msg) {
		t.Fatalf("%v %v", err1, err2)
	}
	// A cached peer ID is still checked against the claimed node id.
	m := genMessage(ids)
	m.From.NodeId = ids[4].h.ID[:]
	if _, err := c.Decode(marshalFrame(t, m)); !errors.Is(err, ErrNodeIDMismatch) {
		t.Fatalf("cached mismatch: %v", err)
	}
}

// heartbeatMessage is a heartbeat carrying a full leaf set of 16 handles.
func heartbeatMessage(tb testing.TB) (*core.Message, *Codec) {
	ids := testIDs(tb, 20)
	m := &core.Message{Type: core.MsgHeartbeat, From: ids[0].h, To: ids[1].h}
	for _, x := range ids[2:18] {
		m.Handles = append(m.Handles, x.h)
	}
	return m, testCodec(tb, nil)
}

// benchDecode decodes m's encoding with c, b.N times.
func benchDecode(b *testing.B, m *core.Message, c *Codec) {
	buf, _ := c.AppendMessage(nil, m)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := c.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEncode encodes m as a prefixed frame with c, b.N times.
func benchEncode(b *testing.B, m *core.Message, c *Codec) {
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendMessageFrame(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeartbeat(b *testing.B) { m, c := heartbeatMessage(b); benchDecode(b, m, c) }
func BenchmarkEncodeHeartbeat(b *testing.B) { m, c := heartbeatMessage(b); benchEncode(b, m, c) }
func BenchmarkDecodeRoute(b *testing.B)     { m, c := routeMessage(b); benchDecode(b, m, c) }
func BenchmarkEncodeRoute(b *testing.B)     { m, c := routeMessage(b); benchEncode(b, m, c) }

// BenchmarkDecodeManyPeers decodes the most address-carrying handles the
// default limits allow, each of another peer with two addresses: the
// decoder's worst case for finding a peer's earlier addresses.
func BenchmarkDecodeManyPeers(b *testing.B) {
	lim := DefaultLimits()
	ids := testIDs(b, 2+lim.MaxPath+lim.MaxHandles)
	book := map[peer.ID][]ma.Multiaddr{}
	for i, x := range ids {
		book[x.pid] = []ma.Multiaddr{mustAddr(b, fmt.Sprintf("/ip4/10.%d.%d.1/tcp/1", i/256, i%256)), mustAddr(b, "/ip4/127.0.0.1/udp/4001/quic-v1")}
	}
	m := &core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Flags: core.FlagTrace}
	for _, x := range ids[2 : 2+lim.MaxPath] {
		m.Path = append(m.Path, x.h)
	}
	for _, x := range ids[2+lim.MaxPath:] {
		m.Handles = append(m.Handles, x.h)
	}
	benchDecode(b, m, testCodec(b, addrBook(book)))
}

// routeMessage is a routed message as a benchmark's probe makes it: an
// origin with two addresses, a key and an 8-byte payload.
func routeMessage(tb testing.TB) (*core.Message, *Codec) {
	ids := testIDs(tb, 3)
	book := map[peer.ID][]ma.Multiaddr{
		ids[2].pid: {mustAddr(tb, "/ip4/127.0.0.1/tcp/4001"), mustAddr(tb, "/ip4/127.0.0.1/udp/4001/quic-v1")},
	}
	c := testCodec(tb, func(p peer.ID) []ma.Multiaddr { return book[p] })
	m := &core.Message{Type: core.MsgRoute, From: ids[0].h, To: ids[1].h, Origin: ids[2].h,
		Key: ids[1].h.ID, Seq: 77, App: 7, Payload: []byte("01234567"), Hops: 2, Sent: 1 << 40, Copy: 3}
	return m, c
}

// The simulator's sizes (ModelFrameSize) are the codec's: for handles that
// each advertise the same address, every message type, full or with only
// what the protocol sets, sizes to exactly its encoded frame.
func TestModelFrameSize(t *testing.T) {
	var ids []identity
	for i := range 6 {
		ids = append(ids, newIdentity(t, uint64(300+i)))
	}
	addr := mustAddr(t, "/ip4/198.51.100.7/udp/4001/quic-v1")
	book := map[peer.ID][]ma.Multiaddr{}
	for _, x := range ids {
		book[x.pid] = []ma.Multiaddr{addr}
	}
	c := testCodec(t, addrBook(book))
	hs := ModelHandleSize(addr)
	for _, typ := range allTypes() {
		full := fullMessage(typ, ids)
		bare := &core.Message{Type: typ, From: ids[0].h, To: ids[1].h, Seq: 9}
		for _, m := range []*core.Message{full, bare} {
			b, err := c.AppendMessageFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if got := ModelFrameSize(m, hs); got != len(b) {
				t.Errorf("%s (%d handles): model %d bytes, encoded %d", typ, len(m.Handles), got, len(b))
			}
		}
	}
}
