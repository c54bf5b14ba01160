package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/secure"
)

// PAST's experiments in the simulator: the same replication.Past the
// daemon runs, on every node of the overlay, over in-memory stores.
//
//   - storage: PAST's storage experiment (Rowstron & Druschel, SOSP 2001,
//     section 5): nodes with capacities from a truncated normal
//     distribution (the paper's d1 shape: sd 0.4 of the mean, cut at
//     0.074 and 1.89 of it), objects with lognormal sizes (median 1,312
//     bytes, sigma 2.04: the paper's web-proxy trace's median and mean of
//     10.5 KB), inserted one at a time with W = K (every replica must
//     store, as in PAST) until the store is full; the insert failure
//     ratio by global utilisation, with replica and file diversion
//     (PastDivert) or without.
//   - caching: immutable objects read from random nodes with Zipf
//     popularity, for each alpha; the fraction served from caches along
//     the routes, and the hops.
//   - byzantine: PastByzantine of each object's K replicas lie (a Store
//     that answers reads with a forged record, the previous version, or
//     nothing, by object in turn, and drops writes while signing
//     receipts); after a write with W = ceil((K+1)/2), reads from random
//     nodes: how many return the record written, an older one, a forged
//     one (none may), or nothing.
//   - crash: objects written, then Fail (default 10%) of the nodes crash
//     at once; after RepairTime, objects with no live copy, and objects
//     not held by exactly their K closest live nodes.

// PastResult is PAST's experiments' figures.
type PastResult struct {
	Experiment string `json:"experiment"`
	K          int    `json:"k"`
	// Storage experiment.
	Divert       bool           `json:"divert,omitempty"`
	MeanCapacity int64          `json:"mean_capacity_bytes,omitempty"`
	Capacity     int64          `json:"capacity_bytes,omitempty"` // sum over the nodes
	Inserts      int            `json:"inserts,omitempty"`
	Failed       int            `json:"failed,omitempty"`
	FileDiverted int            `json:"file_diverted,omitempty"` // inserts that succeeded on a retry with another salt
	Diverted     uint64         `json:"replicas_diverted,omitempty"`
	Utilisation  float64        `json:"utilisation,omitempty"` // at the end
	FirstFailAt  float64        `json:"first_failure_utilisation,omitempty"`
	Buckets      []PastUtBucket `json:"buckets,omitempty"`
	// Crash experiment.
	Crashed     int     `json:"crashed,omitempty"`
	Lost        int     `json:"lost,omitempty"`
	NotRepaired int     `json:"not_repaired,omitempty"` // not held by exactly the K closest live nodes
	RepairS     float64 `json:"repair_s,omitempty"`
	Pushed      uint64  `json:"pushed,omitempty"`    // copies pushed by anti-entropy during repair
	Summaries   uint64  `json:"summaries,omitempty"` // range summaries sent during repair
	// Byzantine experiment, by what the lying replicas do.
	Byzantine []PastByzRun `json:"byzantine,omitempty"`
	// Caching experiment.
	Objects    int            `json:"objects,omitempty"`
	CacheBytes int64          `json:"cache_bytes,omitempty"`
	Caching    []PastCacheRun `json:"caching,omitempty"`
}

// PastUtBucket is the inserts tried while the global utilisation was in
// [From, To).
type PastUtBucket struct {
	From, To     float64
	Inserts      int     `json:"inserts"`
	Failed       int     `json:"failed"`
	FailureRatio float64 `json:"failure_ratio"`
}

// PastCacheRun is one Zipf parameter's reads.
type PastCacheRun struct {
	Alpha     float64 `json:"alpha"`
	Reads     int     `json:"reads"`
	Failed    int     `json:"failed"`
	HitRate   float64 `json:"hit_rate"`
	MeanHops  float64 `json:"mean_hops"`
	MissHops  float64 `json:"mean_hops_misses"` // reads the key's root answered
	CacheHits uint64  `json:"cache_hits"`
}

