// Package storetest is the conformance suite of replication.Store: the
// same tests, and a property test against a plain model, run on every
// implementation (replication.MemStore, pebblestore.Store).
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/secure"
)

// Factory opens stores of one implementation.
type Factory struct {
	// Open returns a new, empty store with options o; the test closes it.
	Open func(t *testing.T, o replication.Options) replication.Store
	// Reopen closes s and opens it again from what it persisted; nil for
	// stores that persist nothing.
	Reopen func(t *testing.T, s replication.Store) replication.Store
	// Ops is the number of operations of the property test (it scales
	// with the cost of a synced write).
	Ops int
}

// Now is the clock the tests use (unix seconds).
const Now = 1_800_000_000

// Key returns the deterministic owner key number i.
func Key(t testing.TB, i int) crypto.PrivKey {
	t.Helper()
	seed := bytes.Repeat([]byte{byte(i + 1)}, 64)
	k, err := secure.GenerateKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Mutable signs a record or fails the test.
func Mutable(t testing.TB, k crypto.PrivKey, name string, value []byte, version uint64, expiry int64) *replication.Record {
	t.Helper()
	r, err := replication.Sign(k, []byte(name), value, version, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run runs the conformance suite.
func Run(t *testing.T, f Factory) {
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, f) })
	t.Run("VersionRules", func(t *testing.T) { testVersionRules(t, f) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, f) })
	t.Run("Capacity", func(t *testing.T) { testCapacity(t, f) })
	t.Run("Quota", func(t *testing.T) { testQuota(t, f) })
	t.Run("Ranges", func(t *testing.T) { testRanges(t, f) })
	t.Run("Summary", func(t *testing.T) { testSummary(t, f) })
	t.Run("DeleteCollect", func(t *testing.T) { testDeleteCollect(t, f) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, f) })
	t.Run("Reentrant", func(t *testing.T) { testReentrant(t, f) })
	if f.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) { testReopen(t, f) })
	}
	t.Run("Model", func(t *testing.T) { testModel(t, f) })
}

func open(t *testing.T, f Factory, o replication.Options) replication.Store {
	s := f.Open(t, o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(t *testing.T, s replication.Store, r *replication.Record) bool {
	t.Helper()
	ok, err := s.Put(Now, r)
	if err != nil {
		t.Fatalf("Put %s: %v", r, err)
	}
	return ok
}

func mustGet(t *testing.T, s replication.Store, want *replication.Record) {
	t.Helper()
	got, ok, err := s.Get(want.Key())
	if err != nil || !ok {
		t.Fatalf("Get %s: %v, %v", want, ok, err)
	}
	if !got.Equal(want) {
		t.Fatalf("Get %s = %s, a different record", want, got)
	}
}

func testPutGet(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{})
	k := Key(t, 0)
	r := Mutable(t, k, "a", []byte("hello"), 1, 0)
	if _, ok, err := s.Get(r.Key()); ok || err != nil {
		t.Fatalf("Get before Put: %v, %v", ok, err)
	}
	if !put(t, s, r) {
		t.Fatal("first Put not stored")
	}
	mustGet(t, s, r)
	im := replication.NewImmutable([]byte("content"))
	if !put(t, s, im) {
		t.Fatal("immutable not stored")
	}
	mustGet(t, s, im)
	e, ok, err := s.Entry(r.Key())
	want, _ := r.Entry()
	if err != nil || !ok || e != want {
		t.Fatalf("Entry = %+v, %v, %v; want %+v", e, ok, err, want)
	}
	// The store keeps no alias of what it was given or returned.
	got, _, _ := s.Get(r.Key())
	got.Value[0] = 'X'
	r.Value[0] = 'Y'
	r2, _, _ := s.Get(r.Key())
	if string(r2.Value) != "hello" {
		t.Fatalf("stored value changed through an alias: %q", r2.Value)
	}
	st := s.Stats()
	if st.Records != 2 || st.Immutable != 1 || st.Bytes != int64(e.Size)+int64(len(mustMarshal(t, im))) {
		t.Fatalf("Stats = %+v", st)
	}
}

func mustMarshal(t testing.TB, r *replication.Record) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testVersionRules(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{})
	k := Key(t, 1)
	v2 := Mutable(t, k, "n", []byte("two"), 2, 0)
	put(t, s, v2)
	if ok, err := s.Put(Now, Mutable(t, k, "n", []byte("two"), 2, 0)); ok || err != nil {
		t.Fatalf("identical record: %v, %v; want a no-op", ok, err)
	}
	if _, err := s.Put(Now, Mutable(t, k, "n", []byte("one"), 1, 0)); !errors.Is(err, replication.ErrStale) {
		t.Fatalf("rollback: %v, want ErrStale", err)
	}
	if _, err := s.Put(Now, Mutable(t, k, "n", []byte("other"), 2, 0)); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("same version, other value: %v, want ErrConflict", err)
	}
	mustGet(t, s, v2)
	v3 := replication.Record{}
	tomb, err := replication.SignTombstone(k, []byte("n"), 3, Now+100)
	if err != nil {
		t.Fatal(err)
	}
	_ = v3
	if !put(t, s, tomb) {
		t.Fatal("tombstone not stored")
	}
	mustGet(t, s, tomb)
	if _, err := s.Put(Now, v2); !errors.Is(err, replication.ErrStale) {
		t.Fatalf("the deleted version again: %v, want ErrStale", err)
	}
	if st := s.Stats(); st.Tombstones != 1 || st.Records != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	// An immutable object whose content is an owner's key and a name
	// squats on that owner's record key: the owner's record replaces it,
	// never the reverse.
	pub, _ := k.GetPublic().Raw()
	squat := replication.NewImmutable(append(pub, "m"...))
	owned := Mutable(t, k, "m", []byte("mine"), 1, 0)
	if squat.Key() != owned.Key() {
		t.Fatal("the squatting object does not share the key")
	}
	put(t, s, squat)
	if !put(t, s, owned) {
		t.Fatal("the owner's record did not replace the squatter")
	}
	if _, err := s.Put(Now, squat); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("immutable over mutable: %v, want ErrConflict", err)
	}
	mustGet(t, s, owned)
}

