package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// BenchmarkRouteOneHop measures one-hop routed latency between two libp2p
// nodes: the runtime's per-hop cost on a hot path, to set beside the floor.
func BenchmarkRouteOneHop(b *testing.B) {
	oneHop(b, func(r *rand.Rand) *pastry.Node {
		h := newHost(b, r)
		b.Cleanup(func() { h.Close() })
		n, err := pastry.New(h)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

// BenchmarkRouteOneHopMem is BenchmarkRouteOneHop over the in-memory hub:
// the event loop and core alone.
func BenchmarkRouteOneHopMem(b *testing.B) {
	hub := transport.NewHub()
	b.Cleanup(hub.Close)
	oneHop(b, func(r *rand.Rand) *pastry.Node {
		k, _ := secure.GenerateKey(seeded{r})
		p, _ := peer.IDFromPrivateKey(k)
		self, _ := secure.HandleFromPeer(p)
		n, err := pastry.NewWithTransport(self, func(h transport.Handler) (transport.Transport, error) { return hub.Attach(self, h) })
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

// oneHop joins two nodes made by mk and routes keys rooted at the second
// from the first, one at a time, reporting one-way latency.
func oneHop(b *testing.B, mk func(*rand.Rand) *pastry.Node) {
	r := rand.New(rand.NewPCG(2, 2))
	var mu sync.Mutex
	var lat []time.Duration
	var hops []int
	var got atomic.Int64
	epoch := time.Now()
	app := probeApp{epoch: epoch, mu: &mu, lat: &lat, hops: &hops, got: &got, signal: make(chan struct{}, 1)}
	var ns []*pastry.Node
	for i := range 2 {
		n := mk(r)
		b.Cleanup(func() { n.Close() })
		if _, err := n.RegisterApplication(probeAppID, app); err != nil {
			b.Fatal(err)
		}
		var boot []peer.AddrInfo
		if i > 0 {
			boot = []peer.AddrInfo{{ID: peer.ID(ns[0].Self().Addr)}}
			if inf := ns[0].Info(); len(inf.Addrs) > 0 {
				boot[0].Addrs = inf.Addrs
			}
		}
		if err := n.Join(context.Background(), boot...); err != nil {
			b.Fatal(err)
		}
		ns = append(ns, n)
	}
	time.Sleep(300 * time.Millisecond)
	var keys []id.ID
	for len(keys) < max(b.N, 200) {
		if k := id.Random(r); id.Closer(k, ns[1].ID(), ns[0].ID()) {
			keys = append(keys, k)
		}
	}
	b.ResetTimer()
	for _, k := range keys {
		p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
		if err := ns[0].Route(context.Background(), k, probeAppID, p); err != nil {
			b.Fatal(err)
		}
		<-app.signal
	}
	b.StopTimer()
	b.ReportMetric(float64(pct(lat, 0.5).Nanoseconds())/1e3, "p50_us")
	b.ReportMetric(float64(pct(lat, 0.99).Nanoseconds())/1e3, "p99_us")
}
