package lookup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

type seededEnv struct{ r *rand.Rand }

func (e seededEnv) Uint64() uint64             { return e.r.Uint64() }
func (e seededEnv) Proximity(id.Handle) uint32 { return 1000 }

// signingEnv signs for self with a stand-in for a key: a digest of the
// signer's id and the data (forgeable, but not by accident).
type signingEnv struct {
	seededEnv
	self id.Handle
}

func fakeSig(signer id.ID, data []byte) []byte {
	a := sha256.Sum256(append(signer[:], data...))
	b := sha256.Sum256(a[:])
	return append(a[:], b[:]...)
}

func (e signingEnv) Sign(data []byte) ([]byte, error) { return fakeSig(e.self.ID, data), nil }
func (e signingEnv) Verify(h id.Handle, data, sig []byte) bool {
	return bytes.Equal(sig, fakeSig(h.ID, data))
}

// An answer completes a lookup only when it is the answer of the root it
// names to the request it names: keyed to this node when routed, sent by
// that root (routed from it, or straight from it), for the same key.
// Anything else leaves the lookup waiting.
func TestAnswerAccepted(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 4))
	h := func() id.Handle { x := id.Random(r); return id.Handle{ID: x, Addr: x.Short()} }
	self, root, other := h(), h(), h()
	key := id.Random(r)
	m, err := core.NewMachine(core.SimConfig(), self, signingEnv{seededEnv{r}, self})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Register(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Bootstrap(time.Second); err != nil {
		t.Fatal(err)
	}
	const req = 77
	ans := func(req uint64, key id.ID, root id.ID) []byte {
		x := answer{req: req, key: key, hops: 2, root: root, path: []id.ID{self.ID, other.ID, root}}
		return x.append(nil)
	}
	routed := func(p []byte, to id.ID, from id.Handle) *core.Message {
		return &core.Message{Type: core.MsgRoute, Key: to, App: AppID, Origin: from, From: other, Hops: 3, Payload: p}
	}
	sign := func(p []byte, by id.ID) []byte { return append(p, fakeSig(by, signed(p))...) }
	direct := func(p []byte, from id.Handle) *core.Message {
		return &core.Message{Type: core.MsgDirect, App: AppID, Origin: from, From: from, Payload: p}
	}
	for _, tc := range []struct {
		name       string
		m          *core.Message
		want       bool
		answerHops int
	}{
		{"routed, keyed to another node", routed(sign(ans(req, key, root.ID), root.ID), other.ID, root), false, 0},
		{"routed by a node that is not the root it names", routed(sign(ans(req, key, root.ID), other.ID), self.ID, other), false, 0},
		{"routed from the root, unsigned", routed(ans(req, key, root.ID), self.ID, root), false, 0},
		{"routed from the root, signed by another", routed(sign(ans(req, key, root.ID), other.ID), self.ID, root), false, 0},
		{"routed from the root, signature cut", routed(sign(ans(req, key, root.ID), root.ID)[:len(ans(req, key, root.ID))+63], self.ID, root), false, 0},
		{"direct from the root, with a signature", direct(sign(ans(req, key, root.ID), root.ID), root), false, 0},
		{"direct from a node that is not the root it names", direct(ans(req, key, root.ID), other), false, 0},
		{"for another request", direct(ans(req+1, key, root.ID), root), false, 0},
		{"for another key", direct(ans(req, other.ID, root.ID), root), false, 0},
		{"a request, not an answer", direct(appendRequest(nil, req), root), false, 0},
		{"truncated", direct(ans(req, key, root.ID)[:answerHeader-1], root), false, 0},
		{"routed from the root, signed", routed(sign(ans(req, key, root.ID), root.ID), self.ID, root), true, 3},
		{"direct from the root", direct(ans(req, key, root.ID), root), true, 1},
	} {
		var got []Result
		a.pending[req] = &pending{key: key, done: func(r Result, err error) {
			if err != nil {
				t.Fatalf("%s: done with %v", tc.name, err)
			}
			got = append(got, r)
		}}
		m.Run(2*time.Second, func() { a.Deliver(tc.m) })
		if (len(got) == 1) != tc.want || len(got) > 1 {
			t.Errorf("%s: completed %d times, want %v", tc.name, len(got), tc.want)
			continue
		}
		if tc.want {
			if r := got[0]; r.Root != root || r.Key != key || r.Hops != 2 || len(r.Path) != 3 || r.Path[2] != root.ID || r.AnswerHops != tc.answerHops {
				t.Errorf("%s: result %+v", tc.name, r)
			}
			if a.pending[req] != nil {
				t.Errorf("%s: still pending after its answer", tc.name)
			}
		}
		delete(a.pending, req)
	}
}