func testRefusals(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{Limits: replication.Limits{MaxValue: 100}})
	k := Key(t, 2)
	forged := Mutable(t, k, "x", []byte("v"), 1, 0)
	forged.Value = []byte("w")
	big := Mutable(t, k, "y", make([]byte, 101), 1, 0)
	old := Mutable(t, k, "z", []byte("v"), 1, Now)
	zeroKey := Mutable(t, k, "w", nil, 1, 0)
	zeroKey.Owner = make([]byte, 32)
	for _, c := range []struct {
		r    *replication.Record
		want error
	}{
		{forged, replication.ErrBadSignature},
		{big, replication.ErrTooLarge},
		{old, replication.ErrExpired},
		{zeroKey, replication.ErrBadKey},
		{&replication.Record{Kind: 9}, replication.ErrMalformed},
	} {
		if ok, err := s.Put(Now, c.r); ok || !errors.Is(err, c.want) {
			t.Errorf("Put %s: %v, %v; want %v", c.r, ok, err, c.want)
		}
		if _, ok, _ := s.Get(c.r.Key()); ok {
			t.Errorf("%s stored after a refusal", c.r)
		}
	}
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after refusals = %+v", st)
	}
}

func testCapacity(t *testing.T, f Factory) {
	k := Key(t, 3)
	r1 := Mutable(t, k, "1", make([]byte, 400), 1, 0)
	size := int64(len(mustMarshal(t, r1)))
	s := open(t, f, replication.Options{Capacity: 2*size + 10})
	put(t, s, r1)
	put(t, s, Mutable(t, k, "2", make([]byte, 400), 1, 0))
	r3 := Mutable(t, k, "3", make([]byte, 400), 1, 0)
	if _, err := s.Put(Now, r3); !errors.Is(err, replication.ErrCapacity) {
		t.Fatalf("past capacity: %v, want ErrCapacity", err)
	}
	// A replacement that does not grow is admitted when full; one that
	// grows past capacity is not.
	put(t, s, Mutable(t, k, "1", make([]byte, 300), 2, 0))
	if _, err := s.Put(Now, Mutable(t, k, "1", make([]byte, 600), 3, 0)); !errors.Is(err, replication.ErrCapacity) {
		t.Fatalf("growing past capacity: %v, want ErrCapacity", err)
	}
	if ok, err := s.Delete(r1.Key()); !ok || err != nil {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	put(t, s, r3)
	st := s.Stats()
	if st.Bytes > 2*size+10 || st.Records != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	// The space a store reports (replica diversion reads it) is its
	// bytes held and its capacity.
	sr, ok := s.(replication.SpaceReporter)
	if !ok {
		t.Fatal("the store does not report its space")
	}
	if used, capacity := sr.Space(); used != st.Bytes || capacity != 2*size+10 {
		t.Fatalf("Space = %d, %d; want %d, %d", used, capacity, st.Bytes, 2*size+10)
	}
}

func testQuota(t *testing.T, f Factory) {
	a, b := Key(t, 4), Key(t, 5)
	r := Mutable(t, a, "1", make([]byte, 200), 1, 0)
	size := int64(len(mustMarshal(t, r)))
	s := open(t, f, replication.Options{OwnerQuota: size + 50})
	put(t, s, r)
	if _, err := s.Put(Now, Mutable(t, a, "2", make([]byte, 200), 1, 0)); !errors.Is(err, replication.ErrQuota) {
		t.Fatalf("owner over quota: %v, want ErrQuota", err)
	}
	put(t, s, Mutable(t, b, "1", make([]byte, 200), 1, 0))    // another owner
	put(t, s, Mutable(t, a, "1", make([]byte, 220), 2, 0))    // within quota
	put(t, s, replication.NewImmutable(make([]byte, 2*size))) // no owner, no quota
	pa, _ := a.GetPublic().Raw()
	st := s.Stats()
	var oa replication.Owner
	copy(oa[:], pa)
	if st.Owners[oa] > size+50 || len(st.Owners) != 2 {
		t.Fatalf("Owners = %v", st.Owners)
	}
}

// fill stores n records with random keys; it returns them sorted by key.
func fill(t *testing.T, s replication.Store, n int) []*replication.Record {
	var rs []*replication.Record
	for i := range n {
		r := replication.NewImmutable([]byte(fmt.Sprintf("object %d", i)))
		put(t, s, r)
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *replication.Record) int { return a.Key().Cmp(b.Key()) })
	return rs
}

