package core

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

type fixedEnv struct{ prox uint32 }

func (fixedEnv) Uint64() uint64               { return 7 }
func (e fixedEnv) Proximity(id.Handle) uint32 { return e.prox }

func TestSeenSetRemembersOneToTwoGenerations(t *testing.T) {
	var set seenSet
	s := struct{ add func(uint64) bool }{func(f uint64) bool { _, ok := set.add(f, 9); return ok }}
	for i := range uint64(seenGeneration) {
		if s.add(i) {
			t.Fatalf("%d reported seen before it was added", i)
		}
	}
	if !s.add(0) || !s.add(seenGeneration-1) {
		t.Fatal("a full generation forgot an entry")
	}
	// The next generation starts; the first is still remembered until it
	// is full too.
	for i := uint64(seenGeneration); i < 2*seenGeneration; i++ {
		s.add(i)
	}
	if !s.add(1) {
		t.Fatal("the previous generation was forgotten too early")
	}
	s.add(2 * seenGeneration) // a third generation starts: the first goes
	if s.add(3) {
		t.Fatal("entries of two generations ago are still remembered")
	}
	if len(set.cur)+len(set.old) > 2*seenGeneration+1 {
		t.Fatalf("seen set holds %d entries", len(set.cur)+len(set.old))
	}
}

func TestSeenSetVisit(t *testing.T) {
	var s seenSet
	if _, _, seen := s.visit(1, 7); seen {
		t.Fatal("a new message reported seen")
	}
	for want := uint32(1); want <= 3; want++ {
		if had, passes, seen := s.visit(1, 7); !seen || had != 7 || passes != want {
			t.Fatalf("copy 7 again: had %d passes %d seen %v, want 7 %d true", had, passes, seen, want)
		}
	}
	if had, passes, seen := s.visit(1, 8); !seen || had != 7 || passes != 0 {
		t.Fatalf("another copy: had %d passes %d seen %v, want 7 0 true", had, passes, seen)
	}
	s.set(1, 8) // re-routed here: copy 8, no passes yet
	if _, passes, _ := s.visit(1, 8); passes != 1 {
		t.Fatalf("after set, passes %d, want 1", passes)
	}
}

func TestSeenSetKeepsTheCopy(t *testing.T) {
	var s seenSet
	if _, seen := s.add(1, 7); seen {
		t.Fatal("new entry reported seen")
	}
	if c, seen := s.add(1, 8); !seen || c != 7 {
		t.Fatalf("add again: copy %d seen %v, want 7 true", c, seen)
	}
	s.set(1, 8) // this node re-routed it: now it stands for copy 8
	if c, _ := s.add(1, 0); c != 8 {
		t.Fatalf("after set: copy %d, want 8", c)
	}
	for i := uint64(100); i < 100+seenGeneration; i++ {
		s.add(i, 0)
	}
	s.set(1, 9) // in the old generation now
	if c, seen := s.add(1, 0); !seen || c != 9 {
		t.Fatalf("set in the old generation: copy %d seen %v, want 9 true", c, seen)
	}
	s.set(5000, 3) // not there: added
	if c, seen := s.add(5000, 0); !seen || c != 3 {
		t.Fatalf("set of a new entry: copy %d seen %v, want 3 true", c, seen)
	}
}

func TestFingerprintNamesTheMessageNotTheHop(t *testing.T) {
	o := id.Handle{ID: id.MustParse("0123456789abcdef0123456789abcdef"), Addr: "o"}
	m := Message{Type: MsgRoute, Origin: o, Key: id.MustParse("fedcba98765432100123456789abcdef"), Sent: 12345}
	hop := m
	hop.From, hop.To, hop.Seq, hop.Hops, hop.Path, hop.Copy = o, id.Handle{Addr: "x"}, 99, 3, []id.Handle{o}, 5
	if fingerprint(&m) != fingerprint(&hop) {
		t.Fatal("hop fields change the fingerprint")
	}
	for name, f := range map[string]func(*Message){
		"sent":   func(m *Message) { m.Sent++ },
		"key":    func(m *Message) { m.Key[15] ^= 1 },
		"origin": func(m *Message) { m.Origin.ID[0] ^= 1 },
		"type":   func(m *Message) { m.Type = MsgJoin },
	} {
		x := m
		f(&x)
		if fingerprint(&x) == fingerprint(&m) {
			t.Errorf("changing %s keeps the fingerprint", name)
		}
	}
}

