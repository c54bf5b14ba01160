package core_test

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
)

// routedTo has node from route a message for key and returns it as its
// first hop receives it (the network is not run).
func routedTo(t *testing.T, o *overlay, from int, key [16]byte) core.Message {
	t.Helper()
	src := o.nw.Node(from)
	if err := routeAt(src.Machine, o.nw.Now(), core.Message{Key: key, App: testAppID, Payload: []byte("dup")}, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range src.Ready().Messages {
		if m.Type == core.MsgRoute {
			src.Advance()
			return m
		}
	}
	t.Fatal("no routed message sent")
	return core.Message{}
}

// A routed message that reaches a node a second time (its previous hop
// timed out and sent it again, or re-routed it onto a path that rejoins
// the first) is acknowledged and not passed on again: the copy already
// handled here is on its way.
func TestDuplicateRoutedMessageIsAckedNotForwarded(t *testing.T) {
	o := newOverlay(t, 31, 40, core.SimConfig(), nil)
	const from = 3
	key, path := multiHopKey(t, o, from)
	m := routedTo(t, o, from, key)
	hop := o.nw.Node(path[1])
	if m.To.ID != hop.Self().ID {
		t.Fatalf("first hop %s, want %s", m.To, hop.Self())
	}
	step := func(m core.Message) (acks, routes int) {
		t.Helper()
		if err := hop.Step(o.nw.Now(), &m); err != nil {
			t.Fatal(err)
		}
		for _, out := range hop.Ready().Messages {
			switch out.Type {
			case core.MsgRouteAck:
				if out.Seq == m.Seq && out.To.ID == m.From.ID {
					acks++
				}
			case core.MsgRoute:
				routes++
			}
		}
		hop.Advance()
		return acks, routes
	}
	before := hop.Stats()
	if acks, routes := step(m); acks != 1 || routes != 1 {
		t.Fatalf("first copy: %d acks, %d forwarded, want 1 and 1", acks, routes)
	}
	again := m
	again.Seq += 1000 // a re-sent copy travels under a new hop seq
	again.Copy = 77   // and is a new copy
	if acks, routes := step(again); acks != 1 || routes != 0 {
		t.Fatalf("second copy: %d acks, %d forwarded, want 1 and 0", acks, routes)
	}
	if got := hop.Stats().Duplicates - before.Duplicates; got != 1 {
		t.Fatalf("duplicates counted %d, want 1", got)
	}
	// The copy handled here coming back is a loop (states disagree while
	// failures are repaired): there may be no other copy, so it is routed
	// again.
	back := m
	back.Seq += 2000
	back.Hops += 3
	if acks, routes := step(back); acks != 1 || routes != 1 {
		t.Fatalf("the same copy again: %d acks, %d forwarded, want 1 and 1", acks, routes)
	}
	if st := hop.Stats(); st.Loops-before.Loops != 1 || st.Duplicates-before.Duplicates != 1 {
		t.Fatalf("loops %d duplicates %d, want 1 and 1", st.Loops-before.Loops, st.Duplicates-before.Duplicates)
	}
	// A loop that persists is cut: the copy is routed again a bounded
	// number of times, then dropped.
	for pass := 2; pass <= 4; pass++ {
		back.Seq += 1000
		back.Hops += 3
		want := 1
		if pass > 2 {
			want = 0
		}
		if acks, routes := step(back); acks != 1 || routes != want {
			t.Fatalf("pass %d of the same copy: %d acks, %d forwarded, want 1 and %d", pass, acks, routes, want)
		}
	}
	if st := hop.Stats(); st.Loops-before.Loops != 4 || st.Dropped-before.Dropped != 2 {
		t.Fatalf("loops %d dropped %d, want 4 and 2", st.Loops-before.Loops, st.Dropped-before.Dropped)
	}
	// Another message from the same origin to the same key, routed in the
	// same instant, is a different message: it is forwarded.
	other := routedTo(t, o, from, key)
	if other.Sent == m.Sent {
		t.Fatalf("two messages routed at %d share Sent", m.Sent)
	}
	if acks, routes := step(other); acks != 1 || routes != 1 {
		t.Fatalf("a new message to the same key: %d acks, %d forwarded, want 1 and 1", acks, routes)
	}
}

// An acknowledgement that arrives after its hop timed out shows the
// timeout was too short: it is counted, and the node waits longer before
// the next hop timeout.
func TestLateAckBacksOffHopTimeouts(t *testing.T) {
	o := newOverlay(t, 32, 40, core.SimConfig(), nil)
	const from = 5
	key, _ := multiHopKey(t, o, from)
	src := o.nw.Node(from)
	m := routedTo(t, o, from, key)
	// Nothing answers: run the node's timers past the longest hop timeout.
	now := o.nw.Now()
	deadline := now + core.SimConfig().HopTimeoutMax + time.Millisecond
	var again []core.Message
	for now < deadline {
		now += 10 * time.Millisecond
		src.Tick(now)
		for _, out := range src.Ready().Messages {
			if out.Type == core.MsgRoute && out.Key == m.Key {
				again = append(again, out)
			}
		}
		src.Advance()
		if src.Stats().HopTimeouts > 0 {
			break
		}
	}
	st := src.Stats()
	if st.HopTimeouts == 0 {
		t.Fatal("the unanswered hop did not time out")
	}
	// What the node sends instead (resent or re-routed) is a new copy.
	if len(again) != 1 || again[0].Copy == m.Copy || again[0].Sent != m.Sent {
		t.Fatalf("after the timeout sent %d copies (%+v), want one new copy of the message", len(again), again)
	}
	// The next hop answers after all.
	ack := core.Message{Type: core.MsgRouteAck, From: m.To, To: src.Self(), Seq: m.Seq}
	if err := src.Step(now, &ack); err != nil {
		t.Fatal(err)
	}
	if got := src.Stats().SpuriousTimeouts - st.SpuriousTimeouts; got != 1 {
		t.Fatalf("spurious timeouts counted %d, want 1", got)
	}
	// The same ack again, or one from another node with that seq, is not
	// evidence of anything.
	if err := src.Step(now, &ack); err != nil {
		t.Fatal(err)
	}
	forged := ack
	forged.From = o.nw.Node(from + 1).Self()
	if err := src.Step(now, &forged); err != nil {
		t.Fatal(err)
	}
	if got := src.Stats().SpuriousTimeouts - st.SpuriousTimeouts; got != 1 {
		t.Fatalf("spurious timeouts counted %d after a repeated and a forged ack, want 1", got)
	}
}
