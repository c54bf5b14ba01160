package pastry

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// collectMetrics reads every data point of the reader into name -> attribute
// value ("" without attributes) -> value.
func collectMetrics(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	attr := func(s attribute.Set) string {
		if s.Len() == 0 {
			return ""
		}
		kv, _ := s.Get(0)
		return kv.Value.Emit()
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			vals := map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					vals[attr(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					vals[attr(p.Attributes)] = p.Value
				}
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", m.Name)
				}
				for _, p := range d.DataPoints {
					vals[attr(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]: // the count of each series
				for _, p := range d.DataPoints {
					vals[attr(p.Attributes)] = float64(p.Count)
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = vals
		}
	}
	return out
}

func TestRegisterMetrics(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	hub := transport.NewHub()
	t.Cleanup(hub.Close)
	var nodes []*Node
	for i := range 6 {
		n := newMemNode(t, r, hub)
		var via *Node
		if i > 0 {
			via = nodes[0]
		}
		nodes = append(nodes, n)
		joinVia(t, n, via)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	n := nodes[5]
	reg, err := n.RegisterMetrics(mp.Meter(MetricsScope))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterMetrics(nil); err == nil {
		t.Error("nil meter accepted")
	}

	// Lookups from n: each answer is delivered at n after some hops.
	const lookups = 20
	hops := map[int]int{}
	for range lookups {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := n.Lookup(ctx, id.Random(r))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		hops[res.Hops]++
	}
	m := collectMetrics(t, reader)
	inf := n.Info()
	if got := m["pastry.leaf_set.size"]; got["left"] != float64(len(inf.Left)) || got["right"] != float64(len(inf.Right)) {
		t.Errorf("leaf set size %v, info %d/%d", got, len(inf.Left), len(inf.Right))
	}
	if got := m["pastry.routing_table.entries"][""]; got != float64(inf.TableEntries) || got == 0 {
		t.Errorf("table entries %v, info %d", got, inf.TableEntries)
	}
	rowSum := 0.0
	for _, v := range m["pastry.routing_table.row.entries"] {
		rowSum += v
	}
	if rowSum != float64(inf.TableEntries) {
		t.Errorf("row entries sum to %v, table has %d", rowSum, inf.TableEntries)
	}
	if m["pastry.network.size_estimate"][""] != 6 || m["pastry.node.joined"][""] != 1 {
		t.Errorf("size %v joined %v", m["pastry.network.size_estimate"], m["pastry.node.joined"])
	}
	// Answers come back from the root: delivered here, at least lookups of
	// them (requests whose root is n itself are delivered here too), routed
	// or sent straight (the root is connected to n).
	delivered := m["pastry.direct.delivered"][""]
	for _, v := range m["pastry.route.delivered"] {
		delivered += v
	}
	if delivered < lookups || len(m["pastry.route.delivered"]) != 16 || m["pastry.route.delivered"]["15+"] != 0 {
		t.Errorf("delivered %v after %d lookups", m["pastry.route.delivered"], lookups)
	}
	if m["pastry.messages.sent"]["route"] == 0 || m["pastry.messages.received"]["announce-ack"] == 0 {
		t.Errorf("messages sent %v received %v", m["pastry.messages.sent"], m["pastry.messages.received"])
	}
	if v, ok := m["pastry.route.refused"][""]; !ok || v != 0 {
		t.Errorf("route refused %v", m["pastry.route.refused"])
	}
	if _, ok := m["pastry.transport.rejected"]["node-id-mismatch"]; !ok {
		t.Errorf("rejected reasons: %v", m["pastry.transport.rejected"])
	}
	if got := m["pastry.lookup.duration"]; got["ok"] != lookups || got["failed"] != 0 {
		t.Errorf("lookup durations recorded %v, want %d ok", got, lookups)
	}
	// A cancelled context fails a lookup unless its request was queued
	// first (a select between two ready cases): count what happened.
	okN, failN := float64(lookups), 0.0
	for i := 0; i < 50 && failN == 0; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := n.Lookup(ctx, id.Random(r)); err != nil {
			failN++
		} else {
			okN++
		}
	}
	if failN == 0 {
		t.Fatal("50 lookups with a cancelled context all succeeded")
	}
	if got := collectMetrics(t, reader)["pastry.lookup.duration"]; got["ok"] != okN || got["failed"] != failN {
		t.Errorf("lookup durations recorded %v, want %v ok and %v failed", got, okN, failN)
	}

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if m := collectMetrics(t, reader); len(m["pastry.leaf_set.size"]) != 0 {
		t.Errorf("observed after Unregister: %v", m["pastry.leaf_set.size"])
	}
	if _, err := n.Lookup(context.Background(), id.Random(r)); err != nil {
		t.Fatal(err)
	}
	if got := collectMetrics(t, reader)["pastry.lookup.duration"]; got["ok"] != okN {
		t.Errorf("a lookup after Unregister was recorded: %v, want %v ok", got, okN)
	}
}
