package multicast

import (
	"bytes"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// FuzzDecode: no payload panics the decoder, and whatever it takes
// encodes back to the very same bytes (the format has one encoding).
func FuzzDecode(f *testing.F) {
	h := id.Handle{ID: id.ID{1, 2, 3}, Addr: "addr-1"}
	for _, m := range []msg{
		{kind: kindSubscribe, topic: TopicID("a")},
		{kind: kindAck, topic: TopicID("a"), depth: 3},
		{kind: kindUnsubscribe, topic: TopicID("a")},
		{kind: kindDrop, topic: TopicID("a"), handles: []id.Handle{h, h}},
		{kind: kindPublish, topic: TopicID("a"), flags: flagWantRoot, publisher: h.ID, seq: 9, data: []byte("x")},
		{kind: kindData, topic: TopicID("a"), publisher: h.ID, seq: 9, depth: 2, data: []byte("hello")},
		{kind: kindData, topic: TopicID("a"), publisher: h.ID, seq: 9, depth: 2, flags: flagSigned, sig: make([]byte, sigLen), data: []byte("signed")},
		{kind: kindPublish, topic: TopicID("a"), flags: flagWantRoot | flagSigned, publisher: h.ID, seq: 9, sig: make([]byte, sigLen), data: []byte("x")},
		{kind: kindHeartbeat, topic: TopicID("a"), topics: []id.ID{TopicID("b")}},
		{kind: kindRootIs, topic: TopicID("a"), seq: 4},
		{kind: kindNotRoot, topic: TopicID("a")},
		{kind: kindRootState, topic: TopicID("a"), handles: []id.Handle{h}},
		{kind: kindAnycast, topic: TopicID("a"), seq: 7, origin: h, visited: []id.ID{h.ID}, handles: []id.Handle{h}, data: []byte("job")},
		{kind: kindAnycastResult, topic: TopicID("a"), seq: 7, found: true, origin: h},
	} {
		b, err := m.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		again, err := m.encode()
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", &m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoded %x, read %x", &m, again, b)
		}
	})
}

// Every seed message decodes to what was encoded.
func TestWireRoundTrip(t *testing.T) {
	h := id.Handle{ID: id.ID{9}, Addr: "x"}
	m := msg{kind: kindAnycast, topic: TopicID("t"), seq: 1, origin: h, visited: []id.ID{{1}, {2}}, handles: []id.Handle{h}, data: []byte("p")}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.seq != 1 || got.origin != h || len(got.visited) != 2 || got.visited[1] != (id.ID{2}) || len(got.handles) != 1 || string(got.data) != "p" {
		t.Fatalf("round trip: %+v", got)
	}
	sub, _ := (&msg{kind: kindSubscribe, topic: TopicID("t")}).encode()
	hb, _ := (&msg{kind: kindHeartbeat, topic: TopicID("t"), topics: []id.ID{{1}}}).encode()
	for _, bad := range [][]byte{nil, {0}, {kindSubscribe}, append(sub, 0), sub[:len(sub)-1], b[:len(b)-3], {kindCount},
		hb[:len(hb)-1], append(hb, 0)} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%x) took it", bad)
		}
	}
}

// A publisher that starts again at another random point is delivered at
// once; an old copy within the window is not delivered twice.
func TestWindowNewRun(t *testing.T) {
	var w window
	for _, c := range []struct {
		seq   uint64
		fresh bool
		skip  int64
	}{
		{1 << 62, true, 0}, {1<<62 + 1, true, 0}, {1 << 62, false, 0}, {1<<62 + 3, true, 1}, {1<<62 + 2, true, -1},
		{5, true, 0}, // a restart far below: a new run
		{6, true, 0}, {5, false, 0},
		{1 << 61, true, 0}, // far above: a new run, not 2^61 missing
	} {
		fresh, skip := w.add(c.seq)
		if fresh != c.fresh || skip != c.skip {
			t.Fatalf("add(%d): %v %d, want %v %d", c.seq, fresh, skip, c.fresh, c.skip)
		}
	}
}