// PastByzRun is the reads of the objects whose lying replicas did one
// thing.
type PastByzRun struct {
	Mode    string `json:"mode"` // forge, stale or withhold
	Objects int    `json:"objects"`
	Liars   int    `json:"liars"` // of each object's K replicas
	Reads   int    `json:"reads"`
	Newest  int    `json:"newest"` // returned the version written last
	Stale   int    `json:"stale"`
	Forged  int    `json:"forged"`
	Failed  int    `json:"failed"` // an error or nothing found
}

// byzStore is a lying replica's store: for the keys in lie it answers
// reads with the record there (nil: nothing) and drops writes, claiming
// to store them.
type byzStore struct {
	replication.Store
	lie map[id.ID]*replication.Record
}

func (s *byzStore) Get(key id.ID) (*replication.Record, bool, error) {
	if r, ok := s.lie[key]; ok {
		if r == nil {
			return nil, false, nil
		}
		return r.Clone(), true, nil
	}
	return s.Store.Get(key)
}

func (s *byzStore) Put(now int64, rec *replication.Record) (bool, error) {
	if _, ok := s.lie[rec.Key()]; ok {
		return true, nil
	}
	return s.Store.Put(now, rec)
}

type pastRun struct {
	r      *run
	byz    []*byzStore
	apps   []*replication.Past
	stores []*replication.MemStore
	owner  crypto.PrivKey
	rng    *rand.Rand
}

const pastEpoch = 1_800_000_000

func (r *run) past() error {
	c := r.cfg
	pr := &pastRun{r: r, rng: rand.New(rand.NewPCG(c.Seed, 0x9a57))}
	var err error
	if pr.owner, err = secure.GenerateKey(seededReader{pr.rng}); err != nil {
		return err
	}
	res := &PastResult{Experiment: c.Past}
	r.res.Past = res
	n := len(r.nw.Nodes())
	caps := make([]int64, n)
	for i := range caps {
		if c.Past == "storage" {
			caps[i] = truncNormal(pr.rng, float64(c.PastCapacity))
			res.Capacity += caps[i]
		}
	}
	for i := range n {
		if !r.nw.Node(i).Alive() {
			pr.apps, pr.stores = append(pr.apps, nil), append(pr.stores, nil)
			continue
		}
		st, err := replication.NewMemStore(replication.Options{Capacity: caps[i], TrustSignatures: true})
		if err != nil {
			return err
		}
		po := replication.PastOptions{Epoch: pastEpoch, NoDivert: !c.PastDivert}
		if c.Past == "storage" {
			// No anti-entropy while filling, as in the paper's experiment
			// (no failures): the copies of a failed insert that were
			// stored stay, and count in the utilisation, but are not
			// spread further.
			po.Maintain = 24 * time.Hour
		}
		if c.Past == "caching" {
			po.CacheBytes = c.PastCache
		}
		var store replication.Store = st
		if c.Past == "byzantine" {
			bs := &byzStore{Store: st, lie: map[id.ID]*replication.Record{}}
			pr.byz = append(pr.byz, bs)
			store = bs
		}
		p, err := replication.RegisterPast(r.nw.Node(i).Machine, store, po)
		if err != nil {
			return err
		}
		r.nw.RunOn(i, p.Start)
		pr.apps, pr.stores = append(pr.apps, p), append(pr.stores, st)
		res.K = p.Options().K
	}
	if c.Past == "storage" {
		res.Divert, res.MeanCapacity = c.PastDivert, c.PastCapacity
		return pr.storage(res)
	}
	if c.Past == "byzantine" {
		return pr.byzantine(res)
	}
	if c.Past == "crash" {
		return pr.crash(res)
	}
	res.CacheBytes = c.PastCache
	return pr.caching(res)
}

// closest returns the indexes of the k live nodes closest to key.
func (pr *pastRun) closest(key id.ID, k int) []int {
	live := pr.r.nw.Live()
	slices.SortFunc(live, func(a, b id.ID) int {
		return key.U128().RingDistance(a.U128()).Cmp(key.U128().RingDistance(b.U128()))
	})
	var out []int
	for _, x := range live[:min(k, len(live))] {
		h, _ := pr.r.nw.Lookup(x)
		out = append(out, h.Index)
	}
	return out
}

