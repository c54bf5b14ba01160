package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
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
	size := benchNodes(b)
	const ops = 500
	r := rand.New(rand.NewPCG(200, 22))
	nodes, stop := joinNodes(b, r, size)
	defer stop()
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
