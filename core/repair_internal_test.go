package core

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// repairNode is a joined node holding a few hundred random entries.
func repairNode(t *testing.T) *Machine {
	t.Helper()
	self := id.Handle{ID: id.MustParse("80000000000000000000000000000000"), Addr: "self"}
	n, err := NewMachine(SimConfig(), self, fixedEnv{prox: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Bootstrap(0); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		n.state.Consider(routing.Entry{Handle: id.Handle{ID: id.Random(rng), Addr: fmt.Sprint("held-", i)}, Prox: 20000})
	}
	n.Ready()
	n.Advance()
	return n
}

func sent(n *Machine) []Message {
	ms := append([]Message(nil), n.Ready().Messages...)
	n.Advance()
	return ms
}

// A node probed by a stranger that its state would take (here the leaf
// set: the stranger is next to it in the id space) probes it back on its
// reply (FlagProbe), not with a probe of its own, and admits it once the
// stranger answers that.
func TestProbeBackRidesOnTheReply(t *testing.T) {
	n := repairNode(t)
	x := id.Handle{ID: id.MustParse("80000000000000000000000000000001"), Addr: "stranger"}
	if !n.state.Leaves.Wants(x.ID) || n.state.Knows(x.ID) {
		t.Fatal("the leaf set does not want the stranger, or knows it already")
	}
	if err := n.Step(time.Second, &Message{Type: MsgProbe, From: x, To: n.self, Seq: 41}); err != nil {
		t.Fatal(err)
	}
	out := sent(n)
	if len(out) != 1 || out[0].Type != MsgProbeReply || out[0].To.ID != x.ID || out[0].Flags&FlagProbe == 0 {
		t.Fatalf("sent %v; want one probe reply to the stranger with a probe riding on it", out)
	}
	if n.probes[x.ID] == nil {
		t.Fatal("no probe of the stranger in flight")
	}
	if err := n.Step(time.Second+time.Millisecond, &Message{Type: MsgProbeReply, From: x, To: n.self, Seq: out[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if n.probes[x.ID] != nil || !n.state.Knows(x.ID) {
		t.Fatalf("after the stranger's answer: probe pending %v, admitted %v; want settled and admitted", n.probes[x.ID] != nil, n.state.Knows(x.ID))
	}
	// The prober's side: a reply that carries a probe is answered with a
	// plain probe reply.
	if err := n.Step(2*time.Second, &Message{Type: MsgProbeReply, Flags: FlagProbe, From: x, To: n.self, Seq: 77}); err != nil {
		t.Fatal(err)
	}
	if out := sent(n); len(out) != 1 || out[0].Type != MsgProbeReply || out[0].Seq != 77 || out[0].Flags&FlagProbe != 0 {
		t.Fatalf("sent %v; want one plain probe reply for seq 77", out)
	}
}

// A probe that crosses this node's own probe of its sender on the way is
// not answered: this node's probe answers it. Once nothing of ours is in
// flight, a probe is answered again.
func TestCrossedProbeNotAnswered(t *testing.T) {
	n := repairNode(t)
	es := n.state.Table.Row(0, nil)
	if len(es) == 0 {
		t.Fatal("empty row 0")
	}
	y := es[0].Handle
	n.probeEntry(es[0])
	if out := sent(n); len(out) != 1 || out[0].Type != MsgProbe || out[0].To.ID != y.ID {
		t.Fatalf("sent %v; want our probe of %v", out, y)
	}
	if err := n.Step(time.Second/2, &Message{Type: MsgProbe, From: y, To: n.self, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if out := sent(n); len(out) != 0 {
		t.Fatalf("sent %v in answer to a probe that crossed ours; want nothing", out)
	}
	if n.probes[y.ID] != nil {
		t.Fatal("our probe was not settled by the crossing probe")
	}
	if err := n.Step(time.Second, &Message{Type: MsgProbe, From: y, To: n.self, Seq: 6}); err != nil {
		t.Fatal(err)
	}
	if out := sent(n); len(out) != 1 || out[0].Type != MsgProbeReply || out[0].Seq != 6 {
		t.Fatalf("sent %v; want a reply to a probe with none of ours in flight", out)
	}
}

// A failure notice goes to the leaves that hold the failed node as a
// leaf: all of those on its side, and on the other side the L/2 - i
// nearest, i being its place on its own side.
func TestNoticeToTheLeavesHoldingTheFailed(t *testing.T) {
	n := repairNode(t)
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	half := n.state.Leaves.Half()
	if len(l) != half || len(r) != half {
		t.Fatalf("leaf set %d+%d, want full sides of %d", len(l), len(r), half)
	}
	count := func(iL, iR int) int {
		k := 0
		for _, e := range n.state.Leaves.Members(nil) {
			if n.heldAsLeaf(e.ID, iL, iR, l, r) {
				k++
			}
		}
		return k
	}
	for i := 1; i <= half; i++ {
		if got, want := count(i, 0), half+half-i; got != want {
			t.Errorf("failed node %d-th on the left: %d leaves told, want %d", i, got, want)
		}
		if got, want := count(0, i), half+half-i; got != want {
			t.Errorf("failed node %d-th on the right: %d leaves told, want %d", i, got, want)
		}
	}
	if got := count(1, 2); got != 2*half {
		t.Errorf("failed node on both sides: %d told, want all %d", got, 2*half)
	}
}