func (pr *pastRun) byzantine(res *PastResult) error {
	c := pr.r.cfg
	modes := []string{"forge", "stale", "withhold"}
	type object struct {
		mode   int
		v1, v2 *replication.Record
	}
	var objs []object
	for k := range c.PastObjects {
		pr.r.progress("past byzantine writes", k, c.PastObjects)
		name := fmt.Appendf(nil, "byz-%d", k)
		v1, err := replication.Sign(pr.owner, name, []byte("first"), 1, 0)
		if err != nil {
			return err
		}
		if err := pr.put(pr.r.randomLive(), v1, replication.WriteOptions{W: res.K}); err != nil {
			return fmt.Errorf("past byzantine: write %d: %w", k, err)
		}
		o := object{mode: k % len(modes), v1: v1}
		// The liars: the PastByzantine closest, the key's root first (the
		// worst case: the root coordinates the reads).
		liars := pr.closest(v1.Key(), res.K)[:c.PastByzantine]
		var bad *replication.Record
		switch modes[o.mode] {
		case "forge":
			if bad, err = replication.Sign(pr.owner, name, []byte("forged"), 3, 0); err != nil {
				return err
			}
			bad.Value = []byte("FORGED") // the signature no longer matches
		case "stale":
			bad = v1
		}
		for _, i := range liars {
			pr.byz[i].lie[v1.Key()] = bad
		}
		if o.v2, err = replication.Sign(pr.owner, name, []byte("second"), 2, 0); err != nil {
			return err
		}
		if err := pr.put(pr.r.randomLive(), o.v2, replication.WriteOptions{}); err != nil {
			return fmt.Errorf("past byzantine: second write %d: %w", k, err)
		}
		objs = append(objs, o)
	}
	runs := make([]PastByzRun, len(modes))
	for m := range runs {
		runs[m] = PastByzRun{Mode: modes[m], Liars: c.PastByzantine}
	}
	for _, o := range objs {
		runs[o.mode].Objects++
	}
	for q := range c.PastReads {
		pr.r.progress("past byzantine reads", q, c.PastReads)
		o := objs[pr.rng.IntN(len(objs))]
		i := pr.r.randomLive()
		done := false
		var g replication.GetResult
		var rerr, err error
		pr.r.nw.RunOn(i, func() {
			err = pr.apps[i].Get(o.v2.Key(), func(x replication.GetResult, e error) { g, rerr, done = x, e, true })
		})
		if err == nil {
			pr.wait(&done, 30*time.Second)
		}
		b := &runs[o.mode]
		b.Reads++
		switch {
		case err != nil || !done || rerr != nil || g.Record == nil:
			b.Failed++
		case g.Record.Equal(o.v2):
			b.Newest++
		case g.Record.Version < 2:
			b.Stale++
		default:
			b.Forged++
		}
	}
	res.Objects = c.PastObjects
	res.Byzantine = runs
	return nil
}

type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(s.r.Uint32())
	}
	return len(b), nil
}

// truncNormal draws a capacity: normal with sd 0.4 mean, within [0.074,
// 1.89] of the mean (the paper's d1: 27 MB, sd 10.8, 2 to 51 MB).
func truncNormal(r *rand.Rand, mean float64) int64 {
	for {
		x := mean + 0.4*mean*r.NormFloat64()
		if x >= 0.074*mean && x <= 1.89*mean {
			return int64(x)
		}
	}
}

// objectSize draws a lognormal size below max.
func (pr *pastRun) objectSize(max int) int {
	c := pr.r.cfg
	for {
		x := math.Exp(math.Log(float64(c.PastSizeMedian)) + c.PastSizeSigma*pr.rng.NormFloat64())
		if x <= float64(max) {
			return int(x)
		}
	}
}

