package core

import (
	"fmt"
	"testing"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// crossCheck: a neighbour's leaf-set side shorter than L/2 beside a full
// one has a hole (a member it just removed), and claims no more than its
// farthest member, so a leaf of ours beyond it is not suspected; when both
// sides are short (an overlay of fewer than L/2+1 nodes) a short side
// claims every node on its side, and a leaf of ours it does not list is.
func TestCrossCheckShortSide(t *testing.T) {
	h := func(b byte) id.Handle {
		return id.Handle{ID: id.MustParse(fmt.Sprintf("%02x%030x", b, 0)), Addr: fmt.Sprint(b)}
	}
	for _, tc := range []struct {
		name        string
		right, left []byte // the neighbour 0x11's sides, nearest first
		suspect     bool   // 0x14 suspected
	}{
		{"hole beside a full side", []byte{0x12, 0x13}, []byte{0x10, 0x0f, 0x0e, 0x0d}, false},
		{"both sides short", []byte{0x12, 0x13}, []byte{0x10, 0x0f}, true},
		{"full sides, 0x14 left out", []byte{0x12, 0x13, 0x15, 0x16}, []byte{0x10, 0x0f, 0x0e, 0x0d}, true},
	} {
		cfg := SimConfig()
		cfg.LeafSetSize = 8
		n, err := NewMachine(cfg, h(0x10), fixedEnv{prox: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []byte{0x11, 0x12, 0x13, 0x14, 0x0f, 0x0e, 0x0d, 0x0c} {
			n.state.Consider(routing.Entry{Handle: h(b), Prox: 1000})
		}
		var hs []id.Handle
		for _, b := range append(append([]byte{}, tc.right...), tc.left...) {
			hs = append(hs, h(b))
		}
		n.crossCheck(h(0x11), hs, len(tc.right))
		if got := n.probes[h(0x14).ID] != nil; got != tc.suspect {
			t.Errorf("%s: 0x14 suspected %v, want %v", tc.name, got, tc.suspect)
		}
	}
}

// A failure notice from a leaf is checked with one probe (its retries are
// skipped: the leaf found the failure itself), and the leaf set it carries
// is kept to repair from; a notice from a node outside the leaf set is
// checked with every retry, and carries nothing kept.
func TestNoticeFromLeafProbedOnce(t *testing.T) {
	h := func(b byte) id.Handle {
		return id.Handle{ID: id.MustParse(fmt.Sprintf("%02x%030x", b, 0)), Addr: fmt.Sprint(b)}
	}
	cfg := SimConfig()
	cfg.LeafSetSize = 8
	cfg.ProbeRetries = 2
	n, err := NewMachine(cfg, h(0x10), fixedEnv{prox: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []byte{0x11, 0x12, 0x13, 0x14, 0x0f, 0x0e, 0x0d, 0x0c} {
		n.state.Consider(routing.Entry{Handle: h(b), Prox: 1000})
	}
	carried := []id.Handle{h(0x11), h(0x13), h(0x15)}
	n.onSuspect(h(0x11), h(0x12), carried) // from a leaf
	n.onSuspect(h(0x40), h(0x14), carried) // from a stranger
	if p := n.probes[h(0x12).ID]; p == nil || p.tries != cfg.ProbeRetries || len(p.leaves) != len(carried) {
		t.Errorf("notice from a leaf: probe %+v, want tries %d and the %d handles kept", p, cfg.ProbeRetries, len(carried))
	}
	if p := n.probes[h(0x14).ID]; p == nil || p.tries != 0 || p.leaves != nil {
		t.Errorf("notice from a stranger: probe %+v, want tries 0 and nothing kept", p)
	}
}
