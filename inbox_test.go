package pastry

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

func from(p string, typ core.MsgType) *core.Message {
	return &core.Message{Type: typ, From: id.Handle{Addr: p}}
}

// A flooding peer fills its own queue, not the others': the others'
// messages are all kept and served in turn with its.
func TestInboxFairToOtherPeers(t *testing.T) {
	b := newInbox(64, 0, 0) // 16 per peer (the floor)
	now := time.Unix(1000, 0)
	for range 1000 {
		b.push(from("flood", core.MsgRouteAck), now)
	}
	for i := range 3 {
		for _, p := range []string{"a", "b", "c"} {
			b.push(from(p, core.MsgRouteAck), now.Add(time.Duration(i)))
		}
	}
	if b.drops.Load() != 1000-16 {
		t.Fatalf("%d drops, want the flood's 984 beyond its share", b.drops.Load())
	}
	var order []string
	for _, m := range drain(t, b) {
		order = append(order, m.From.Addr)
	}
	if len(order) != 16+9 {
		t.Fatalf("served %d, want 25", len(order))
	}
	for i, p := range order[:12] { // round robin while all four have some
		if want := []string{"flood", "a", "b", "c"}[i%4]; p != want {
			t.Fatalf("served %v, want round robin", order)
		}
	}
}

// drain takes messages as the event loop does: one per wake-up. Every
// message queued must be reached that way, and no wake-up be left over.
func drain(t *testing.T, b *inbox) []*core.Message {
	t.Helper()
	var out []*core.Message
	for {
		select {
		case <-b.wake:
		default:
			if b.queued() > 0 {
				t.Fatalf("%d queued and no wake-up", b.queued())
			}
			return out
		}
		m := b.pop()
		if m == nil {
			t.Fatal("a wake-up with nothing queued")
		}
		out = append(out, m)
	}
}

// When the inbox is full, a message from a peer with a shorter queue
// takes the place of the longest queue's newest one.
func TestInboxFullEvictsTheLongestQueue(t *testing.T) {
	b := newInbox(32, 0, 0) // 16 per peer (the floor)
	now := time.Unix(1000, 0)
	for _, p := range []string{"x", "y"} {
		for range 16 {
			b.push(from(p, core.MsgProbe), now)
		}
	}
	b.push(from("z", core.MsgProbe), now)
	if b.queued() != 32 || b.drops.Load() != 1 {
		t.Fatalf("%d queued, %d dropped; want 32 and one of x's or y's", b.queued(), b.drops.Load())
	}
	got := map[string]int{}
	for _, m := range drain(t, b) {
		got[m.From.Addr]++
	}
	if got["z"] != 1 || got["x"]+got["y"] != 31 {
		t.Fatalf("served %v", got)
	}
}

// Routed messages from one peer are limited to its rate (a burst, then
// the refill); other messages from it and other peers' are not.
func TestInboxRateLimitsRoutedMessagesPerPeer(t *testing.T) {
	b := newInbox(1<<16, 100, 10)
	now := time.Unix(1000, 0)
	for range 50 {
		b.push(from("a", core.MsgRoute), now)
		b.push(from("a", core.MsgRouteAck), now)
		b.push(from("b", core.MsgJoin), now)
	}
	if b.limited.Load() != 40+40 || b.queued() != 10+50+10 {
		t.Fatalf("%d limited, %d queued; want 80 and 70", b.limited.Load(), b.queued())
	}
	b.push(from("a", core.MsgRoute), now.Add(15*time.Millisecond)) // 1.5 tokens refilled
	b.push(from("a", core.MsgRoute), now.Add(15*time.Millisecond))
	if b.limited.Load() != 81 {
		t.Fatalf("after 15 ms at 100/s: %d limited, want 81", b.limited.Load())
	}
}

// The per-peer state of peers with nothing queued is forgotten when too
// many are kept.
func TestInboxForgetsIdlePeers(t *testing.T) {
	b := newInbox(64, 100, 10)
	now := time.Unix(1000, 0)
	for i := range 3 * maxInboxPeers {
		b.push(from(string(rune(i)), core.MsgProbe), now)
		b.pop()
	}
	if len(b.peers) > maxInboxPeers {
		t.Fatalf("%d peers kept, bound %d", len(b.peers), maxInboxPeers)
	}
}

// A peer's full queue makes room for its control messages by dropping its
// newest routed ones: a node forwarding a flood still has its acks and
// probes served. Its routed messages find no room once the queue is full.
func TestInboxKeepsAPeersControlBeforeItsRoutes(t *testing.T) {
	b := newInbox(128, 0, 0) // 16 per peer (the floor)
	now := time.Unix(1000, 0)
	for range 16 {
		b.push(from("fwd", core.MsgRoute), now)
	}
	for range 4 {
		b.push(from("fwd", core.MsgRouteAck), now)
		b.push(from("fwd", core.MsgProbe), now)
	}
	b.push(from("fwd", core.MsgRoute), now)
	if b.queued() != 16 || b.drops.Load() != 8+1 {
		t.Fatalf("%d queued, %d dropped; want 16 and 9", b.queued(), b.drops.Load())
	}
	got := map[core.MsgType]int{}
	for _, m := range drain(t, b) {
		got[m.Type]++
	}
	if got[core.MsgRouteAck] != 4 || got[core.MsgProbe] != 4 || got[core.MsgRoute] != 8 {
		t.Fatalf("served %v; want the 8 control messages and 8 routes", got)
	}
	// A queue of control messages only still drops what finds no room.
	for range 17 {
		b.push(from("ctl", core.MsgProbe), now)
	}
	if b.queued() != 16 || b.drops.Load() != 9+1 {
		t.Fatalf("%d queued, %d dropped; want 16 and 10", b.queued(), b.drops.Load())
	}
}

// A full inbox makes room in the longest queue by its newest routed
// message first.
func TestInboxFullEvictsARouteFirst(t *testing.T) {
	b := newInbox(32, 0, 0) // 16 per peer (the floor)
	now := time.Unix(1000, 0)
	for i := range 16 {
		typ := core.MsgRoute
		if i >= 12 {
			typ = core.MsgProbe // the newest four
		}
		b.push(from("x", typ), now)
	}
	for range 15 {
		b.push(from("y", core.MsgProbe), now)
	}
	b.push(from("y", core.MsgProbe), now) // the 32nd: full
	b.push(from("z", core.MsgProbe), now)
	got := map[string]map[core.MsgType]int{}
	for _, m := range drain(t, b) {
		if got[m.From.Addr] == nil {
			got[m.From.Addr] = map[core.MsgType]int{}
		}
		got[m.From.Addr][m.Type]++
	}
	if got["z"][core.MsgProbe] != 1 || got["x"][core.MsgProbe] != 4 || got["x"][core.MsgRoute]+got["y"][core.MsgProbe] != 27 {
		t.Fatalf("served %v; want z's probe, x's 4 probes and 27 of x's routes and y's probes", got)
	}
}