// wait runs the simulation until *done or limit.
func (pr *pastRun) wait(done *bool, limit time.Duration) {
	for t := time.Duration(0); !*done && t < limit; t += 50 * time.Millisecond {
		pr.r.nw.RunFor(50 * time.Millisecond)
	}
}

func (pr *pastRun) put(i int, rec *replication.Record, o replication.WriteOptions) error {
	done := false
	var rerr error
	var err error
	pr.r.nw.RunOn(i, func() {
		err = pr.apps[i].PutWith(rec, o, func(_ replication.PutResult, e error) { rerr, done = e, true })
	})
	if err != nil {
		return err
	}
	pr.wait(&done, 30*time.Second)
	if !done {
		return replication.ErrTimeout
	}
	return rerr
}

func (pr *pastRun) utilisation(capacity int64) float64 {
	var used int64
	for _, st := range pr.stores {
		if st != nil {
			u, _ := st.Space()
			used += u
		}
	}
	return float64(used) / float64(capacity)
}

var utEdges = []float64{0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.01}

func (pr *pastRun) storage(res *PastResult) error {
	c := pr.r.cfg
	for i := range len(utEdges) - 1 {
		res.Buckets = append(res.Buckets, PastUtBucket{From: utEdges[i], To: utEdges[i+1]})
	}
	maxValue := replication.DefaultLimits().MaxValue
	failsInRow := 0
	for k := 0; k < c.PastObjects && failsInRow < 50; k++ {
		pr.r.progress("past storage", k, c.PastObjects)
		ut := pr.utilisation(res.Capacity)
		if ut >= 0.995 {
			break
		}
		size := pr.objectSize(maxValue)
		value := make([]byte, size)
		from := pr.r.randomLive()
		var err error
		tries := 1
		if c.PastDivert {
			tries = 4 // file diversion: 3 retries with another salt
		}
		for t := 0; t < tries; t++ {
			rec, serr := replication.Sign(pr.owner, fmt.Appendf(nil, "object-%d#%d", k, t), value, 1, 0)
			if serr != nil {
				return serr
			}
			if err = pr.put(from, rec, replication.WriteOptions{W: res.K}); err == nil {
				if t > 0 {
					res.FileDiverted++
				}
				break
			}
			if !errors.Is(err, replication.ErrCapacity) && !errors.Is(err, replication.ErrQuorum) {
				break
			}
		}
		res.Inserts++
		b := slices.IndexFunc(res.Buckets, func(b PastUtBucket) bool { return ut >= b.From && ut < b.To })
		res.Buckets[b].Inserts++
		if err != nil {
			res.Failed++
			res.Buckets[b].Failed++
			failsInRow++
			if res.FirstFailAt == 0 {
				res.FirstFailAt = ut
			}
		} else {
			failsInRow = 0
		}
	}
	res.Utilisation = pr.utilisation(res.Capacity)
	for i := range res.Buckets {
		if b := &res.Buckets[i]; b.Inserts > 0 {
			b.FailureRatio = float64(b.Failed) / float64(b.Inserts)
		}
	}
	for _, p := range pr.apps {
		if p != nil {
			res.Diverted += p.Stats().Diverted
		}
	}
	return nil
}

// zipf draws ranks 0..n-1 with P(rank i) proportional to 1/(i+1)^alpha.
type zipf struct{ cdf []float64 }

func newZipf(n int, alpha float64) *zipf {
	z := &zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), alpha)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

func (z *zipf) draw(r *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, r.Float64())
	return min(i, len(z.cdf)-1)
}