// A lookup with no answer ends with ErrTimeout after Options.Timeout, on
// the node's clock, and is forgotten (here 30 ms, shorter than the hop
// timeout after which the core would route around the silent next hop); Cancel forgets one without calling
// done; MaxPending bounds the lookups in flight.
func TestTimeoutCancelAndBound(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 4))
	x, y := id.Random(r), id.Random(r)
	m, err := core.NewMachine(core.SimConfig(), id.Handle{ID: x, Addr: "x"}, seededEnv{r})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Register(m, Options{Timeout: 30 * time.Millisecond, MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Start(y, nil); err == nil {
		t.Fatal("a lookup started before the node joined")
	}
	// The node joins through a second node, y, which the test plays: it
	// answers the join and the announcement, and nothing after, so
	// requests that leave the node are never answered.
	peer := id.Handle{ID: y, Addr: "y"}
	if err := m.Join(time.Second, peer); err != nil {
		t.Fatal(err)
	}
	join := m.Ready().Messages[0]
	reply := &core.Message{Type: core.MsgJoinReply, From: peer, To: m.Self(), Key: join.Key, Origin: join.Origin,
		Sent: join.Sent, Payload: join.Payload, Handles: []id.Handle{peer}, Row: 1}
	if err := m.Step(time.Second, reply); err != nil {
		t.Fatal(err)
	}
	if err := m.Step(time.Second, &core.Message{Type: core.MsgAnnounceAck, From: peer, To: m.Self(), Handles: []id.Handle{peer}}); err != nil {
		t.Fatal(err)
	}
	if m.Status() != core.StatusJoined || !m.State().Leaves.Contains(y) {
		t.Fatalf("the node is %s with leaf set %v", m.Status(), m.State().Leaves.Members(nil))
	}
	m.Ready()
	var errs []error
	var first uint64
	m.Run(2*time.Second, func() {
		first, err = a.Start(y, func(_ Result, err error) { errs = append(errs, err) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Start(y, func(_ Result, err error) { errs = append(errs, err) }); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Start(y, nil); err != ErrBusy {
			t.Fatalf("third lookup with MaxPending 2: %v, want ErrBusy", err)
		}
		a.Cancel(first)
	})
	m.Ready()
	m.Tick(2*time.Second + 20*time.Millisecond)
	if len(errs) != 0 || a.Pending() != 1 {
		t.Fatalf("before the timeout: done errors %v, %d pending; want none, 1", errs, a.Pending())
	}
	m.Tick(2*time.Second + 31*time.Millisecond) // before the first hop timeout (50 ms): no re-route yet
	if len(errs) != 1 || !errors.Is(errs[0], ErrTimeout) || a.Pending() != 0 {
		t.Fatalf("after the timeout: done errors %v, %d pending; want one ErrTimeout (the other cancelled), none pending", errs, a.Pending())
	}
}

// An answer carries at most MaxAnswerLeaves leaf-set ids: more are cut
// when written, and a count above it is refused when read.
func TestAnswerLeaves(t *testing.T) {
	var a, b id.ID
	a[0], b[1] = 1, 2
	x := answer{req: 9, key: a, hops: 1, root: b, path: []id.ID{b}, leaves: []id.ID{a, b}}
	y, err := parseAnswer(x.append(nil))
	if err != nil || len(y.leaves) != 2 || y.leaves[0] != a || y.leaves[1] != b {
		t.Fatalf("round trip: %+v, %v", y, err)
	}
	x.leaves = make([]id.ID, MaxAnswerLeaves+6)
	buf := x.append(nil)
	if y, err := parseAnswer(buf); err != nil || len(y.leaves) != MaxAnswerLeaves {
		t.Fatalf("%d leaves written: read %d, %v", len(x.leaves), len(y.leaves), err)
	}
	// The same bytes with the count raised by one and one more id: refused.
	at := answerHeader + id.Len*len(x.path)
	over := append(append([]byte(nil), buf...), make([]byte, id.Len)...)
	over[at] = MaxAnswerLeaves + 1
	if _, err := parseAnswer(over); !errors.Is(err, ErrAnswer) {
		t.Fatalf("%d leaves: %v, want ErrAnswer", MaxAnswerLeaves+1, err)
	}
	// Without the leaf count at all: refused.
	if _, err := parseAnswer(buf[:at]); !errors.Is(err, ErrAnswer) {
		t.Fatalf("no leaf count: %v, want ErrAnswer", err)
	}
}
