package replication

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
)

// smallAt makes a world in which the K closest nodes to key have capacity
// small and every other node large.
func smallAt(t *testing.T, seed uint64, n int, key func(*pastWorld) id.ID, small, large int64, po PastOptions) *pastWorld {
	t.Helper()
	// The ids come from the seed: a first world tells which nodes are
	// the closest; the second, built alike, gives them the small stores.
	probe := newPastWorld(t, seed, n)
	target := key(probe)
	closest := probe.closest(target, 5)
	return newPastWorldWith(t, seed, n, func(i int, _ id.ID) (Options, PastOptions) {
		c := large
		if slices.Contains(closest, i) {
			c = small
		}
		return Options{Capacity: c}, po
	})
}

// copies counts key's copies on its K live closest nodes: held in a
// store, or through a pointer whose holder holds it.
func (w *pastWorld) copies(key id.ID) (stored, pointers int) {
	for _, i := range w.closest(key, 5) {
		p := w.apps[i]
		if _, ok, _ := w.stores[i].Get(key); ok {
			if _, held := p.held[key]; !held {
				stored++
			}
		}
		if ptr := p.pointers[key]; ptr != nil {
			hi, ok := w.nw.Lookup(ptr.holder.ID)
			if ok && w.nw.Node(hi.Index).Alive() {
				if _, ok, _ := w.stores[hi.Index].Get(key); ok {
					pointers++
				}
			}
		}
	}
	return stored, pointers
}

// The K closest nodes of a key have too little free space for a record
// (over TPri of it): each diverts its copy to a leaf-set neighbour with
// space, keeps a pointer, and signs its receipt; the write gets K
// receipts, and reads from every node return the record through the
// pointers. Without diversion, the same write is refused as full.
func TestReplicaDiversion(t *testing.T) {
	name := "diverted"
	keyOf := func(w *pastWorld) id.ID { return w.record(name, 1, "").Key() }
	value := strings.Repeat("v", 2000)
	w := smallAt(t, 21, 60, keyOf, 6000, 1<<20, PastOptions{})
	rec := w.record(name, 1, value)
	res, err := w.putWith(7, rec, WriteOptions{W: 5})
	if err != nil || len(res.Receipts) != 5 {
		t.Fatalf("put: %d receipts, %v", len(res.Receipts), err)
	}
	w.nw.RunFor(2 * time.Second)
	closest := w.closest(rec.Key(), 5)
	var diverted uint64
	for _, i := range closest {
		ptr := w.apps[i].pointers[rec.Key()]
		if ptr == nil {
			t.Fatalf("replica %d keeps no pointer", i)
		}
		if _, ok, _ := w.stores[i].Get(rec.Key()); ok {
			t.Fatalf("replica %d stores the record it diverted", i)
		}
		hi, _ := w.nw.Lookup(ptr.holder.ID)
		if slices.Contains(closest, hi.Index) || w.apps[hi.Index].held[rec.Key()] != w.nw.Node(i).Self().ID {
			t.Fatalf("replica %d diverted to %d, a replica or not holding it for it", i, hi.Index)
		}
		diverted += w.apps[i].Stats().Diverted
	}
	if diverted != 5 {
		t.Fatalf("diverted %d, want 5", diverted)
	}
	for i := range 60 {
		g, err := w.get(i, rec.Key())
		if err != nil || g.Record == nil || !g.Record.Equal(rec) {
			t.Fatalf("get from %d: %+v %v", i, g, err)
		}
	}
	// Maintenance leaves diverted copies where they are: the summaries
	// count the pointers, and the holders do not hand them off.
	w.nw.RunFor(5 * time.Minute)
	if s, p := w.copies(rec.Key()); s != 0 || p != 5 {
		t.Fatalf("after maintenance: %d stored, %d through pointers; want 0 and 5", s, p)
	}

	// The same write without diversion: the replicas are full.
	nd := smallAt(t, 21, 60, keyOf, 1500, 1<<20, PastOptions{NoDivert: true})
	if _, err := nd.putWith(7, nd.record(name, 1, value), WriteOptions{W: 5}); !errors.Is(err, ErrCapacity) {
		t.Fatalf("without diversion: %v, want ErrCapacity", err)
	}
	var full uint64
	for _, p := range nd.apps {
		full += p.Stats().Full
	}
	if full == 0 {
		t.Fatal("refusals for space not counted")
	}
}