func (pr *pastRun) caching(res *PastResult) error {
	c := pr.r.cfg
	res.Objects = c.PastObjects
	keys := make([]id.ID, 0, c.PastObjects)
	for k := range c.PastObjects {
		pr.r.progress("past objects", k, c.PastObjects)
		value := make([]byte, pr.objectSize(64<<10))
		value = fmt.Appendf(value[:0], "object %d ", k)
		value = value[:cap(value)]
		rec := replication.NewImmutable(value)
		if err := pr.put(pr.r.randomLive(), rec, replication.WriteOptions{}); err != nil {
			return fmt.Errorf("past caching: insert %d: %w", k, err)
		}
		keys = append(keys, rec.Key())
	}
	for _, alpha := range c.PastZipf {
		for _, p := range pr.apps {
			if p != nil {
				p.DropCache()
			}
		}
		hits0 := pr.cacheHits()
		z := newZipf(len(keys), alpha)
		run := PastCacheRun{Alpha: alpha}
		var hops, missHops, misses int
		for q := range c.PastReads {
			pr.r.progress(fmt.Sprintf("past reads a=%.2f", alpha), q, c.PastReads)
			key := keys[z.draw(pr.rng)]
			i := pr.r.randomLive()
			done := false
			var res replication.GetResult
			var rerr, err error
			pr.r.nw.RunOn(i, func() {
				err = pr.apps[i].Get(key, func(g replication.GetResult, e error) { res, rerr, done = g, e, true })
			})
			if err == nil {
				pr.wait(&done, 30*time.Second)
			}
			run.Reads++
			if err != nil || !done || rerr != nil || res.Record == nil {
				run.Failed++
				continue
			}
			hops += res.Hops
			if res.Cached {
				run.HitRate++
			} else {
				missHops += res.Hops
				misses++
			}
		}
		ok := run.Reads - run.Failed
		if ok > 0 {
			run.HitRate /= float64(ok)
			run.MeanHops = float64(hops) / float64(ok)
		}
		if misses > 0 {
			run.MissHops = float64(missHops) / float64(misses)
		}
		run.CacheHits = pr.cacheHits() - hits0
		res.Caching = append(res.Caching, run)
	}
	return nil
}

func (pr *pastRun) cacheHits() uint64 {
	var n uint64
	for _, p := range pr.apps {
		if p != nil {
			n += p.Stats().CacheHits
		}
	}
	return n
}

func (pr *pastRun) sums() (pushed, summaries uint64) {
	for i, p := range pr.apps {
		if p != nil && pr.r.nw.Node(i).Alive() {
			s := p.Stats()
			pushed += s.Pushed
			summaries += s.SyncRounds
		}
	}
	return pushed, summaries
}

func (pr *pastRun) crash(res *PastResult) error {
	c := pr.r.cfg
	var keys []id.ID
	for k := range c.PastObjects {
		pr.r.progress("past crash writes", k, c.PastObjects)
		rec, err := replication.Sign(pr.owner, fmt.Appendf(nil, "crash-%d", k), []byte("value"), 1, 0)
		if err != nil {
			return err
		}
		if err := pr.put(pr.r.randomLive(), rec, replication.WriteOptions{}); err != nil {
			return fmt.Errorf("past crash: write %d: %w", k, err)
		}
		keys = append(keys, rec.Key())
	}
	pr.r.nw.RunFor(time.Minute)
	p0, s0 := pr.sums()
	live := pr.r.nw.Live()
	fail := c.Fail
	if fail == 0 {
		fail = 0.1
	}
	res.Crashed = int(fail * float64(len(live)))
	for _, j := range pr.rng.Perm(len(live))[:res.Crashed] {
		h, _ := pr.r.nw.Lookup(live[j])
		pr.r.nw.Crash(h.Index)
	}
	pr.r.nw.RunFor(c.RepairTime)
	res.RepairS = c.RepairTime.Seconds()
	p1, s1 := pr.sums()
	res.Pushed, res.Summaries = p1-p0, s1-s0
	for _, key := range keys {
		want := pr.closest(key, res.K)
		held := 0
		for i, st := range pr.stores {
			if st == nil || !pr.r.nw.Node(i).Alive() {
				continue
			}
			if _, ok, _ := st.Get(key); ok {
				held++
				if !slices.Contains(want, i) {
					held = -1000 // a copy outside the K closest counts as not repaired
				}
			}
		}
		if held == 0 {
			res.Lost++
		}
		if held != res.K {
			res.NotRepaired++
		}
	}
	res.Objects = c.PastObjects
	return nil
}
