package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// BenchmarkRouteOneHop measures one-hop routed latency between two libp2p
// nodes: the runtime's per-hop cost on a hot path, to set beside the floor.
func BenchmarkRouteOneHop(b *testing.B) {
	t := b
	r := rand.New(rand.NewPCG(2, 2))
	var mu sync.Mutex
	var lat []time.Duration
	var hops []int
	var got atomic.Int64
	epoch := time.Now()
	app := probeApp{epoch: epoch, mu: &mu, lat: &lat, hops: &hops, got: &got, signal: make(chan struct{}, 1)}
	var hs []host.Host
	var ns []*pastry.Node
	for i := range 2 {
		h := newHost(t, r)
		n, _ := pastry.New(h)
		n.RegisterApplication(probeAppID, app)
		var boot []peer.AddrInfo
		if i > 0 {
			boot = []peer.AddrInfo{{ID: hs[0].ID(), Addrs: hs[0].Addrs()}}
		}
		if err := n.Join(context.Background(), boot...); err != nil {
			t.Fatal(err)
		}
		hs, ns = append(hs, h), append(ns, n)
	}
	defer func() {
		for i := range ns {
			ns[i].Close()
			hs[i].Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	// keys rooted at node 1, sent from node 0
	var keys []id.ID
	for len(keys) < max(b.N, 200) {
		k := id.Random(r)
		if id.Closer(k, ns[1].ID(), ns[0].ID()) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
		ns[0].Route(context.Background(), k, probeAppID, p)
		<-app.signal
	}
	b.ReportMetric(float64(pct(lat, 0.5).Nanoseconds())/1e3, "p50_us")
	b.ReportMetric(float64(pct(lat, 0.99).Nanoseconds())/1e3, "p99_us")
}

// BenchmarkRouteOneHopMem is BenchmarkRouteOneHop over the in-memory hub:
// the event loop and core alone.
func BenchmarkRouteOneHopMem(b *testing.B) {
	t := b
	r := rand.New(rand.NewPCG(2, 2))
	var mu sync.Mutex
	var lat []time.Duration
	var hops []int
	var got atomic.Int64
	epoch := time.Now()
	app := probeApp{epoch: epoch, mu: &mu, lat: &lat, hops: &hops, got: &got, signal: make(chan struct{}, 1)}
	hub := transport.NewHub()
	defer hub.Close()
	var ns []*pastry.Node
	for i := range 2 {
		k, _ := secure.GenerateKey(seeded{r})
		p, _ := peer.IDFromPrivateKey(k)
		self, _ := secure.HandleFromPeer(p)
		n, err := pastry.NewWithTransport(self, func(h transport.Handler) (transport.Transport, error) { return hub.Attach(self, h) })
		if err != nil {
			t.Fatal(err)
		}
		n.RegisterApplication(probeAppID, app)
		var boot []peer.AddrInfo
		if i > 0 {
			boot = []peer.AddrInfo{{ID: peer.ID(ns[0].Self().Addr)}}
		}
		if err := n.Join(context.Background(), boot...); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
	}
	defer ns[0].Close()
	defer ns[1].Close()
	time.Sleep(300 * time.Millisecond)
	var keys []id.ID
	for len(keys) < max(b.N, 200) {
		k := id.Random(r)
		if id.Closer(k, ns[1].ID(), ns[0].ID()) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
		ns[0].Route(context.Background(), k, probeAppID, p)
		<-app.signal
	}
	b.ReportMetric(float64(pct(lat, 0.5).Nanoseconds())/1e3, "p50_us")
	b.ReportMetric(float64(pct(lat, 0.99).Nanoseconds())/1e3, "p99_us")
}