// The holder of a diverted copy crashes: its replica drops the pointer
// and anti-entropy brings the copy back (diverted anew). A replica holding
// a pointer crashes: its holder hands the copy off to the key's K closest
// and drops it, and reads still succeed throughout.
func TestDiversionAfterCrashes(t *testing.T) {
	name := "crashy"
	keyOf := func(w *pastWorld) id.ID { return w.record(name, 1, "").Key() }
	w := smallAt(t, 22, 60, keyOf, 6000, 1<<20, PastOptions{})
	rec := w.record(name, 1, strings.Repeat("x", 2000))
	if _, err := w.putWith(3, rec, WriteOptions{W: 5}); err != nil {
		t.Fatal(err)
	}
	w.nw.RunFor(2 * time.Second)
	closest := w.closest(rec.Key(), 5)
	ptr := w.apps[closest[0]].pointers[rec.Key()]
	holder, _ := w.nw.Lookup(ptr.holder.ID)
	w.nw.Crash(holder.Index)
	w.nw.RunFor(6 * time.Minute)
	if s, p := w.copies(rec.Key()); s+p != 5 {
		t.Fatalf("after the holder's crash: %d stored, %d through pointers; want 5 in all", s, p)
	}
	if got := w.apps[closest[0]].Stats().PointersLost; got == 0 {
		t.Fatal("the pointer to the crashed holder was not dropped")
	}
	// Now a replica with a pointer crashes.
	victim := closest[1]
	vh := w.apps[victim].pointers[rec.Key()].holder
	vhi, _ := w.nw.Lookup(vh.ID)
	w.nw.Crash(victim)
	w.nw.RunFor(8 * time.Minute)
	if s, p := w.copies(rec.Key()); s+p != 5 {
		t.Fatalf("after a replica's crash: %d stored, %d through pointers; want 5 in all", s, p)
	}
	if _, ok := w.apps[vhi.Index].held[rec.Key()]; ok {
		t.Fatalf("node %d still holds its copy for the crashed replica", vhi.Index)
	}
	for i := range w.apps {
		if !w.nw.Node(i).Alive() {
			continue
		}
		g, err := w.get(i, rec.Key())
		if err != nil || g.Record == nil || !g.Record.Equal(rec) {
			t.Fatalf("get from %d: %+v %v", i, g, err)
		}
	}
}

// No space anywhere: every replica and every neighbour refuses, the
// write fails with ErrCapacity, nothing is stored, and the refusals are
// counted.
func TestNoSpaceRefused(t *testing.T) {
	w := newPastWorldWith(t, 23, 40, func(int, id.ID) (Options, PastOptions) { return Options{Capacity: 1000}, PastOptions{} })
	rec := w.record("huge", 1, strings.Repeat("h", 2000))
	if _, err := w.put(1, rec); !errors.Is(err, ErrCapacity) {
		t.Fatalf("put: %v, want ErrCapacity", err)
	}
	w.nw.RunFor(3 * time.Minute)
	var full uint64
	for i, p := range w.apps {
		full += p.Stats().Full
		if len(p.pointers) != 0 || w.stores[i].Stats().Records != 0 {
			t.Fatalf("node %d keeps %d pointers and %d records", i, len(p.pointers), w.stores[i].Stats().Records)
		}
	}
	if full == 0 {
		t.Fatal("refusals for space not counted")
	}
}

// An owner over its quota on the replicas: the write fails with ErrQuota
// and is counted; another owner's write still succeeds.
func TestQuotaRefused(t *testing.T) {
	w := newPastWorldWith(t, 24, 40, func(int, id.ID) (Options, PastOptions) { return Options{OwnerQuota: 3000}, PastOptions{} })
	if _, err := w.put(1, w.record("a", 1, strings.Repeat("a", 2000))); err != nil {
		t.Fatal(err)
	}
	// The same owner's next record lands on other replicas, mostly; fill
	// until a write comes back over quota.
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		_, err = w.put(1, w.record("a"+strings.Repeat("+", i+1), 1, strings.Repeat("a", 2000)))
	}
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("puts over the quota: %v, want ErrQuota", err)
	}
	var over uint64
	for _, p := range w.apps {
		over += p.Stats().OverQuota
	}
	if over == 0 {
		t.Fatal("refusals over quota not counted")
	}
	for i, st := range w.stores {
		for o, used := range st.Stats().Owners {
			if used > 3000 {
				t.Fatalf("node %d holds %d bytes of owner %x", i, used, o[:4])
			}
		}
	}
}

