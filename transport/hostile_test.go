package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/transport/pb"
)

// Hostile peers speak the protocol by hand over raw streams. After each
// attack the victim must still carry good traffic.

// rawStream opens a raw protocol stream from h to the victim.
func rawStream(t *testing.T, h host.Host, victim *node) network.Stream {
	t.Helper()
	h.Peerstore().AddAddrs(victim.h.ID(), victim.h.Addrs(), peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, victim.h.ID(), victim.t.Protocol())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	return s
}

// writeFrame writes a length-prefixed frame.
func writeFrame(t *testing.T, s network.Stream, frame []byte) {
	t.Helper()
	s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write(append(AppendFrameHeader(nil, len(frame)), frame...)); err != nil {
		t.Fatal(err)
	}
}

// expectReset waits for the victim to reset s: a read fails with something
// other than a timeout or a clean end. Then it frees s.
func expectReset(t *testing.T, s network.Stream) {
	t.Helper()
	defer s.Reset()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [64]byte
	for {
		_, err := s.Read(buf[:])
		if err == nil {
			continue
		}
		if isTimeout(err) || errors.Is(err, io.EOF) {
			t.Fatalf("the victim did not reset the stream: %v", err)
		}
		return
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// expectOpen checks that s, a raw stream from the host of n, is still
// served: a ping on it is answered on the victim's own stream to n, whose
// transport counts the pong late (it never sent that ping).
func expectOpen(t *testing.T, s network.Stream, n *node) {
	t.Helper()
	before := n.t.Stats().PongsLate
	writeFrame(t, s, AppendPing(nil, 7))
	eventually(t, 5*time.Second, "the pong", func() bool { return n.t.Stats().PongsLate > before })
}

// stillWorks checks that the victim takes good traffic from a fresh peer
// and from the attacker's own transport.
func stillWorks(t *testing.T, victim *node, others ...*node) {
	t.Helper()
	before := len(victim.in.snapshot())
	for i, o := range others {
		introduce(o, victim)
		if err := o.t.Send(msg(core.MsgProbe, o, victim, uint64(1000+i))); err != nil {
			t.Fatal(err)
		}
	}
	victim.in.waitN(t, before+len(others), 5*time.Second)
}

func rejected(n *node, r Reason) func() bool {
	return func() bool { return n.t.Stats().Rejected[r] >= 1 }
}

func TestHostileOversizeFrame(t *testing.T) {
	victim, attacker, good := newNode(t, 1), newNode(t, 2), newNode(t, 3)
	s := rawStream(t, attacker.h, victim)
	s.Write(AppendFrameHeader(nil, DefaultMaxFrame+1)) // and no body: must not wait for it
	expectReset(t, s)
	eventually(t, 5*time.Second, "the rejection", rejected(victim, ReasonFrameTooLarge))
	// A 10-byte length prefix (a varint overflow) too.
	s2 := rawStream(t, attacker.h, victim)
	s2.Write(bytes.Repeat([]byte{0xff}, 10))
	expectReset(t, s2)
	if got := len(victim.in.snapshot()); got != 0 {
		t.Fatalf("delivered %d messages", got)
	}
	stillWorks(t, victim, good, attacker)
}

func TestHostileGarbage(t *testing.T) {
	victim, attacker, good := newNode(t, 1), newNode(t, 2), newNode(t, 3)
	s := rawStream(t, attacker.h, victim)
	junk := make([]byte, 300)
	rand.Read(junk)
	junk[0] = 0xff // field 31, wire type 7: not protobuf
	writeFrame(t, s, junk)
	expectReset(t, s)
	eventually(t, 5*time.Second, "the rejection", rejected(victim, ReasonMalformed))
	// A truncated frame: the stream ends inside a frame.
	s2 := rawStream(t, attacker.h, victim)
	s2.Write(append(AppendFrameHeader(nil, 100), 1, 2, 3))
	s2.CloseWrite()
	expectReset(t, s2)
	eventually(t, 5*time.Second, "the rejection", rejected(victim, ReasonBadFrame))
	// A pong for a ping never sent: counted late, the stream goes on.
	s3 := rawStream(t, attacker.h, victim)
	writeFrame(t, s3, AppendPong(nil, 1))
	eventually(t, 5*time.Second, "the late pong", func() bool { return victim.t.Stats().PongsLate == 1 })
	expectOpen(t, s3, attacker)
	if got := len(victim.in.snapshot()); got != 0 {
		t.Fatalf("delivered %d messages", got)
	}
	stillWorks(t, victim, good, attacker)
}

// Well-framed but invalid messages are dropped and counted; the stream goes
// on and carries the attacker's next, honest message.
func TestHostileInvalidMessages(t *testing.T) {
	victim, attacker, other := newNode(t, 1), newNode(t, 2), newNode(t, 3)
	s := rawStream(t, attacker.h, victim)
	c := testCodec(t, nil)
	enc := func(m *core.Message) []byte {
		b, err := c.AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h := func(x identity, nodeID []byte) *pb.NodeHandle {
		return &pb.NodeHandle{NodeId: nodeID, PeerId: []byte(x.pid)}
	}
	frame := func(m *pb.Message) []byte {
		b, err := proto.Marshal(&pb.Frame{Body: &pb.Frame_Message{Message: m}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// 1. From is another (real) node: impersonation. (Our encoder leaves
	// From and To out: they are the stream's ends.)
	writeFrame(t, s, frame(&pb.Message{Type: pb.MsgType_MSG_TYPE_ROUTE, From: h(other.id, other.id.h.ID[:])}))
	eventually(t, 5*time.Second, "from-mismatch", rejected(victim, ReasonFromMismatch))
	// 2. A handle whose node_id is not its peer's.
	forged := &pb.Message{
		Type: pb.MsgType_MSG_TYPE_LEAF_REPLY,
		From: h(attacker.id, attacker.id.h.ID[:]), To: h(victim.id, victim.id.h.ID[:]),
		Handles: []*pb.NodeHandle{h(other.id, attacker.id.h.ID[:])}, // other's peer, a chosen id
	}
	writeFrame(t, s, frame(forged))
	eventually(t, 5*time.Second, "node-id-mismatch", rejected(victim, ReasonNodeIDMismatch))
	// 3. Our own From with a forged node id (the transport's own check).
	forged.Handles = nil
	forged.From.NodeId = other.id.h.ID[:]
	writeFrame(t, s, frame(forged))
	eventually(t, 5*time.Second, "two node-id-mismatches", func() bool { return victim.t.Stats().Rejected[ReasonNodeIDMismatch] >= 2 })
	// 4. Addressed to someone else.
	writeFrame(t, s, frame(&pb.Message{Type: pb.MsgType_MSG_TYPE_ROUTE, From: h(attacker.id, attacker.id.h.ID[:]), To: h(other.id, other.id.h.ID[:])}))
	eventually(t, 5*time.Second, "misdirected", rejected(victim, ReasonMisdirected))
	// 5. An unknown type.
	forged.From.NodeId = attacker.id.h.ID[:]
	forged.Type = 200
	writeFrame(t, s, frame(forged))
	eventually(t, 5*time.Second, "bad-type", rejected(victim, ReasonBadType))

	if got := victim.in.snapshot(); len(got) != 0 {
		t.Fatalf("delivered %v", got[0])
	}
	// The same stream still carries an honest message.
	expectOpen(t, s, attacker)
	writeFrame(t, s, enc(&core.Message{Type: core.MsgProbe, From: attacker.id.h, To: victim.id.h, Seq: 5}))
	got := victim.in.waitN(t, 1, 5*time.Second)
	if got[0].Seq != 5 || got[0].From != attacker.id.h {
		t.Fatalf("delivered %+v", got[0])
	}
	if st := victim.t.Stats(); st.StreamResets != 0 || st.TotalRejected() != 5 {
		t.Fatalf("resets %d, rejected %v", st.StreamResets, st.Rejected)
	}
	stillWorks(t, victim, other)
}

// A peer whose key is not Ed25519 has no Pastry identity: its streams are
// refused.
func TestHostileNonEd25519Peer(t *testing.T) {
	victim := newNode(t, 1)
	priv, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s := rawStream(t, h, victim)
	expectReset(t, s)
	eventually(t, 5*time.Second, "bad-remote", rejected(victim, ReasonBadRemote))
}

// A peer that accepts our stream and never reads it: writes time out, the
// stream is reset, the queue overflows and drops, pings time out, and the
// transport keeps serving others.
func TestHostileStreamNeverRead(t *testing.T) {
	victim := newNode(t, 1, Timeouts(5*time.Second, 300*time.Millisecond, time.Minute), QueueLimits(16, 4<<20))
	good := newNode(t, 3)
	sink := newIdentity(t, 2)
	sh, err := NewHost(DefaultHostConfig(sink.priv))
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	held := make(chan network.Stream, 16)
	sh.SetStreamHandler(victim.t.Protocol(), func(s network.Stream) { held <- s }) // never read, never answered
	victim.h.Peerstore().AddAddrs(sh.ID(), sh.Addrs(), peerstore.PermanentAddrTTL)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := victim.t.Ping(ctx, ph(sh.ID())); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping to a silent peer: %v", err)
	}
	big := make([]byte, 256<<10)
	m := &core.Message{Type: core.MsgRoute, From: victim.id.h, To: sink.h, Payload: big}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		victim.t.Send(m) // errors (queue full) expected
		st := victim.t.Stats()
		if st.Dropped[DropWrite] > 0 && st.Dropped[DropQueueFull] > 0 && st.StreamResets > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := victim.t.Stats()
	if st.Dropped[DropWrite] == 0 || st.Dropped[DropQueueFull] == 0 || st.StreamResets == 0 {
		t.Fatalf("write drops %d, queue drops %d, resets %d: the silent peer was not detected",
			st.Dropped[DropWrite], st.Dropped[DropQueueFull], st.StreamResets)
	}
	stillWorks(t, victim, good)
	sh.RemoveStreamHandler(victim.t.Protocol())
	for len(held) > 0 {
		(<-held).Reset()
	}
}

// Many streams from one peer: only the newest is served, and the handler is
// still never called concurrently for that peer (the inbox checks).
func TestHostileManyStreamsFromOnePeer(t *testing.T) {
	victim, attacker := newNode(t, 1), newNode(t, 2)
	c := testCodec(t, nil)
	var streams []network.Stream
	for range 2 { // the resource manager allows 2 inbound per peer
		streams = append(streams, rawStream(t, attacker.h, victim))
	}
	for i, s := range streams {
		b, _ := c.AppendMessage(nil, &core.Message{Type: core.MsgProbe, From: attacker.id.h, To: victim.id.h, Seq: uint64(i)})
		writeFrame(t, s, b)
	}
	// The handler sees a stream when its first frame arrives, so either
	// may be the older one; exactly one is reset.
	victim.in.waitN(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "one live inbound stream", func() bool {
		in, _ := ourStreams(victim.h, attacker.h, victim.t.Protocol())
		return in == 1
	})
}

// Close does not wait for peers that never finish their side of a stream.
func TestHostileCloseDoesNotWaitForSilentPeers(t *testing.T) {
	victim := newNode(t, 1, Timeouts(time.Second, time.Second, 50*time.Millisecond))
	sink := newIdentity(t, 2)
	sh, err := NewHost(DefaultHostConfig(sink.priv))
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	held := make(chan network.Stream, 4)
	sh.SetStreamHandler(victim.t.Protocol(), func(s network.Stream) { held <- s })
	victim.h.Peerstore().AddAddrs(sh.ID(), sh.Addrs(), peerstore.PermanentAddrTTL)
	if err := victim.t.Send(&core.Message{Type: core.MsgProbe, From: victim.id.h, To: sink.h}); err != nil {
		t.Fatal(err)
	}
	var s network.Stream
	select {
	case s = <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("no stream")
	}
	defer s.Reset()
	// The writer idles out and closes its stream; the sink never closes
	// its side, and the victim does not wait for it.
	eventually(t, 5*time.Second, "the writer to idle out", func() bool {
		victim.t.mu.Lock()
		defer victim.t.mu.Unlock()
		return len(victim.t.peers) == 0 && len(victim.t.live) == 0
	})
	start := time.Now()
	victim.t.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s", d)
	}
}
