package replication

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/simnet"
)

const testEpoch = 1_800_000_000

// pastWorld is a simulated overlay with the protocol on every node, each
// over its own MemStore.
type pastWorld struct {
	t      *testing.T
	nw     *simnet.Network
	apps   []*Past
	stores []*MemStore
	owner  crypto.PrivKey
}

type rng struct{ r *rand.Rand }

func (r rng) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(r.r.Uint32())
	}
	return len(b), nil
}

func newPastWorld(t *testing.T, seed uint64, n int) *pastWorld {
	t.Helper()
	return newPastWorldWith(t, seed, n, func(int, id.ID) (Options, PastOptions) { return Options{}, PastOptions{} })
}

// newPastWorldWith is newPastWorld with each node's store and protocol
// options given by opts (from its index and id); Epoch is set here.
func newPastWorldWith(t *testing.T, seed uint64, n int, opts func(i int, self id.ID) (Options, PastOptions)) *pastWorld {
	t.Helper()
	nw, err := simnet.New(simnet.Options{Seed: seed, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Grow(n, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	w := &pastWorld{t: t, nw: nw}
	for i := range n {
		so, po := opts(i, nw.Node(i).Self().ID)
		st, err := NewMemStore(so)
		if err != nil {
			t.Fatal(err)
		}
		po.Epoch = testEpoch
		p, err := RegisterPast(nw.Node(i).Machine, st, po)
		if err != nil {
			t.Fatal(err)
		}
		nw.RunOn(i, p.Start)
		w.apps, w.stores = append(w.apps, p), append(w.stores, st)
	}
	w.owner, err = secure.GenerateKey(rng{rand.New(rand.NewPCG(seed, 99))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *pastWorld) record(name string, version uint64, value string) *Record {
	w.t.Helper()
	rec, err := Sign(w.owner, []byte(name), []byte(value), version, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

// put writes rec from node i and waits for the result.
func (w *pastWorld) put(i int, rec *Record) (PutResult, error) {
	w.t.Helper()
	return w.putWith(i, rec, WriteOptions{})
}

func (w *pastWorld) putWith(i int, rec *Record, o WriteOptions) (PutResult, error) {
	w.t.Helper()
	var res PutResult
	var rerr error
	done := false
	var err error
	w.nw.RunOn(i, func() {
		err = w.apps[i].PutWith(rec, o, func(r PutResult, e error) { res, rerr, done = r, e, true })
	})
	if err != nil {
		return res, err
	}
	for k := 0; k < 30 && !done; k++ {
		w.nw.RunFor(500 * time.Millisecond)
	}
	if !done {
		w.t.Fatalf("put from %d: no result", i)
	}
	return res, rerr
}

func (w *pastWorld) get(i int, key id.ID) (GetResult, error) {
	w.t.Helper()
	return w.getWith(i, key, ReadOptions{})
}

func (w *pastWorld) getWith(i int, key id.ID, o ReadOptions) (GetResult, error) {
	w.t.Helper()
	var res GetResult
	var rerr error
	done := false
	var err error
	w.nw.RunOn(i, func() {
		err = w.apps[i].GetWith(key, o, func(r GetResult, e error) { res, rerr, done = r, e, true })
	})
	if err != nil {
		return res, err
	}
	for k := 0; k < 30 && !done; k++ {
		w.nw.RunFor(500 * time.Millisecond)
	}
	if !done {
		w.t.Fatalf("get from %d: no result", i)
	}
	return res, rerr
}

// holders lists the live nodes whose store holds key.
func (w *pastWorld) holders(key id.ID) []int {
	var out []int
	for i, st := range w.stores {
		if !w.nw.Node(i).Alive() {
			continue
		}
		if _, ok, _ := st.Get(key); ok {
			out = append(out, i)
		}
	}
	return out
}

// closest lists the k live nodes closest to key.
func (w *pastWorld) closest(key id.ID, k int) []int {
	live := w.nw.Live()
	slices.SortFunc(live, func(a, b id.ID) int {
		da, db := key.U128().RingDistance(a.U128()), key.U128().RingDistance(b.U128())
		return da.Cmp(db)
	})
	var out []int
	for _, x := range live[:k] {
		h, _ := w.nw.Lookup(x)
		out = append(out, h.Index)
	}
	slices.Sort(out)
	return out
}

// A write returns W signed receipts and lands on the K closest nodes; a
// read from anywhere returns it; a lower version is refused, and so is
// another record with the same version.
func TestPutGetOnTheKClosest(t *testing.T) {
	w := newPastWorld(t, 1, 100)
	r := rand.New(rand.NewPCG(1, 1))
	for k := range 20 {
		rec := w.record(fmt.Sprintf("obj-%d", k), 1, fmt.Sprintf("value %d", k))
		res, err := w.put(r.IntN(100), rec)
		if err != nil {
			t.Fatalf("put %d: %v", k, err)
		}
		if len(res.Receipts) < 3 || res.Version != 1 || res.Key != rec.Key() {
			t.Fatalf("put %d: %+v", k, res)
		}
		if got, want := w.holders(rec.Key()), w.closest(rec.Key(), 5); !slices.Equal(got, want) {
			t.Fatalf("record %d held by %v, want the 5 closest %v", k, got, want)
		}
		g, err := w.get(r.IntN(100), rec.Key())
		if err != nil || g.Record == nil || !g.Record.Equal(rec) || g.Answers < 3 {
			t.Fatalf("get %d: %+v %v", k, g, err)
		}
	}
	rec2 := w.record("obj-0", 2, "second")
	if _, err := w.put(5, rec2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.put(6, w.record("obj-0", 1, "value 0")); !errors.Is(err, ErrStale) {
		t.Fatalf("a lower version: %v, want ErrStale", err)
	}
	if _, err := w.put(7, w.record("obj-0", 2, "other")); !errors.Is(err, ErrConflict) {
		t.Fatalf("another record with the same version: %v, want ErrConflict", err)
	}
	g, err := w.get(9, rec2.Key())
	if err != nil || g.Record == nil || !g.Record.Equal(rec2) {
		t.Fatalf("get after the refusals: %+v %v", g, err)
	}
}

// Two of a record's 5 replicas crash: reads from every node still return
// it, and maintenance makes 5 live copies again on the 5 closest.
func TestReplicasRepairedAfterCrash(t *testing.T) {
	w := newPastWorld(t, 2, 80)
	rec := w.record("precious", 1, "data")
	if _, err := w.put(3, rec); err != nil {
		t.Fatal(err)
	}
	hs := w.holders(rec.Key())
	if len(hs) != 5 {
		t.Fatalf("held by %v", hs)
	}
	for _, i := range hs[:2] {
		w.nw.Crash(i)
	}
	for i := range 80 {
		if !w.nw.Node(i).Alive() {
			continue
		}
		if g, err := w.get(i, rec.Key()); err != nil || g.Record == nil || !g.Record.Equal(rec) {
			t.Fatalf("get from %d after 2 replicas crashed: %+v %v", i, g, err)
		}
	}
	w.nw.RunFor(5 * time.Minute)
	if got, want := w.holders(rec.Key()), w.closest(rec.Key(), 5); !slices.Equal(got, want) {
		t.Fatalf("after repair held by %v, want the 5 closest live %v", got, want)
	}
}

// 10% of 600 nodes crash at once: no record of 200 is lost, and each has
// K live copies on the K closest after repair.
func TestMassCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("600 nodes")
	}
	massCrash(t, 3, 600, 200)
}

// The same at 10,000 nodes with 2,000 records (PASTRY_PAST_10K=1; about
// a minute): the 10% crash.
func TestMassCrashTenThousand(t *testing.T) {
	if os.Getenv("PASTRY_PAST_10K") == "" {
		t.Skip("set PASTRY_PAST_10K=1: 10,000 nodes")
	}
	massCrash(t, 4, 10000, 2000)
}

func massCrash(t *testing.T, seed uint64, n, records int) {
	w := newPastWorld(t, seed, n)
	r := rand.New(rand.NewPCG(seed, 3))
	var recs []*Record
	for k := range records {
		rec := w.record(fmt.Sprintf("o%d", k), 1, "v")
		if _, err := w.put(r.IntN(n), rec); err != nil {
			t.Fatalf("put %d: %v", k, err)
		}
		recs = append(recs, rec)
	}
	var before PastStats
	for _, a := range w.apps {
		s := a.Stats()
		before.Pushed += s.Pushed
		before.SyncRounds += s.SyncRounds
	}
	sent0 := w.nw.Sent
	for _, i := range r.Perm(n)[:n/10] {
		w.nw.Crash(i)
	}
	w.nw.RunFor(10 * time.Minute)
	lost, short := 0, 0
	var after PastStats
	for _, a := range w.apps {
		s := a.Stats()
		after.Pushed += s.Pushed
		after.SyncRounds += s.SyncRounds
	}
	for _, rec := range recs {
		hs := w.holders(rec.Key())
		if len(hs) == 0 {
			lost++
		}
		if !slices.Equal(hs, w.closest(rec.Key(), 5)) {
			short++
		}
	}
	t.Logf("%d nodes, %d records, %d crashed: lost %d, not on their 5 closest %d after 10 min; copies pushed %d, summaries sent %d; all messages in the 10 min %d",
		n, records, n/10, lost, short, after.Pushed-before.Pushed, after.SyncRounds-before.SyncRounds, w.nw.Sent-sent0)
	if lost != 0 || short != 0 {
		t.Fatalf("%d records lost, %d not on their 5 closest live nodes", lost, short)
	}
}

// Two of 5 replicas serve a stale version or a forged record: a read with
// R=3 after a write with W=3 returns the written record, never the forged
// or stale one, and repairs them.
func TestByzantineReplicas(t *testing.T) {
	w := newPastWorld(t, 4, 80)
	v1 := w.record("bz", 1, "old")
	if _, err := w.put(1, v1); err != nil {
		t.Fatal(err)
	}
	hs := w.holders(v1.Key())
	v2 := w.record("bz", 2, "new")
	if _, err := w.put(2, v2); err != nil {
		t.Fatal(err)
	}
	// Replica 0 rolls back to v1; replica 1 serves a forged v3.
	bad := hs[:2]
	w.stores[bad[0]].Delete(v1.Key())
	if _, err := w.stores[bad[0]].Put(testEpoch, v1); err != nil {
		t.Fatal(err)
	}
	forged := w.record("bz", 3, "forged")
	forged.Value = []byte("FORGED")
	trusting, _ := NewMemStore(Options{TrustSignatures: true})
	if _, err := trusting.Put(testEpoch, forged); err != nil {
		t.Fatal(err)
	}
	w.stores[bad[1]].Delete(v1.Key())
	w.stores[bad[1]] = trusting
	w.apps[bad[1]].store = trusting
	for i := range 80 {
		g, err := w.get(i, v2.Key())
		if err != nil || g.Record == nil || !g.Record.Equal(v2) {
			t.Fatalf("get from %d: %+v %v, want v2", i, g.Record, err)
		}
	}
}

// Bad payloads change nothing and are counted.
func TestMalformedPayloads(t *testing.T) {
	w := newPastWorld(t, 5, 20)
	before := w.stores[3].Stats().Records
	for _, b := range [][]byte{nil, {0}, {kindPush}, {kindPush, 0, 0, 0, 9, 1}, {kindCount}} {
		w.nw.RunOn(2, func() { _ = w.apps[2].ep.Send(w.nw.Node(3).Self(), b) })
	}
	w.nw.RunFor(time.Second)
	if got := w.apps[3].Stats().Malformed; got != 5 {
		t.Fatalf("malformed counted %d, want 5", got)
	}
	if w.stores[3].Stats().Records != before {
		t.Fatal("a malformed payload changed the store")
	}
}

// The churn experiment (PASTRY_PAST_CHURN=1; minutes): 10,000
// nodes, K=5, 1,000 records; sessions exponential with a 30-minute median
// for an hour, arrivals keeping the population; 2 reads a second from
// random live nodes. Reports objects lost, read success and the
// protocol's maintenance traffic.
func TestChurnTenThousand(t *testing.T) {
	if os.Getenv("PASTRY_PAST_CHURN") == "" {
		t.Skip("set PASTRY_PAST_CHURN=1: 10,000 nodes churning for an hour")
	}
	const (
		n       = 10000
		records = 1000
		median  = 30 * time.Minute
		length  = time.Hour
	)
	w := newPastWorld(t, 6, n)
	var maint, maintBytes uint64
	w.nw.SetOnSend(func(_ int, m *core.Message) {
		if m.App == AppID && (m.Type == core.MsgDirect || m.Type == core.MsgRoute) {
			switch PayloadKind(m.Payload) {
			case "sync", "entries", "push":
				maint++
				maintBytes += uint64(len(m.Payload))
			}
		}
	})
	r := rand.New(rand.NewPCG(6, 6))
	var recs []*Record
	for k := range records {
		rec := w.record(fmt.Sprintf("c%d", k), 1, "v")
		if _, err := w.put(r.IntN(n), rec); err != nil {
			t.Fatalf("put %d: %v", k, err)
		}
		recs = append(recs, rec)
	}
	maint, maintBytes = 0, 0
	rate := float64(n) * math.Ln2 / median.Seconds() // departures (and arrivals) a second
	var reads, readOK, readErr int
	departures, arrivals := 0, 0
	liveIdx := func() int {
		live := w.nw.Live()
		h, _ := w.nw.Lookup(live[r.IntN(len(live))])
		return h.Index
	}
	for sec := 0; sec < int(length/time.Second); sec++ {
		for k := poisson(r, rate); k > 0; k-- {
			w.nw.Crash(liveIdx())
			departures++
		}
		for k := poisson(r, rate); k > 0; k-- {
			w.addNode(liveIdx())
			arrivals++
		}
		for range 2 {
			i, rec := liveIdx(), recs[r.IntN(len(recs))]
			reads++
			w.nw.RunOn(i, func() {
				_ = w.apps[i].Get(rec.Key(), func(g GetResult, err error) {
					if err == nil && g.Record != nil && g.Record.Equal(rec) {
						readOK++
					} else {
						readErr++
					}
				})
			})
		}
		w.nw.RunFor(time.Second)
	}
	w.nw.RunFor(30 * time.Second)
	lost := 0
	for _, rec := range recs {
		if len(w.holders(rec.Key())) == 0 {
			lost++
		}
	}
	live := float64(len(w.nw.Live()))
	t.Logf("%d nodes, %d records, churn median %v for %v: %d departures, %d arrivals; lost %d; reads %d ok %d (%.5f), failed %d; maintenance %.3f messages and %.1f payload bytes per node per second",
		n, records, median, length, departures, arrivals, lost, reads, readOK, float64(readOK)/float64(reads), readErr,
		float64(maint)/live/length.Seconds(), float64(maintBytes)/live/length.Seconds())
	if lost != 0 || float64(readOK) < 0.999*float64(reads) {
		t.Fatalf("lost %d records; %d of %d reads succeeded", lost, readOK, reads)
	}
}

func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// addNode adds a node with the protocol over a new store, joining through
// node via.
func (w *pastWorld) addNode(via int) {
	h := w.nw.AddNode()
	st, err := NewMemStore(Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := RegisterPast(h.Machine, st, PastOptions{Epoch: testEpoch})
	if err != nil {
		w.t.Fatal(err)
	}
	w.apps, w.stores = append(w.apps, p), append(w.stores, st)
	if err := w.nw.Join(h.Index, via); err != nil {
		w.t.Fatal(err)
	}
	w.nw.RunOn(h.Index, p.Start)
}

// A node flooding writes is refused at the root past its rate, and the
// records it flooded with stay unstored; others' writes go on.
func TestWriteFloodRefused(t *testing.T) {
	w := newPastWorld(t, 7, 40)
	flooder, honest := 3, 9
	refused, ok := 0, 0
	for k := range 300 {
		// All to one key's root: the same name, increasing versions.
		rec := w.record("flood", uint64(k+1), "x")
		w.nw.RunOn(flooder, func() {
			_ = w.apps[flooder].Put(rec, func(_ PutResult, err error) {
				if errors.Is(err, ErrRefused) {
					refused++
				} else if err == nil {
					ok++
				}
			})
		})
	}
	w.nw.RunFor(5 * time.Second)
	var limited uint64
	for _, a := range w.apps {
		limited += a.Stats().RateLimited
	}
	t.Logf("flood of 300 writes at once: %d stored, %d refused, %d rate-limited at the root", ok, refused, limited)
	if limited < 50 || refused < 50 || ok > 250 {
		t.Fatalf("flood: %d stored, %d refused (%d rate-limited): want the burst of 200 and no more", ok, refused, limited)
	}
	if _, err := w.put(honest, w.record("other", 1, "y")); err != nil {
		t.Fatalf("another node's write during the flood: %v", err)
	}
}

// Leaf-set changes bring the next maintenance round forward without
// adding rounds for good: one timer at a time (each change used to add a
// timer chain of its own).
func TestMaintenanceTimerDoesNotMultiply(t *testing.T) {
	w := newPastWorld(t, 8, 20)
	p := w.apps[4]
	for range 10 {
		w.nw.RunOn(4, func() { p.Update(id.Handle{}, true) })
		w.nw.RunFor(5 * time.Second)
	}
	before := p.rounds
	w.nw.RunFor(5 * time.Minute)
	if got := p.rounds - before; got > 6 || got < 4 {
		t.Fatalf("%d maintenance rounds in 5 quiet minutes, want one a minute", got)
	}
}

// A fetch from a node outside the replica's leaf set is refused: it would
// make the replica send a record to an address the sender chose.
func TestFetchFromStrangerRefused(t *testing.T) {
	w := newPastWorld(t, 9, 60)
	rec := w.record("reflect", 1, "big value")
	if _, err := w.put(1, rec); err != nil {
		t.Fatal(err)
	}
	holder := w.holders(rec.Key())[0]
	stranger := -1
	for i := range 60 {
		if i != holder && !w.apps[holder].ep.State().Leaves.Contains(w.nw.Node(i).Self().ID) {
			stranger = i
			break
		}
	}
	if stranger < 0 {
		t.Skip("every node is in the holder's leaf set")
	}
	victim := w.nw.Node((stranger + 1) % 60).Self()
	b, err := (&pmsg{kind: kindFetch, req: 7, key: rec.Key(), origin: victim}).encode()
	if err != nil {
		t.Fatal(err)
	}
	before := w.apps[holder].Stats().Refused
	w.nw.RunOn(stranger, func() { _ = w.apps[stranger].ep.Send(w.nw.Node(holder).Self(), b) })
	w.nw.RunFor(time.Second)
	if got := w.apps[holder].Stats().Refused - before; got != 1 {
		t.Fatalf("fetch from a stranger: refused %d, want 1", got)
	}
}