// Bad diversion traffic: a divert from a node that is not a replica of
// the key, or not in the leaf set, is refused; a release from a node
// other than the one the copy is held for changes nothing; a forged
// receipt for a diversion is not taken as a pointer.
func TestBadDiversionRefused(t *testing.T) {
	w := newPastWorld(t, 25, 60)
	rec := w.record("bad-divert", 1, "value")
	enc, _ := rec.Marshal()
	closest := w.closest(rec.Key(), 5)
	replica := closest[0]
	// Two leaf-set neighbours of the replica that are not replicas, as
	// they see it.
	var cands []int
	for _, h := range w.apps[replica].divertCandidates(rec.Key(), id.ID{}) {
		hi, _ := w.nw.Lookup(h.ID)
		if !w.apps[hi.Index].isReplica(h.ID, rec.Key()) && w.apps[hi.Index].isReplica(w.nw.Node(replica).Self().ID, rec.Key()) {
			cands = append(cands, hi.Index)
		}
	}
	if len(cands) < 2 {
		t.Fatalf("candidates %v", cands)
	}
	target, outsider := cands[0], cands[1]
	before := w.apps[target].Stats().Refused
	b, _ := (&pmsg{kind: kindDivert, req: 9, record: enc}).encode()
	w.nw.RunOn(outsider, func() { _ = w.apps[outsider].ep.Send(w.nw.Node(target).Self(), b) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); ok || w.apps[target].Stats().Refused != before+1 {
		t.Fatalf("a divert from a non-replica was taken (refused %d -> %d)", before, w.apps[target].Stats().Refused)
	}
	// A real replica diverts to target; then a stranger's release is
	// ignored.
	w.nw.RunOn(replica, func() { _ = w.apps[replica].ep.Send(w.nw.Node(target).Self(), b) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); !ok {
		t.Fatal("a replica's divert was refused")
	}
	// An offer from a node the copy is not held for is refused.
	offer, _ := (&pmsg{kind: kindOffer, key: rec.Key(), origin: w.nw.Node(outsider).Self()}).encode()
	before = w.apps[target].Stats().Refused
	pushed := w.apps[target].Stats().Pushed
	w.nw.RunOn(outsider, func() { _ = w.apps[outsider].ep.Send(w.nw.Node(target).Self(), offer) })
	w.nw.RunFor(time.Second)
	if st := w.apps[target].Stats(); st.Refused != before+1 || st.Pushed != pushed {
		t.Fatalf("a stranger's offer: refused %d -> %d, pushed %d -> %d", before, st.Refused, pushed, st.Pushed)
	}
	rel, _ := (&pmsg{kind: kindRelease, key: rec.Key(), version: 1}).encode()
	w.nw.RunOn(outsider, func() { _ = w.apps[outsider].ep.Send(w.nw.Node(target).Self(), rel) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); !ok {
		t.Fatal("a stranger's release dropped the copy")
	}
	w.nw.RunOn(replica, func() { _ = w.apps[replica].ep.Send(w.nw.Node(target).Self(), rel) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); ok {
		t.Fatal("the replica's release did not drop the copy")
	}
	// A forged receipt for a diversion in progress.
	p := w.apps[replica]
	e, _ := rec.Entry()
	var got []uint8
	w.nw.RunOn(replica, func() {
		op := &divertOp{key: e.Key, entry: e, enc: enc, to: w.nw.Node(target).Self(), tries: 1, done: func(st uint8) { got = append(got, st) }}
		p.diverts[77] = op
		forged := &pmsg{kind: kindStored, req: 77, status: statusOK, key: e.Key, version: e.Version, digest: e.Digest, stored: 1, sig: make([]byte, SignatureSize)}
		p.onStored(w.nw.Node(target).Self(), forged)
	})
	if p.pointers[rec.Key()] != nil || p.Stats().BadReceipts == 0 {
		t.Fatal("a forged diversion receipt became a pointer")
	}
	w.nw.RunFor(10 * time.Second)
	delete(p.diverts, 77)
}

// TestDivertedCopiesBounded: a node holds at most MaxPointers diverted
// copies for its neighbours; beyond, a replica's divert is refused as full
// and nothing is stored (a store without a capacity never refuses for
// space, so this is the bound).
func TestDivertedCopiesBounded(t *testing.T) {
	w := newPastWorld(t, 25, 60)
	rec := w.record("bounded-divert", 1, "value")
	enc, _ := rec.Marshal()
	replica := w.closest(rec.Key(), 5)[0]
	target := -1
	for _, h := range w.apps[replica].divertCandidates(rec.Key(), id.ID{}) {
		hi, _ := w.nw.Lookup(h.ID)
		if !w.apps[hi.Index].isReplica(h.ID, rec.Key()) && w.apps[hi.Index].isReplica(w.nw.Node(replica).Self().ID, rec.Key()) {
			target = hi.Index
			break
		}
	}
	if target < 0 {
		t.Fatal("no divert candidate")
	}
	p := w.apps[target]
	p.opts.MaxPointers = 1
	p.held[id.ID{1}] = id.ID{2} // one copy held already
	full := p.Stats().Full
	b, _ := (&pmsg{kind: kindDivert, req: 9, record: enc}).encode()
	w.nw.RunOn(replica, func() { _ = w.apps[replica].ep.Send(w.nw.Node(target).Self(), b) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); ok || p.Stats().Full != full+1 {
		t.Fatalf("a divert beyond MaxPointers was taken (full %d -> %d)", full, p.Stats().Full)
	}
	delete(p.held, id.ID{1})
	w.nw.RunOn(replica, func() { _ = w.apps[replica].ep.Send(w.nw.Node(target).Self(), b) })
	w.nw.RunFor(time.Second)
	if _, ok, _ := w.stores[target].Get(rec.Key()); !ok {
		t.Fatal("with room again, the replica's divert was refused")
	}
}
