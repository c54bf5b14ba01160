package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/transport"
)

// BenchmarkScribe200 measures Scribe over libp2p on loopback, as a
// devnet runs it: PASTRY_BENCH_NODES nodes (default 200) join one by one;
// half of them subscribe to a topic; 4 publish 250 messages each, one
// every 10 ms in turn. It reports publish-to-delivery latency (p50, p99),
// the delivered fraction, and the messages and bytes the nodes sent per
// delivered message while publishing (the multicast's direct sends and
// routed publishes with their acknowledgements; background maintenance
// of the same types is included and small).
func BenchmarkScribe200(b *testing.B) {
	size := benchNodes(b)
	const (
		publishers = 4
		perPub     = 250
		gap        = 10 * time.Millisecond
		topic      = "bench"
	)
	r := rand.New(rand.NewPCG(200, 23))
	start := time.Now()
	nodes, stop := joinNodes(b, r, size)
	defer stop()
	b.Logf("%d nodes joined in %v", size, time.Since(start).Round(time.Millisecond))
	time.Sleep(5 * time.Second)

	perm := r.Perm(size)
	subs := perm[:size/2]
	pubs := perm[size/2 : size/2+publishers]
	epoch := time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	delivered := 0
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, i := range subs {
		s, err := nodes[i].Subscribe(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range s.C {
				if len(m.Data) < 8 {
					continue
				}
				at := time.Duration(binary.BigEndian.Uint64(m.Data))
				mu.Lock()
				lat = append(lat, time.Since(epoch)-at)
				delivered++
				mu.Unlock()
			}
		}()
		defer s.Close()
	}
	time.Sleep(2 * time.Second) // the subscriptions' acks
	before := sentTotals(b, nodes)
	b.ResetTimer()
	for k := range perPub * publishers {
		p := pubs[k%publishers]
		data := binary.BigEndian.AppendUint64(make([]byte, 0, 64), uint64(time.Since(epoch)))
		data = append(data, make([]byte, 56)...)
		if err := nodes[p].Publish(context.Background(), topic, data); err != nil {
			b.Fatal(err)
		}
		time.Sleep(gap)
	}
	want := perPub * publishers * len(subs)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		d := delivered
		mu.Unlock()
		if d >= want {
			break
		}
	}
	b.StopTimer()
	after := sentTotals(b, nodes)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("nothing delivered")
	}
	msgs, bytes := after.msgs-before.msgs, after.bytes-before.bytes
	b.ReportMetric(float64(pctD(lat, 0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pctD(lat, 0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(delivered)/float64(want), "delivered")
	b.ReportMetric(float64(msgs)/float64(delivered), "msgs/delivery")
	b.ReportMetric(float64(bytes)/float64(delivered), "bytes/delivery")
	var st pastry.Stats
	eachStats(b, nodes, func(s pastry.Stats) {
		st.Multicast.Duplicates += s.Multicast.Duplicates
		st.Multicast.Repairs += s.Multicast.Repairs
		st.Tree.MaxDepth = max(st.Tree.MaxDepth, s.Tree.MaxDepth)
		st.Tree.Children = max(st.Tree.Children, s.Tree.Children)
	})
	tree := fmt.Sprintf("max depth %d, max children %d, duplicates %d, repairs %d",
		st.Tree.MaxDepth, st.Tree.Children, st.Multicast.Duplicates, st.Multicast.Repairs)
	b.Logf("%d nodes, %d subscribers, %d publishers x %d messages: delivered %d of %d; p50 %v p99 %v; %.2f msgs and %.0f bytes per delivery; %s",
		size, len(subs), publishers, perPub, delivered, want, pctD(lat, 0.5), pctD(lat, 0.99), float64(msgs)/float64(delivered), float64(bytes)/float64(delivered), tree)
}

type sent struct{ msgs, bytes uint64 }

// sentTotals sums what the nodes sent of the multicast's message types:
// direct sends, routed messages and acknowledgements.
func sentTotals(tb testing.TB, nodes []*pastry.Node) sent {
	var t sent
	eachStats(tb, nodes, func(s pastry.Stats) {
		for _, ty := range []core.MsgType{core.MsgDirect, core.MsgRoute, core.MsgRouteAck} {
			t.msgs += s.Transport.SentMsgs[ty]
			t.bytes += s.Transport.SentBytes[ty]
		}
	})
	return t
}

func pctD(d []time.Duration, q float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*q))]
}

// benchNodes is PASTRY_BENCH_NODES, default 200.
func benchNodes(b *testing.B) int {
	v := os.Getenv("PASTRY_BENCH_NODES")
	if v == "" {
		return 200
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 {
		b.Fatalf("PASTRY_BENCH_NODES=%q: want a number >= 8", v)
	}
	return n
}

// joinNodes starts size nodes on loopback hosts, each joining through a
// random node already joined; stop closes them.
func joinNodes(b *testing.B, r *rand.Rand, size int) (nodes []*pastry.Node, stop func()) {
	var hosts []host.Host
	stop = func() {
		for _, n := range nodes {
			n.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, h := range hosts {
			transport.CloseHost(ctx, h)
		}
	}
	for i := range size {
		h := newHost(b, r)
		hosts = append(hosts, h)
		n, err := pastry.New(h)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		var boot []peer.AddrInfo
		if i > 0 {
			j := r.IntN(i)
			boot = []peer.AddrInfo{{ID: hosts[j].ID(), Addrs: hosts[j].Addrs()}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = n.Join(ctx, boot...)
		cancel()
		if err != nil {
			stop()
			b.Fatalf("join %d: %v", i, err)
		}
	}
	return nodes, stop
}
