package core_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// TestStepRejectsInvalidMessages feeds a joined node messages no honest
// peer sends. Each is refused with an error wrapping ErrBadMessage, counted
// in Stats().Rejected, and changes nothing else: routing state, status,
// other counters, Ready and upcalls are as before (DESIGN principle 5).
func TestStepRejectsInvalidMessages(t *testing.T) {
	cfg := leafCfg(8)
	o := newOverlay(t, 11, 24, cfg, nil)
	nw := o.nw
	n := nw.Node(5)
	self := n.Self()
	peer := nw.Node(6).Self()
	digits := id.Digits(cfg.B)
	handles := func(k int) []id.Handle {
		hs := make([]id.Handle, k)
		for i := range hs {
			hs[i] = nw.Node(i % 24).Self()
		}
		return hs
	}
	stranger := id.Handle{ID: id.MustParse("00000000000000000000000000000001")}
	cases := []struct {
		name string
		m    *core.Message
	}{
		{"nil", nil},
		{"type zero", &core.Message{Type: core.MsgInvalid, From: peer, To: self}},
		{"type past the last", &core.Message{Type: core.MsgDirect + 1, From: peer, To: self}},
		{"type 255", &core.Message{Type: 255, From: peer, To: self}},
		{"from self", &core.Message{Type: core.MsgProbe, From: self, To: self, Seq: 1}},
		{"from self, leave", &core.Message{Type: core.MsgLeave, From: self, To: self}},
		{"too many handles", &core.Message{Type: core.MsgHeartbeat, From: peer, To: self, Handles: handles(cfg.MaxHandles + 1)}},
		{"too many handles, join reply", &core.Message{Type: core.MsgLeafReply, From: stranger, To: self, Handles: handles(cfg.MaxHandles + 7)}},
		{"oversize payload", &core.Message{Type: core.MsgRoute, From: peer, To: self, Key: self.ID, Origin: peer, App: testAppID, Payload: make([]byte, cfg.MaxPayload+1)}},
		{"too many hops", &core.Message{Type: core.MsgRoute, From: peer, To: self, Key: self.ID, Origin: peer, App: testAppID, Hops: uint16(cfg.MaxHops + 1)}},
		{"path too long", &core.Message{Type: core.MsgRoute, From: peer, To: self, Key: self.ID, Origin: peer, App: testAppID, Flags: core.FlagTrace, Path: handles(cfg.MaxHops + 1)}},
		{"row request, negative row", &core.Message{Type: core.MsgRowRequest, From: peer, To: self, Row: -1}},
		{"row request, row past the table", &core.Message{Type: core.MsgRowRequest, From: peer, To: self, Row: int16(digits)}},
		{"row reply, row past the table", &core.Message{Type: core.MsgRowReply, From: peer, To: self, Row: int16(digits), Handles: handles(3)}},
		{"join for another id", &core.Message{Type: core.MsgJoin, From: peer, To: self, Key: stranger.ID, Origin: peer}},
		{"join for the sender, claiming a stranger", &core.Message{Type: core.MsgJoin, From: peer, To: self, Key: peer.ID, Origin: stranger}},
	}
	app := o.apps[5]
	for _, tc := range cases {
		before := takeSnapshot(n.Machine, app)
		err := n.Step(nw.Now()+time.Second, tc.m)
		if !errors.Is(err, core.ErrBadMessage) {
			t.Errorf("%s: Step = %v, want ErrBadMessage", tc.name, err)
		}
		after := takeSnapshot(n.Machine, app)
		if after.stats.Rejected != before.stats.Rejected+1 {
			t.Errorf("%s: Rejected %d -> %d, want +1", tc.name, before.stats.Rejected, after.stats.Rejected)
		}
		after.stats.Rejected = before.stats.Rejected
		if !before.equal(after) {
			t.Errorf("%s: the node changed:\nbefore %+v\nafter  %+v", tc.name, before, after)
		}
	}

	// The limits are limits, not off by one: messages exactly at them are
	// taken.
	ok := []struct {
		name string
		m    *core.Message
	}{
		{"max handles", &core.Message{Type: core.MsgLeafReply, From: peer, To: self, Handles: handles(cfg.MaxHandles)}},
		{"last row", &core.Message{Type: core.MsgRowRequest, From: peer, To: self, Row: int16(digits - 1)}},
		{"last type", &core.Message{Type: core.MsgSuspect, From: peer, To: self, Subject: stranger}},
		{"max payload", &core.Message{Type: core.MsgRoute, From: peer, To: self, Seq: 99, Key: self.ID, Origin: peer, App: testAppID, Payload: make([]byte, cfg.MaxPayload)}},
	}
	for _, tc := range ok {
		before := n.Stats().Rejected
		if err := n.Step(nw.Now(), tc.m); err != nil {
			t.Errorf("%s: Step = %v, want accepted", tc.name, err)
		}
		if n.Stats().Rejected != before {
			t.Errorf("%s: counted as rejected", tc.name)
		}
		n.Ready()
	}
}

