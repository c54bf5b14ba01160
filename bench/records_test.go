package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// BenchmarkRecords200 measures PAST over libp2p on loopback, as a devnet
// runs it: PASTRY_BENCH_NODES nodes (default 200) join one by one; 500
// records of 1 KiB are written (Node.Put: a read for the current version,
// then the write; K=5, W=3) from random nodes one at a time, then each is
// read (Node.GetRecord, R=3) from another random node. It reports put
// and get latency (p50, p99) and the messages the nodes sent per
// operation (routed, direct and acks; background maintenance of those
// types included).
func BenchmarkRecords200(b *testing.B) {
	size := 200
	if v := os.Getenv("PASTRY_BENCH_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 {
			b.Fatalf("PASTRY_BENCH_NODES=%q: want a number >= 8", v)
		}
		size = n
	}
	const ops = 500
	r := rand.New(rand.NewPCG(200, 22))
	var hosts []host.Host
	var nodes []*pastry.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, h := range hosts {
			transport.CloseHost(ctx, h)
		}
	}()
	for i := range size {
		h := newHost(b, r)
		hosts = append(hosts, h)
		n, err := pastry.New(h)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		var boot []peer.AddrInfo
		if i > 0 {
			j := r.IntN(i)
			boot = []peer.AddrInfo{{ID: hosts[j].ID(), Addrs: hosts[j].Addrs()}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := n.Join(ctx, boot...); err != nil {
			b.Fatalf("join %d: %v", i, err)
		}
		cancel()
	}
	time.Sleep(5 * time.Second)
	value := make([]byte, 1024)
	type written struct {
		key  id.ID
		from int
	}
	var keys []written
	var putLat, getLat []time.Duration
	ctx := context.Background()
	before := sentTotals(b, nodes)
	b.ResetTimer()
	for k := range ops {
		from := r.IntN(size)
		start := time.Now()
		res, err := nodes[from].Put(ctx, fmt.Sprintf("rec-%d", k), value, 0)
		if err != nil {
			b.Fatalf("put %d from %d: %v", k, from, err)
		}
		putLat = append(putLat, time.Since(start))
		keys = append(keys, written{res.Key, from})
	}
	mid := sentTotals(b, nodes)
	for _, w := range keys {
		from := r.IntN(size)
		start := time.Now()
		g, err := nodes[from].GetRecord(ctx, w.key)
		if err != nil || len(g.Record.Value) != len(value) {
			b.Fatalf("get %s from %d: %v", w.key.Short(), from, err)
		}
		getLat = append(getLat, time.Since(start))
	}
	b.StopTimer()
	after := sentTotals(b, nodes)
	slices.Sort(putLat)
	slices.Sort(getLat)
	putMsgs := float64(mid.msgs-before.msgs) / ops
	getMsgs := float64(after.msgs-mid.msgs) / ops
	b.ReportMetric(float64(pctD(putLat, 0.5).Microseconds())/1000, "put_p50_ms")
	b.ReportMetric(float64(pctD(putLat, 0.99).Microseconds())/1000, "put_p99_ms")
	b.ReportMetric(float64(pctD(getLat, 0.5).Microseconds())/1000, "get_p50_ms")
	b.ReportMetric(float64(pctD(getLat, 0.99).Microseconds())/1000, "get_p99_ms")
	b.ReportMetric(putMsgs, "msgs/put")
	b.ReportMetric(getMsgs, "msgs/get")
	b.Logf("%d nodes: %d puts p50 %v p99 %v, %.1f msgs each (a read for the version, then the write); %d gets p50 %v p99 %v, %.1f msgs each",
		size, ops, pctD(putLat, 0.5), pctD(putLat, 0.99), putMsgs, ops, pctD(getLat, 0.5), pctD(getLat, 0.99), getMsgs)
}
