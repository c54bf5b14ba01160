package core_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// TestOneCandidateProbedPerTableHole: second-hand handles that would fill
// the same hole of the routing table are probed one at a time. A row
// naming three candidates for one empty slot makes the node probe one of
// them; another row naming two more, while that probe is in flight, makes
// it probe none; once the first candidate has failed to answer, a row
// naming a candidate for the slot is probed again. (Probing every
// candidate cost a probe and its reply each, and all but one were
// answered for nothing: 77% of hole probes at 200 simulated nodes.)
func TestOneCandidateProbedPerTableHole(t *testing.T) {
	cfg := leafCfg(8)
	o := newOverlay(t, 5, 24, cfg, nil)
	nw := o.nw
	n := nw.Node(3)
	self := n.Self()
	tab := n.State().Table
	// An empty slot in a row the overlay's ids reach.
	row, col := -1, -1
	for r := 1; r < 3 && row < 0; r++ {
		for c := range 1 << cfg.B {
			if c == self.ID.Digit(r, cfg.B) {
				continue
			}
			if _, taken := tab.Get(r, c); !taken {
				row, col = r, c
				break
			}
		}
	}
	if row < 0 {
		t.Fatal("no empty slot in rows 1-2")
	}
	// Made-up candidates for that slot: self's first row digits, then col.
	hex := self.ID.String()
	candidate := func(k int) id.Handle {
		s := hex[:row] + fmt.Sprintf("%x", col) + fmt.Sprintf("%0*x", len(hex)-row-1, k+1)
		return id.Handle{ID: id.MustParse(s), Addr: fmt.Sprintf("made-up-%d", k)}
	}
	for k := range 6 {
		if r, c, ok := tab.Position(candidate(k).ID); !ok || r != row || c != col {
			t.Fatalf("candidate %d at (%d, %d), want (%d, %d)", k, r, c, row, col)
		}
	}
	leaf := n.State().Leaves.Left()[0].Handle
	probed := func(now time.Duration, hs ...id.Handle) (ids []id.ID) {
		t.Helper()
		m := &core.Message{Type: core.MsgRowReply, From: leaf, To: self, Row: int16(row), Handles: hs}
		if err := n.Step(now, m); err != nil {
			t.Fatal(err)
		}
		for _, out := range n.Ready().Messages {
			if out.Type == core.MsgProbe && out.To.ID.Digit(row, cfg.B) == col && id.SharedPrefixLen(out.To.ID, self.ID, cfg.B) == row {
				ids = append(ids, out.To.ID)
			}
		}
		n.Advance()
		return ids
	}
	now := nw.Now() + time.Second
	if got := probed(now, candidate(0), candidate(1), candidate(2)); len(got) != 1 {
		t.Fatalf("three candidates for one hole: %d probed, want 1", len(got))
	}
	if got := probed(now+time.Millisecond, candidate(3), candidate(4)); len(got) != 0 {
		t.Fatalf("two more while the first is probed: %d probed, want 0", len(got))
	}
	// The made-up candidate never answers: past its probe's tries the slot
	// is open to another.
	later := now
	for range 10 {
		later += cfg.ProbeTimeout
		n.Tick(later)
		n.Ready()
		n.Advance()
	}
	if got := probed(later+time.Millisecond, candidate(5)); len(got) != 1 {
		t.Fatalf("after the first candidate failed: %d probed, want 1", len(got))
	}
}
