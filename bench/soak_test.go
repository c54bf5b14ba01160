package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// soakNode is one member of the soak's overlay.
type soakNode struct {
	h  host.Host
	n  *pastry.Node
	id id.ID
}

// soakCluster is the soak's live membership, read by the traffic and
// changed by the churn.
type soakCluster struct {
	mu    sync.Mutex
	live  []soakNode
	r     *rand.Rand // under mu
	opts  []pastry.Option
	start time.Time
}

// add builds a node on a new loopback host and joins it through a random
// live node.
func (c *soakCluster) add(tb testing.TB) error {
	c.mu.Lock()
	seed := c.r.Uint64()
	var boot []peer.AddrInfo
	if len(c.live) > 0 {
		b := c.live[c.r.IntN(len(c.live))].h
		boot = []peer.AddrInfo{{ID: b.ID(), Addrs: b.Addrs()}}
	}
	c.mu.Unlock()
	h := newHost(tb, rand.New(rand.NewPCG(seed, seed)))
	n, err := pastry.New(h, c.opts...)
	if err != nil {
		closeHosts(tb, h)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Join(ctx, boot...); err != nil {
		n.Close()
		closeHosts(tb, h)
		return err
	}
	c.mu.Lock()
	c.live = append(c.live, soakNode{h: h, n: n, id: n.ID()})
	c.mu.Unlock()
	return nil
}

// removeRandom takes a random node out of the membership, then closes it.
func (c *soakCluster) removeRandom(tb testing.TB) {
	c.mu.Lock()
	i := c.r.IntN(len(c.live))
	v := c.live[i]
	c.live = slices.Delete(c.live, i, i+1)
	c.mu.Unlock()
	v.n.Close()
	closeHosts(tb, v.h)
}

// pick returns a random live node, a random key and the key's root among
// the live nodes (the numerically closest nodeId).
func (c *soakCluster) pick() (soakNode, id.ID, id.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := id.Random(c.r)
	return c.live[c.r.IntN(len(c.live))], key, c.rootLocked(key)
}

func (c *soakCluster) root(key id.ID) id.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rootLocked(key)
}

func (c *soakCluster) rootLocked(key id.ID) id.ID {
	best := c.live[0].id
	for _, v := range c.live[1:] {
		if id.Closer(key, v.id, best) {
			best = v.id
		}
	}
	return best
}

func closeHosts(tb testing.TB, hs ...host.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range hs {
		if err := transport.CloseHost(ctx, h); err != nil {
			tb.Log(err)
		}
	}
}

// soakSample is the process's footprint at one moment.
type soakSample struct {
	at                time.Duration
	nodes             int
	goroutines        int
	heap              uint64 // live heap after a collection
	fds               int
	conns, peerstores int // summed over the live hosts
}

func (c *soakCluster) sample() soakSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := soakSample{at: time.Since(c.start), goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, fds: -1}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(ents)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.nodes = len(c.live)
	for _, v := range c.live {
		s.conns += len(v.h.Network().Conns())
		s.peerstores += len(v.h.Peerstore().Peers())
	}
	return s
}

func (s soakSample) perNode() (goroutines, heapMiB, fds, conns, peerstore float64) {
	n := float64(max(s.nodes, 1))
	return float64(s.goroutines) / n, float64(s.heap) / n / (1 << 20), float64(s.fds) / n, float64(s.conns) / n, float64(s.peerstores) / n
}

// soakEnv reads a duration or count from the environment, or def.
func soakEnv[T time.Duration | int](tb testing.TB, name string, def T) T {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out T
	switch p := any(&out).(type) {
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			tb.Fatalf("%s=%q: want a duration >= 0", name, v)
		}
		*p = d
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			tb.Fatalf("%s=%q: want a count >= 0", name, v)
		}
		*p = n
	}
	return out
}

