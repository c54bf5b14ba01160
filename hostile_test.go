package pastry

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
	"github.com/pastrynet/pastry/transport/pb"
)

// TestHostileInputNodeKeepsRouting attacks one node of a running overlay
// over its real protocol stream, and checks after each attack that the
// input was refused and counted and that every lookup still ends at the
// true root: an oversize frame, garbage, a handle whose nodeId is not its
// peer's, a message claiming another sender, and a black hole (a peer with
// a valid identity that announces itself, then never acknowledges or
// answers anything).
func TestHostileInputNodeKeepsRouting(t *testing.T) {
	r := rand.New(rand.NewPCG(66, 6))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	victim := o.nodes[0]
	attackerKey, _ := secure.GenerateKey(chachaReader{r})
	attacker, err := transport.NewHost(transport.DefaultHostConfig(attackerKey))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	attacker.Peerstore().AddAddrs(hosts[0].ID(), hosts[0].Addrs(), peerstore.PermanentAddrTTL)
	proto_ := transport.ProtocolID("")
	open := func() network.Stream {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := attacker.NewStream(ctx, hosts[0].ID(), proto_)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	send := func(s network.Stream, frame []byte) {
		s.SetWriteDeadline(time.Now().Add(5 * time.Second))
		s.Write(append(transport.AppendFrameHeader(nil, len(frame)), frame...)) // may fail once reset
	}
	rejected := func(why transport.Reason) func() bool {
		return func() bool { return victim.Transport().Stats().Rejected[why] > 0 }
	}
	stillRoutes := func(what string) {
		t.Helper()
		o.lookups(100, r)
		if bad := o.leafErrors(); bad > 0 {
			t.Fatalf("after %s: %d leaf sets wrong", what, bad)
		}
	}
	handle := func(peerID string, nodeID id.ID) *pb.NodeHandle {
		return &pb.NodeHandle{NodeId: nodeID[:], PeerId: []byte(peerID)}
	}
	atkHandle, _ := secure.HandleFromPeer(attacker.ID())
	victimPB := handle(victim.Self().Addr, victim.ID())
	atkPB := handle(atkHandle.Addr, atkHandle.ID)
	frame := func(m *pb.Message) []byte {
		b, err := protoMarshal(&pb.Frame{Body: &pb.Frame_Message{Message: m}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// 1. Oversize frame: a length prefix far above the limit.
	s := open()
	s.Write(transport.AppendFrameHeader(nil, 64<<20))
	eventually(t, "oversize frame refused", rejected(transport.ReasonFrameTooLarge))
	s.Reset()
	stillRoutes("an oversize frame")

	// 2. Garbage in a well-sized frame.
	s = open()
	send(s, []byte{0xff, 0xfe, 0x07, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef})
	eventually(t, "garbage refused", rejected(transport.ReasonMalformed))
	s.Reset()
	stillRoutes("garbage")

	// 3. A leaf set carrying a forged handle: another node's peer ID with
	// an id chosen next to the victim's (an attempt to enter its leaf set).
	forgedID := victim.ID().U128().Add(id.U128{Lo: 1}).ID()
	s = open()
	send(s, frame(&pb.Message{Type: pb.MsgType_MSG_TYPE_LEAF_REPLY, From: atkPB, To: victimPB,
		Handles: []*pb.NodeHandle{handle(o.nodes[1].Self().Addr, forgedID)}}))
	eventually(t, "forged handle refused", rejected(transport.ReasonNodeIDMismatch))
	if victim.State().Knows(forgedID) {
		t.Fatal("a forged nodeId entered the victim's routing state")
	}
	s.Reset()
	stillRoutes("a forged handle")

	// 4. A message claiming to come from another node.
	s = open()
	send(s, frame(&pb.Message{Type: pb.MsgType_MSG_TYPE_LEAVE, From: handle(o.nodes[1].Self().Addr, o.nodes[1].ID()), To: victimPB}))
	eventually(t, "impersonation refused", rejected(transport.ReasonFromMismatch))
	if !victim.State().Knows(o.nodes[1].ID()) {
		t.Fatal("a forged leave removed a live node")
	}
	s.Reset()
	stillRoutes("impersonation")

	// 5. A black hole: a valid identity announces itself, then reads
	// everything and answers nothing. It is probed before it is admitted
	// (core/maintain.go, Admission), never answers, and so never enters
	// the victim's state; lookups for keys next to its id end at the true
	// root among the honest nodes. (Before probes came first, it was
	// admitted at once and routed around after hop timeouts.)
	attacker.SetStreamHandler(proto_, func(s network.Stream) {
		buf := make([]byte, 4096)
		for {
			if _, err := s.Read(buf); err != nil {
				return
			}
		}
	})
	before, _ := victim.Stats(context.Background())
	s = open()
	send(s, frame(&pb.Message{Type: pb.MsgType_MSG_TYPE_ANNOUNCE, From: atkPB, To: victimPB, Flags: uint32(core.FlagWantReply)}))
	eventually(t, "black hole probed", func() bool {
		st, _ := victim.Stats(context.Background())
		return st.Core.CandidateProbes > before.Core.CandidateProbes
	})
	for range 50 {
		key := atkHandle.ID.U128().Add(id.U128{Lo: r.Uint64() >> 8}).ID()
		o.lookupKey(victim, key)
		if victim.State().Knows(atkHandle.ID) {
			t.Fatal("a node that never answered entered the victim's routing state")
		}
	}
	s.Reset()
	stillRoutes("a black hole")
}

func protoMarshal(m *pb.Frame) ([]byte, error) { return proto.Marshal(m) }

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