func TestHopTimeoutBackOff(t *testing.T) {
	cfg := SimConfig()
	cfg.HopTimeoutMin = 50 * time.Millisecond // 2^6 x the minimum passes the maximum
	self := id.Handle{ID: id.MustParse("00000000000000000000000000000001"), Addr: "self"}
	next := id.Handle{ID: id.MustParse("00000000000000000000000000000002"), Addr: "next"}
	n, err := NewMachine(cfg, self, fixedEnv{prox: 1000}) // 1 ms: the minimum applies
	if err != nil {
		t.Fatal(err)
	}
	base := n.hopTimeout(n.env.Proximity(next))
	if base != cfg.HopTimeoutMin {
		t.Fatalf("base hop timeout %v, want the minimum %v", base, cfg.HopTimeoutMin)
	}
	n.timedOut(5, &pendingHop{next: next})
	n.lateAck(&Message{Seq: 5, From: next})
	if got := n.hopTimeout(n.env.Proximity(next)); got != 2*base || n.stats.SpuriousTimeouts != 1 {
		t.Fatalf("after a late ack: timeout %v (want %v), %d spurious", got, 2*base, n.stats.SpuriousTimeouts)
	}
	for i := range uint64(20) {
		n.timedOut(100+i, &pendingHop{next: next})
		n.lateAck(&Message{Seq: 100 + i, From: next})
	}
	if got := n.hopTimeout(n.env.Proximity(next)); got != cfg.HopTimeoutMax {
		t.Fatalf("backed-off timeout %v, want the cap %v", got, cfg.HopTimeoutMax)
	}
	if n.hopBackoff != maxHopBackoff {
		t.Fatalf("back-off %d, want the cap %d", n.hopBackoff, maxHopBackoff)
	}
	for range maxHopBackoff * timelyAcksToDecay {
		n.timelyAck()
	}
	if got := n.hopTimeout(n.env.Proximity(next)); got != base {
		t.Fatalf("after timely acks: timeout %v, want %v again", got, base)
	}
	// The largest RTT, fully backed off: the maximum, not an overflow.
	n3, _ := NewMachine(cfg, self, fixedEnv{prox: 1<<32 - 2})
	n3.hopBackoff = maxHopBackoff
	if got := n3.hopTimeout(n3.env.Proximity(next)); got != cfg.HopTimeoutMax {
		t.Fatalf("largest RTT backed off: %v, want %v", got, cfg.HopTimeoutMax)
	}
	// Unknown proximity waits the maximum, backed off or not.
	n2, _ := NewMachine(cfg, self, fixedEnv{prox: 1<<32 - 1})
	if got := n2.hopTimeout(n2.env.Proximity(next)); got != cfg.HopTimeoutMax {
		t.Fatalf("unknown RTT: %v, want %v", got, cfg.HopTimeoutMax)
	}
}

// Acks that take longer than their hop's RTT stretch hop timeouts by the
// slowdown; acks in their RTT bring them back; nothing else moves it.
func TestHopTimeoutFollowsAckSlowdown(t *testing.T) {
	cfg := SimConfig()
	self := id.Handle{ID: id.MustParse("00000000000000000000000000000001"), Addr: "self"}
	n, err := NewMachine(cfg, self, fixedEnv{prox: 1000})
	if err != nil {
		t.Fatal(err)
	}
	const rtt = 20_000 // 20 ms: 3 x RTT = 60 ms, above the minimum
	base := n.hopTimeout(rtt)
	if want := 60 * time.Millisecond; base != want || cfg.HopTimeoutMin >= want {
		t.Fatalf("base %v, want %v above the minimum %v", base, want, cfg.HopTimeoutMin)
	}
	// Acks in their RTT, steadily: the timeout falls to 1.25 RTT (TCP's
	// mean plus four deviations, at its floor).
	for range 50 {
		n.ackTook(rtt*time.Microsecond, rtt)
	}
	tight := rtt * time.Microsecond * slowFloor / slowOne
	if got := n.hopTimeout(rtt); got != tight || tight <= cfg.HopTimeoutMin {
		t.Fatalf("after acks in their RTT: %v, want %v (above the minimum %v)", got, tight, cfg.HopTimeoutMin)
	}
	// Acks ten times their RTT: the timeout grows towards ten times.
	for range 50 {
		n.ackTook(10*rtt*time.Microsecond, rtt)
	}
	if got := n.hopTimeout(rtt); got < 9*base || got > 10*base {
		t.Fatalf("after acks 10x their RTT: %v, want about %v", got, 10*base)
	}
	// Back to their RTT: back to 1.25 RTT (within the EWMAs' rounding).
	for range 100 {
		n.ackTook(rtt*time.Microsecond, rtt)
	}
	if got := n.hopTimeout(rtt); got < tight || got > tight*21/20 {
		t.Fatalf("after acks in their RTT again: %v, want about %v", got, tight)
	}
	// Acks that vary (one RTT, then two): the deviation widens the
	// timeout past the floor, up to HopTimeoutFactor RTTs.
	for i := range 40 {
		n.ackTook(time.Duration(1+i%2)*rtt*time.Microsecond, rtt)
	}
	if got := n.hopTimeout(rtt); got <= tight*3/2 || got > base {
		t.Fatalf("after acks of one and two RTTs: %v, want above %v and at most %v", got, tight*3/2, base)
	}
	// Samples without a usable RTT are ignored; a huge one is capped, and
	// the timeout stays at most the maximum.
	before := n.slow
	n.ackTook(time.Second, 0)
	n.ackTook(time.Second, routing.UnknownProximity)
	n.ackTook(-time.Second, rtt)
	if n.slow != before {
		t.Fatalf("unusable samples moved the slowdown %d -> %d", before, n.slow)
	}
	for range 100 {
		n.ackTook(time.Hour, 1)
	}
	if n.slow > slowCap {
		t.Fatalf("slowdown %d above its cap %d", n.slow, slowCap)
	}
	if got := n.hopTimeout(1<<32 - 2); got != cfg.HopTimeoutMax {
		t.Fatalf("largest RTT, fully slowed: %v, want %v", got, cfg.HopTimeoutMax)
	}
	// A late ack (its hop timed out) counts as a sample too.
	n2, _ := NewMachine(cfg, self, fixedEnv{prox: 1000})
	next := id.Handle{ID: id.MustParse("00000000000000000000000000000002"), Addr: "next"}
	n2.timedOut(7, &pendingHop{next: next, sent: 0, rtt: rtt})
	n2.now = 50 * rtt * time.Microsecond
	n2.lateAck(&Message{Seq: 7, From: next})
	if n2.slow <= slowOne {
		t.Fatalf("a late ack 50x its RTT left the slowdown at %d", n2.slow)
	}
}