// BenchmarkSoak runs an overlay under steady lookups and churn for a
// while and reports whether its footprint stays flat and its lookups
// stay correct: a leak per departed peer or per message shows as growth
// between the first and the last sample. It runs once whatever b.N is
// (use -benchtime 1x). Settings: PASTRY_SOAK (duration, default 1m),
// PASTRY_SOAK_NODES (default 32), PASTRY_SOAK_CHURN (the interval
// between replacing a random node with a new one, default 2s; 0: none),
// PASTRY_SOAK_LOOKERS (concurrent lookup loops, default 8) and
// PASTRY_SOAK_PAUSE (each loop's pause between lookups, default 5ms).
//
// A lookup is counted wrong when it ended at a node other than the key's
// root among the live nodes both when it was sent and when it came back
// (a root that changed meanwhile is not judged).
func BenchmarkSoak(b *testing.B) {
	dur := soakEnv(b, "PASTRY_SOAK", time.Minute)
	size := soakEnv(b, "PASTRY_SOAK_NODES", 32)
	churn := soakEnv(b, "PASTRY_SOAK_CHURN", 2*time.Second)
	lookers := soakEnv(b, "PASTRY_SOAK_LOOKERS", 8)
	pause := soakEnv(b, "PASTRY_SOAK_PAUSE", 5*time.Millisecond)
	if size < 4 {
		b.Fatalf("PASTRY_SOAK_NODES=%d: want at least 4", size)
	}
	c := &soakCluster{r: rand.New(rand.NewPCG(7, 7)), opts: benchOpts()}
	defer func() {
		c.mu.Lock()
		live := c.live
		c.live = nil
		c.mu.Unlock()
		for _, v := range live {
			v.n.Close()
		}
		for _, v := range live {
			closeHosts(b, v.h)
		}
	}()
	for range size {
		if err := c.add(b); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // announcements and RTTs settle
	c.start = time.Now()
	first := c.sample()

	var ok, wrong, judgedOut, failed atomic.Int64
	var hops atomic.Int64
	var latMu sync.Mutex
	var lats []time.Duration // of correct lookups, at most maxLats
	const maxLats = 1 << 20
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range lookers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				from, key, want := c.pick()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := from.n.Lookup(ctx, key)
				cancel()
				switch {
				case err != nil:
					failed.Add(1) // the origin may have been closed meanwhile
				case res.Root == want:
					ok.Add(1)
					hops.Add(int64(res.Hops))
					latMu.Lock()
					if len(lats) < maxLats {
						lats = append(lats, res.Latency)
					}
					latMu.Unlock()
				case c.root(key) != want:
					judgedOut.Add(1)
				default:
					wrong.Add(1)
				}
			}
		}()
	}
	var churned, churnErrs int
	var samples []soakSample
	var seenLats int
	every := max(dur/12, 5*time.Second)
	nextSample := time.Now().Add(every)
	var nextChurn <-chan time.Time
	if churn > 0 {
		t := time.NewTicker(churn)
		defer t.Stop()
		nextChurn = t.C
	}
	end := time.After(dur)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-end:
			break loop
		case <-nextChurn:
			c.removeRandom(b)
			if err := c.add(b); err != nil {
				churnErrs++
				fmt.Fprintf(os.Stderr, "soak at %s: replacement join: %v\n", time.Since(c.start).Round(time.Second), err)
				if err := c.add(b); err != nil {
					b.Fatalf("second replacement join: %v", err)
				}
			}
			churned++
		case <-tick.C:
			if time.Now().After(nextSample) {
				s := c.sample()
				samples = append(samples, s)
				g, heap, fds, conns, ps := s.perNode()
				latMu.Lock()
				l := slices.Clone(lats[seenLats:])
				seenLats = len(lats)
				latMu.Unlock()
				// To stderr as it goes: a benchmark's log is cut after a
				// few lines, and only shown at the end.
				fmt.Fprintf(os.Stderr, "soak at %s: %d nodes, per node %.0f goroutines, %.2f MiB heap, %.1f fds, %.1f conns, %.1f peerstore entries; lookups ok %d (since the last sample p50 %s, p99 %s), wrong %d, failed %d, churned %d\n",
					s.at.Round(time.Second), s.nodes, g, heap, fds, conns, ps, ok.Load(), pct(l, 0.5), pct(l, 0.99), wrong.Load(), failed.Load(), churned)
				nextSample = time.Now().Add(every)
			}
		}
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(c.start)
	time.Sleep(3 * time.Second) // in-flight work drains before the last sample
	last := c.sample()
	samples = append(samples, last)
	stats := sumStats(b, func() []*pastry.Node {
		c.mu.Lock()
		defer c.mu.Unlock()
		var ns []*pastry.Node
		for _, v := range c.live {
			ns = append(ns, v.n)
		}
		return ns
	}())
	b.Logf("end (live nodes only): %s", stats)
	g0, h0, f0, c0, p0 := first.perNode()
	g1, h1, f1, c1, p1 := last.perNode()
	// The middle samples: growth that keeps on shows as a rising trend,
	// a warm-up as a step at the start.
	mid := samples[len(samples)/2]
	gm, hm, _, _, _ := mid.perNode()
	b.Logf("per node, first / middle / last sample: goroutines %.0f / %.0f / %.0f, heap %.2f / %.2f / %.2f MiB, fds %.1f -> %.1f, conns %.1f -> %.1f, peerstore %.1f -> %.1f",
		g0, gm, g1, h0, hm, h1, f0, f1, c0, c1, p0, p1)
	if churnErrs > 0 {
		b.Logf("%d replacement joins failed once", churnErrs)
	}
	n := ok.Load() + wrong.Load()
	b.ReportMetric(float64(pct(lats, 0.5).Microseconds()), "lookup_p50_us")
	b.ReportMetric(float64(pct(lats, 0.99).Microseconds()), "lookup_p99_us")
	b.ReportMetric(float64(ok.Load()+wrong.Load()+judgedOut.Load()+failed.Load())/elapsed.Seconds(), "lookups/s")
	b.ReportMetric(float64(wrong.Load()), "wrong_roots")
	b.ReportMetric(float64(failed.Load()), "failed_lookups")
	b.ReportMetric(float64(judgedOut.Load()), "root_changed")
	b.ReportMetric(float64(churned), "churned")
	if ok.Load() > 0 {
		b.ReportMetric(float64(hops.Load())/float64(ok.Load()), "mean_hops")
	}
	b.ReportMetric(g0, "goroutines_first/node")
	b.ReportMetric(g1, "goroutines_last/node")
	b.ReportMetric(h0, "heap_first_MiB/node")
	b.ReportMetric(h1, "heap_last_MiB/node")
	b.ReportMetric(f1-f0, "fds_growth/node")
	b.ReportMetric(p1-p0, "peerstore_growth/node")
	if n > 0 && wrong.Load()*1000 > n {
		b.Errorf("%d of %d judged lookups ended at the wrong root", wrong.Load(), n)
	}
}
