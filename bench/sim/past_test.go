package sim

import "testing"

// A small storage run with diversion: every insert is counted in one
// utilisation bucket, and replicas on nodes short of space are diverted.
func TestPastStorageSmall(t *testing.T) {
	res, err := Run(Config{Nodes: 30, Lookups: 10, Seed: 3, Past: "storage", PastDivert: true, PastCapacity: 32 << 10, PastObjects: 100, PastSizeMedian: 600, PastSizeSigma: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Past
	total := 0
	for _, b := range p.Buckets {
		total += b.Inserts
	}
	if p.K != 5 || p.Inserts == 0 || total != p.Inserts || p.Diverted == 0 || p.Utilisation < 0.2 || p.Utilisation > 1 {
		t.Fatalf("%+v", p)
	}
	t.Logf("%d inserts, %d failed, %d diverted, utilisation %.3f, first failure at %.3f", p.Inserts, p.Failed, p.Diverted, p.Utilisation, p.FirstFailAt)
}

// A small caching run: popular objects are served from caches in fewer
// hops than from their roots.
func TestPastCachingSmall(t *testing.T) {
	res, err := Run(Config{Nodes: 60, Lookups: 10, Seed: 4, Past: "caching", PastObjects: 30, PastReads: 300, PastZipf: []float64{1.2}, PastSizeMedian: 500, PastSizeSigma: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Past.Caching[0]
	if c.Reads != 300 || c.Failed != 0 || c.HitRate <= 0 || c.CacheHits == 0 || c.MeanHops >= c.MissHops {
		t.Fatalf("%+v", c)
	}
	t.Logf("hit rate %.3f, hops %.2f, %.2f from roots", c.HitRate, c.MeanHops, c.MissHops)
}

func TestPastConfigRefused(t *testing.T) {
	for _, c := range []Config{
		{Nodes: 10, Past: "both"},
		{Nodes: 10, Past: "storage", Fail: 0.1},
		{Nodes: 10, Past: "storage", PastSizeSigma: -1},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// Two lying replicas of five: no read returns a forged or a stale
// record after a write with W=3.
func TestPastByzantineSmall(t *testing.T) {
	res, err := Run(Config{Nodes: 60, Lookups: 10, Seed: 5, Past: "byzantine", PastObjects: 12, PastReads: 150})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Past.Byzantine {
		if b.Objects != 4 || b.Liars != 2 || b.Newest != b.Reads || b.Reads == 0 {
			t.Fatalf("%+v", b)
		}
	}
}

// 10% of the nodes crash at once: nothing is lost, and every object is on
// its K closest live nodes again after repair.
func TestPastCrashSmall(t *testing.T) {
	res, err := Run(Config{Nodes: 200, Lookups: 10, Seed: 6, Past: "crash", PastObjects: 60, Fail: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Past
	if p.Crashed != 20 || p.Lost != 0 || p.NotRepaired != 0 || p.Pushed == 0 {
		t.Fatalf("%+v", p)
	}
}
