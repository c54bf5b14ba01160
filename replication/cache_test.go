package replication

import (
	"fmt"
	"testing"

	"github.com/pastrynet/pastry/id"
)

func cachingWorld(t *testing.T, seed uint64, n int) *pastWorld {
	return newPastWorldWith(t, seed, n, func(int, id.ID) (Options, PastOptions) { return Options{}, PastOptions{CacheBytes: 64 << 10} })
}

// Reads of an immutable object leave copies on their routes, and later
// reads through those nodes are answered from the caches in fewer hops;
// every answer is the object.
func TestCachingAlongRoutes(t *testing.T) {
	w := cachingWorld(t, 31, 100)
	obj := NewImmutable([]byte("popular object"))
	if _, err := w.put(0, obj); err != nil {
		t.Fatal(err)
	}
	var cached, rootHops, cacheHops, roots int
	for round := range 3 {
		for i := range 100 {
			g, err := w.get(i, obj.Key())
			if err != nil || g.Record == nil || !g.Record.Equal(obj) {
				t.Fatalf("round %d get from %d: %+v %v", round, i, g, err)
			}
			if g.Cached {
				cached++
				cacheHops += g.Hops
			} else {
				roots++
				rootHops += g.Hops
			}
		}
	}
	var hits, stored uint64
	for _, p := range w.apps {
		hits += p.Stats().CacheHits
		stored += p.Stats().CacheStored
	}
	if cached == 0 || hits != uint64(cached) || stored == 0 {
		t.Fatalf("%d reads answered from caches, %d hits counted, %d copies cached", cached, hits, stored)
	}
	if float64(cacheHops)/float64(cached) >= float64(rootHops)/float64(roots) {
		t.Fatalf("cache hits took %d hops for %d reads, root reads %d for %d", cacheHops, cached, rootHops, roots)
	}
	t.Logf("%d of 300 reads from caches, %.2f hops against %.2f", cached, float64(cacheHops)/float64(cached), float64(rootHops)/float64(roots))
}

// A cached mutable record answers only a read that accepts stale data: a
// plain read is a quorum read and returns the newest version, a stale-ok
// read may return the cached older one.
func TestCachedMutableOnlyWhenStaleOK(t *testing.T) {
	w := cachingWorld(t, 32, 100)
	v1 := w.record("m", 1, "one")
	if _, err := w.put(0, v1); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := w.get(i, v1.Key()); err != nil {
			t.Fatal(err)
		}
	}
	v2 := w.record("m", 2, "two")
	if _, err := w.putWith(0, v2, WriteOptions{W: 5}); err != nil {
		t.Fatal(err)
	}
	staleHits := 0
	for i := range 100 {
		g, err := w.get(i, v1.Key())
		if err != nil || g.Cached || g.Record == nil || !g.Record.Equal(v2) {
			t.Fatalf("plain read from %d: cached %v, %v, %v; want v2 by quorum", i, g.Cached, g.Record, err)
		}
		g, err = w.getWith(i, v1.Key(), ReadOptions{Stale: true})
		if err != nil || g.Record == nil || g.Record.Version > 2 {
			t.Fatalf("stale read from %d: %+v %v", i, g, err)
		}
		if g.Cached {
			staleHits++
		}
	}
	if staleHits == 0 {
		t.Fatal("no stale-ok read was answered from a cache")
	}
}

// Bad cached answers are refused: a record that is not the key's, or a
// mutable record for a read that did not accept stale data, does not end
// the read.
func TestBadCachedAnswerRefused(t *testing.T) {
	w := cachingWorld(t, 33, 30)
	obj := NewImmutable([]byte("the object"))
	other, _ := NewImmutable([]byte("another object")).Marshal()
	mut, _ := w.record("x", 1, "v").Marshal()
	p := w.apps[4]
	for _, tc := range []struct {
		name string
		enc  []byte
	}{{"another key's object", other}, {"a mutable record, no stale reads", mut}, {"garbage", []byte{1, 2, 3}}} {
		ended := false
		w.nw.RunOn(4, func() {
			if err := p.Get(obj.Key(), func(GetResult, error) { ended = true }); err != nil {
				t.Fatal(err)
			}
			var req uint64
			for r, op := range p.gets {
				if op.key == obj.Key() {
					req = r
				}
			}
			before := p.Stats().Refused
			p.onCached(&pmsg{kind: kindCached, req: req, key: obj.Key(), record: tc.enc})
			if ended || p.Stats().Refused != before+1 {
				t.Fatalf("%s: ended %v, refused %d -> %d", tc.name, ended, before, p.Stats().Refused)
			}
		})
		for i := 0; i < 30 && !ended; i++ {
			w.nw.RunFor(500e6)
		}
	}
	// Options out of range are refused at once.
	w.nw.RunOn(4, func() {
		if err := p.GetWith(obj.Key(), ReadOptions{R: 6}, nil); err == nil {
			t.Error("R beyond K accepted")
		}
		if err := p.PutWith(obj, WriteOptions{K: 3, W: 4}, nil); err == nil {
			t.Error("W beyond K accepted")
		}
	})
}

// The cache holds at most its bytes, dropping the least recently used.
func TestRouteCacheBounded(t *testing.T) {
	c := newRouteCache(1000)
	var keys []id.ID
	for i := range 20 {
		r := NewImmutable([]byte(fmt.Sprintf("object %02d %s", i, string(make([]byte, 100)))))
		enc, _ := r.Marshal()
		c.put(r.Key(), r, enc)
		keys = append(keys, r.Key())
		c.get(keys[0]) // keep the first one in use
		if c.used > 1000 {
			t.Fatalf("cache holds %d bytes", c.used)
		}
	}
	if c.get(keys[0]) == nil || c.get(keys[1]) != nil {
		t.Fatal("not least recently used first out")
	}
	big := NewImmutable(make([]byte, 400))
	enc, _ := big.Marshal()
	if c.put(big.Key(), big, enc) {
		t.Fatal("a record over a quarter of the cache was cached")
	}
}