// TestStepRejectsWhileIdle: validation comes first, whatever the state.
func TestStepRejectsWhileIdle(t *testing.T) {
	self := id.Handle{ID: id.MustParse("80000000000000000000000000000000")}
	n, err := core.NewMachine(core.SimConfig(), self, newTestEnv(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Step(0, &core.Message{Type: core.MsgProbe, From: self}); !errors.Is(err, core.ErrBadMessage) {
		t.Fatalf("idle node: Step from self = %v", err)
	}
	if n.Stats().Rejected != 1 {
		t.Fatalf("Rejected = %d", n.Stats().Rejected)
	}
	// A valid message to an idle node is ignored without error.
	peer := id.Handle{ID: id.MustParse("40000000000000000000000000000000")}
	if err := n.Step(0, &core.Message{Type: core.MsgProbe, From: peer, Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if rd := n.Ready(); len(rd.Messages) != 0 || n.State().Table.Size() != 0 {
		t.Fatalf("idle node answered or learned: %v", rd.Messages)
	}
}

func TestLifecycleErrors(t *testing.T) {
	a := id.Handle{ID: id.MustParse("10000000000000000000000000000000")}
	b := id.Handle{ID: id.MustParse("90000000000000000000000000000000")}
	newNode := func() *core.Machine {
		n, err := core.NewMachine(core.SimConfig(), a, newTestEnv(2))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.RegisterApplication(testAppID, &testApp{}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	key := id.MustParse("12345678000000000000000000000000")

	n := newNode()
	if err := routeAt(n, 0, core.Message{Key: key, App: testAppID, Payload: nil}, nil); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("Route while idle = %v, want ErrNotJoined", err)
	}
	if err := routeAt(n, 0, core.Message{Key: key, App: testAppID, Flags: core.FlagTrace}, nil); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("RouteMessage while idle = %v, want ErrNotJoined", err)
	}
	if err := n.Leave(0); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("Leave while idle = %v, want ErrNotJoined", err)
	}
	if err := n.Join(0, a); !errors.Is(err, core.ErrState) {
		t.Errorf("Join through itself = %v, want ErrState", err)
	}
	if n.Status() != core.StatusIdle {
		t.Fatalf("status %v after refused inputs", n.Status())
	}

	// Joining: no second join, no bootstrap, no routing yet.
	if err := n.Join(0, b); err != nil {
		t.Fatal(err)
	}
	if n.Status() != core.StatusJoining {
		t.Fatalf("status %v after Join", n.Status())
	}
	rd := n.Ready()
	if len(rd.Messages) != 1 || rd.Messages[0].Type != core.MsgJoin || rd.Messages[0].To != b ||
		rd.Messages[0].Key != a.ID || rd.Messages[0].Origin != a || rd.WakeAt == 0 {
		t.Fatalf("Join sent %v, wake %v; want one join for its own id to the bootstrap node", rd.Messages, rd.WakeAt)
	}
	if err := n.Join(0, b); !errors.Is(err, core.ErrState) {
		t.Errorf("Join while joining = %v, want ErrState", err)
	}
	if err := n.Bootstrap(0); !errors.Is(err, core.ErrState) {
		t.Errorf("Bootstrap while joining = %v, want ErrState", err)
	}
	if err := routeAt(n, 0, core.Message{Key: key, App: testAppID, Payload: nil}, nil); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("Route while joining = %v, want ErrNotJoined", err)
	}

	// Joined (bootstrapped): no join, no second bootstrap.
	n = newNode()
	if err := n.Bootstrap(0); err != nil {
		t.Fatal(err)
	}
	if err := n.Bootstrap(0); !errors.Is(err, core.ErrState) {
		t.Errorf("second Bootstrap = %v, want ErrState", err)
	}
	if err := n.Join(0, b); !errors.Is(err, core.ErrState) {
		t.Errorf("Join after Bootstrap = %v, want ErrState", err)
	}
	if err := routeAt(n, 0, core.Message{Key: key, App: testAppID, Payload: nil}, nil); err != nil {
		t.Errorf("Route when joined = %v", err)
	}

	// Left: nothing more.
	if err := n.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if n.Status() != core.StatusLeft {
		t.Fatalf("status %v after Leave", n.Status())
	}
	if rd := n.Ready(); rd.WakeAt != 0 {
		t.Errorf("a node that left still wants a tick at %v", rd.WakeAt)
	}
	if err := routeAt(n, time.Second, core.Message{Key: key, App: testAppID, Payload: nil}, nil); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("Route after Leave = %v, want ErrNotJoined", err)
	}
	if err := n.Leave(time.Second); !errors.Is(err, core.ErrNotJoined) {
		t.Errorf("second Leave = %v, want ErrNotJoined", err)
	}
	if err := n.Bootstrap(time.Second); !errors.Is(err, core.ErrState) {
		t.Errorf("Bootstrap after Leave = %v, want ErrState", err)
	}
	if err := n.Join(time.Second, b); !errors.Is(err, core.ErrState) {
		t.Errorf("Join after Leave = %v, want ErrState", err)
	}
}

func TestRegisterApplication(t *testing.T) {
	n, err := core.NewMachine(core.SimConfig(), id.Handle{ID: id.MustParse("10000000000000000000000000000000")}, newTestEnv(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterApplication(1, &testApp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterApplication(2, &testApp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterApplication(1, &testApp{}); !errors.Is(err, core.ErrDuplicate) {
		t.Fatalf("duplicate = %v, want ErrDuplicate", err)
	}
	if _, err := n.RegisterApplication(3, nil); err == nil || errors.Is(err, core.ErrDuplicate) {
		t.Fatalf("nil application = %v, want a non-duplicate error", err)
	}
	if _, err := n.RegisterApplication(3, &testApp{}); err != nil {
		t.Fatalf("id 3 after a refused nil: %v", err)
	}
}