func keysOf(rs []*replication.Record) []id.ID {
	var ks []id.ID
	for _, r := range rs {
		ks = append(ks, r.Key())
	}
	return ks
}

// arc lists the keys of sorted on [lo, hi] in arc order.
func arc(sorted []id.ID, lo, hi id.ID) []id.ID {
	var out []id.ID
	for _, seg := range replication.Segments(lo, hi) {
		for _, k := range sorted {
			if seg[0].Cmp(k) <= 0 && k.Cmp(seg[1]) <= 0 {
				out = append(out, k)
			}
		}
	}
	return out
}

func testRanges(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{})
	ks := keysOf(fill(t, s, 40))
	minus1 := func(x id.ID) id.ID { return x.U128().Sub(id.U128{Lo: 1}).ID() }
	cases := [][2]id.ID{
		{{}, replication.MaxID}, // everything
		{ks[10], ks[20]},        // inclusive both ends
		{ks[30], ks[5]},         // wraps
		{ks[7], ks[7]},          // one key
		{ks[7], minus1(ks[7])},  // the whole ring from ks[7]
		{minus1(ks[3]), ks[3]},  // just one key and the gap before it
		{replication.MaxID, {}}, // wraps over the gap
	}
	for _, c := range cases {
		want := arc(ks, c[0], c[1])
		var got, gotE []id.ID
		if err := s.Range(c[0], c[1], func(r *replication.Record) bool { got = append(got, r.Key()); return true }); err != nil {
			t.Fatal(err)
		}
		if err := s.Entries(c[0], c[1], func(e replication.Entry) bool { gotE = append(gotE, e.Key); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || !slices.Equal(gotE, want) {
			t.Errorf("Range(%s, %s) = %d keys %v, Entries %d; want %d %v", c[0].Short(), c[1].Short(), len(got), got, len(gotE), len(want), want)
		}
		for _, k := range want {
			if !replication.InRange(c[0], c[1], k) {
				t.Errorf("InRange(%s, %s, %s) = false", c[0].Short(), c[1].Short(), k.Short())
			}
		}
	}
	// Whole-ring iteration from ks[7] starts at ks[7] and wraps.
	var first []id.ID
	_ = s.Range(ks[7], minus1(ks[7]), func(r *replication.Record) bool { first = append(first, r.Key()); return len(first) < 3 })
	if !slices.Equal(first, ks[7:10]) {
		t.Errorf("stopped iteration gave %v, want %v", first, ks[7:10])
	}
}

func testSummary(t *testing.T, f Factory) {
	a, b := open(t, f, replication.Options{}), open(t, f, replication.Options{})
	k := Key(t, 6)
	var rs []*replication.Record
	for i := range 20 {
		rs = append(rs, Mutable(t, k, fmt.Sprint(i), []byte{byte(i)}, uint64(i+1), 0))
	}
	for _, r := range rs {
		put(t, a, r)
	}
	for _, r := range slices.Backward(rs) {
		put(t, b, r)
	}
	full := [2]id.ID{{}, replication.MaxID}
	sa, _ := a.Summary(full[0], full[1])
	sb, _ := b.Summary(full[0], full[1])
	if sa != sb || sa.Count != 20 || sa.Bytes != a.Stats().Bytes {
		t.Fatalf("summaries of the same records differ: %+v, %+v", sa, sb)
	}
	// One newer version on b: the summaries differ on the ranges that
	// hold it only.
	newer := Mutable(t, k, "5", []byte{5}, 99, 0)
	put(t, b, newer)
	sb, _ = b.Summary(full[0], full[1])
	if sa.Hash == sb.Hash {
		t.Fatal("summaries equal after a newer version")
	}
	key := newer.Key()
	inA, _ := a.Summary(key, key)
	inB, _ := b.Summary(key, key)
	next := key.U128().Add(id.U128{Lo: 1}).ID()
	outA, _ := a.Summary(next, key.U128().Sub(id.U128{Lo: 1}).ID())
	outB, _ := b.Summary(next, key.U128().Sub(id.U128{Lo: 1}).ID())
	if inA == inB || outA != outB || outA.Count != 19 {
		t.Fatalf("range summaries: in %v/%v, out %v/%v", inA, inB, outA, outB)
	}
}

func testDeleteCollect(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{})
	k := Key(t, 7)
	keep := Mutable(t, k, "keep", []byte("v"), 1, 0)
	later := Mutable(t, k, "later", []byte("v"), 1, Now+1000)
	soon := Mutable(t, k, "soon", []byte("v"), 1, Now+10)
	tomb, _ := replication.SignTombstone(k, []byte("gone"), 2, Now+20)
	for _, r := range []*replication.Record{keep, later, soon, tomb} {
		put(t, s, r)
	}
	if n, err := s.Collect(Now + 9); n != 0 || err != nil {
		t.Fatalf("Collect before any expiry: %d, %v", n, err)
	}
	if n, err := s.Collect(Now + 20); n != 2 || err != nil {
		t.Fatalf("Collect: %d, %v; want 2 (the record and the tombstone)", n, err)
	}
	for _, r := range []*replication.Record{soon, tomb} {
		if _, ok, _ := s.Get(r.Key()); ok {
			t.Errorf("%s not collected", r)
		}
	}
	mustGet(t, s, keep)
	mustGet(t, s, later)
	if ok, err := s.Delete(later.Key()); !ok || err != nil {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	if ok, err := s.Delete(later.Key()); ok || err != nil {
		t.Fatalf("Delete again: %v, %v", ok, err)
	}
	if st := s.Stats(); st.Records != 1 || st.Tombstones != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	// The slot is free again: any version may come back.
	put(t, s, Mutable(t, k, "later", []byte("again"), 1, 0))
}

// testReentrant: callbacks may call the store, and see the range as it
// was.
func testReentrant(t *testing.T, f Factory) {
	s := open(t, f, replication.Options{})
	rs := fill(t, s, 10)
	var seen int
	err := s.Range(rs[3].Key(), rs[2].Key(), func(r *replication.Record) bool {
		seen++
		if _, err := s.Delete(r.Key()); err != nil {
			t.Fatal(err)
		}
		put(t, s, replication.NewImmutable(append([]byte("new "), r.Value...)))
		return true
	})
	if err != nil || seen != 10 {
		t.Fatalf("Range deleting as it goes saw %d records: %v", seen, err)
	}
	n := 0
	_ = s.Entries(id.ID{}, replication.MaxID, func(e replication.Entry) bool {
		if _, ok, err := s.Get(e.Key); !ok || err != nil {
			t.Fatalf("Get inside Entries: %v, %v", ok, err)
		}
		n++
		return true
	})
	if n != 10 || s.Stats().Records != 10 {
		t.Fatalf("%d entries, Stats %+v", n, s.Stats())
	}
}

func testClosed(t *testing.T, f Factory) {
	s := f.Open(t, replication.Options{})
	r := replication.NewImmutable([]byte("x"))
	put(t, s, r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(Now, r); !errors.Is(err, replication.ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if _, _, err := s.Get(r.Key()); !errors.Is(err, replication.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.Range(id.ID{}, replication.MaxID, func(*replication.Record) bool { return true }); !errors.Is(err, replication.ErrClosed) {
		t.Errorf("Range after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, replication.ErrClosed) {
		t.Errorf("Close again: %v", err)
	}
}

func testReopen(t *testing.T, f Factory) {
	s := f.Open(t, replication.Options{})
	k := Key(t, 8)
	rs := fill(t, s, 10)
	for i := range 10 {
		r := Mutable(t, k, fmt.Sprint(i), []byte("v"), 1, Now+1+int64(i))
		put(t, s, r)
		rs = append(rs, r)
	}
	tomb, _ := replication.SignTombstone(k, []byte("0"), 2, Now+50)
	put(t, s, tomb)
	rs[10] = tomb
	_, _ = s.Delete(rs[0].Key())
	rs = rs[1:]
	before := s.Stats()
	sum1, _ := s.Summary(id.ID{}, replication.MaxID)
	s = f.Reopen(t, s)
	t.Cleanup(func() { _ = s.Close() })
	for _, r := range rs {
		mustGet(t, s, r)
	}
	sum2, _ := s.Summary(id.ID{}, replication.MaxID)
	after := s.Stats()
	if sum1 != sum2 || before.Records != after.Records || before.Bytes != after.Bytes || before.Tombstones != after.Tombstones {
		t.Fatalf("after reopening: %+v %+v, before %+v %+v", after, sum2, before, sum1)
	}
	if _, err := s.Put(Now, Mutable(t, k, "1", []byte("v"), 1, Now+2)); err != nil {
		t.Fatalf("the same record after reopening: %v", err)
	}
}

// model is the plain reference: a map, the rules written out.
type model struct {
	o    replication.Options
	recs map[id.ID]*replication.Record
}

func (m *model) bytes() (total int64, owner map[replication.Owner]int64) {
	owner = map[replication.Owner]int64{}
	for _, r := range m.recs {
		b, _ := r.Marshal()
		total += int64(len(b))
		if r.Kind == replication.Mutable {
			var o replication.Owner
			copy(o[:], r.Owner)
			owner[o] += int64(len(b))
		}
	}
	return total, owner
}

func (m *model) put(now int64, r *replication.Record) (bool, error) {
	if err := r.Validate(now, m.o.Limits); err != nil {
		return false, err
	}
	old := m.recs[r.Key()]
	if old != nil {
		switch {
		case old.Kind == replication.Mutable && r.Kind == replication.Immutable:
			return false, replication.ErrConflict
		case old.Kind == replication.Immutable && r.Kind == replication.Mutable:
		case r.Version < old.Version:
			return false, replication.ErrStale
		case r.Version == old.Version && r.Equal(old):
			return false, nil
		case r.Version == old.Version:
			return false, replication.ErrConflict
		}
	}
	m.recs[r.Key()] = r
	total, owner := m.bytes()
	var o replication.Owner
	copy(o[:], r.Owner)
	grew := old == nil || len(mustMarshalQuiet(r)) > len(mustMarshalQuiet(old))
	switch {
	case grew && m.o.Capacity > 0 && total > m.o.Capacity:
		m.undo(r.Key(), old)
		return false, replication.ErrCapacity
	case r.Kind == replication.Mutable && m.o.OwnerQuota > 0 && owner[o] > m.o.OwnerQuota && ownerGrew(old, r):
		m.undo(r.Key(), old)
		return false, replication.ErrQuota
	}
	return true, nil
}

func ownerGrew(old, r *replication.Record) bool {
	if old == nil || old.Kind != replication.Mutable {
		return true
	}
	return len(mustMarshalQuiet(r)) > len(mustMarshalQuiet(old))
}

func mustMarshalQuiet(r *replication.Record) []byte { b, _ := r.Marshal(); return b }

func (m *model) undo(k id.ID, old *replication.Record) {
	if old == nil {
		delete(m.recs, k)
	} else {
		m.recs[k] = old
	}
}

func (m *model) sorted() []id.ID {
	var ks []id.ID
	for k := range m.recs {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, id.ID.Cmp)
	return ks
}

// errClass names the sentinel err wraps, for comparing errors.
func errClass(err error) string {
	for _, e := range []error{replication.ErrMalformed, replication.ErrTooLarge, replication.ErrBadKey,
		replication.ErrBadSignature, replication.ErrExpired, replication.ErrConflict, replication.ErrStale,
		replication.ErrCapacity, replication.ErrQuota, replication.ErrClosed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return "nil"
}

// testModel applies random operations to a store and to the model and
// compares every answer.
func testModel(t *testing.T, f Factory) {
	ops := f.Ops
	if ops == 0 {
		ops = 2000
	}
	if testing.Short() {
		ops /= 4
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			o := replication.Options{Limits: replication.Limits{MaxValue: 600}, Capacity: 12_000, OwnerQuota: 5_000}
			s := open(t, f, o)
			m := &model{o: o, recs: map[id.ID]*replication.Record{}}
			keys := []crypto.PrivKey{Key(t, 10), Key(t, 11), Key(t, 12)}
			now := int64(Now)
			randRecord := func() *replication.Record {
				if rng.IntN(8) == 0 {
					return replication.NewImmutable([]byte(fmt.Sprint("obj", rng.IntN(20))))
				}
				k := keys[rng.IntN(len(keys))]
				name := fmt.Sprint(rng.IntN(12))
				var exp int64
				if rng.IntN(3) == 0 {
					exp = now + int64(rng.IntN(200)) - 20
				}
				if rng.IntN(10) == 0 {
					r, _ := replication.SignTombstone(k, []byte(name), uint64(rng.IntN(6)), exp)
					return r
				}
				r := Mutable(t, k, name, make([]byte, rng.IntN(700)), uint64(rng.IntN(6)), exp)
				if rng.IntN(20) == 0 {
					r.Signature[0] ^= 1
				}
				return r
			}
			var known []id.ID
			randKey := func() id.ID {
				if len(known) > 0 && rng.IntN(4) != 0 {
					return known[rng.IntN(len(known))]
				}
				var x id.ID
				for i := range x {
					x[i] = byte(rng.Uint32())
				}
				return x
			}
			for i := range ops {
				switch op := rng.IntN(10); {
				case op < 5:
					r := randRecord()
					known = append(known, r.Key())
					gotOK, gotErr := s.Put(now, r)
					wantOK, wantErr := m.put(now, r)
					if gotOK != wantOK || errClass(gotErr) != errClass(wantErr) {
						t.Fatalf("op %d: Put %s = %v, %v; model %v, %v", i, r, gotOK, gotErr, wantOK, wantErr)
					}
				case op == 5:
					k := randKey()
					got, _ := s.Delete(k)
					_, want := m.recs[k]
					delete(m.recs, k)
					if got != want {
						t.Fatalf("op %d: Delete = %v, model %v", i, got, want)
					}
				case op == 6:
					now += int64(rng.IntN(30))
					n, err := s.Collect(now)
					want := 0
					for k, r := range m.recs {
						if r.Expired(now) {
							delete(m.recs, k)
							want++
						}
					}
					if n != want || err != nil {
						t.Fatalf("op %d: Collect = %d, %v; model %d", i, n, err, want)
					}
				case op == 7:
					k := randKey()
					got, ok, err := s.Get(k)
					want := m.recs[k]
					if err != nil || ok != (want != nil) || ok && !got.Equal(want) {
						t.Fatalf("op %d: Get = %v, %v; model %v", i, ok, err, want)
					}
				default:
					lo, hi := randKey(), randKey()
					var got []id.ID
					_ = s.Entries(lo, hi, func(e replication.Entry) bool { got = append(got, e.Key); return true })
					want := arc(m.sorted(), lo, hi)
					if !slices.Equal(got, want) {
						t.Fatalf("op %d: Entries = %v, model %v", i, got, want)
					}
					sum, _ := s.Summary(lo, hi)
					var ws replication.Summary
					for _, k := range want {
						e, _ := m.recs[k].Entry()
						ws.Add(e)
					}
					if sum != ws {
						t.Fatalf("op %d: Summary = %+v, model %+v", i, sum, ws)
					}
				}
				total, owners := m.bytes()
				st := s.Stats()
				if st.Records != len(m.recs) || st.Bytes != total || len(st.Owners) != len(owners) {
					t.Fatalf("op %d: Stats = %d records %d bytes %d owners; model %d, %d, %d", i, st.Records, st.Bytes, len(st.Owners), len(m.recs), total, len(owners))
				}
				for o, n := range owners {
					if st.Owners[o] != n {
						t.Fatalf("op %d: owner usage %d, model %d", i, st.Owners[o], n)
					}
				}
			}
			if f.Reopen != nil {
				s = f.Reopen(t, s)
				t.Cleanup(func() { _ = s.Close() })
				for k, r := range m.recs {
					got, ok, err := s.Get(k)
					if err != nil || !ok || !got.Equal(r) {
						t.Fatalf("after reopening: Get %s = %v, %v", r, ok, err)
					}
				}
			}
		})
	}
}
