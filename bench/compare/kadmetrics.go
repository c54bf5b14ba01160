package main

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// kadScope is the OpenTelemetry scope of go-libp2p-kad-dht's metrics.
const kadScope = "github.com/libp2p/go-libp2p-kad-dht"

// kadCounts are go-libp2p-kad-dht's own counters, summed over every DHT
// in the process.
type kadCounts struct {
	// Requests are RPCs sent that wait for a response; Messages are sent
	// one-way; Inbound are messages received (each request received is
	// answered once: with the protocols this run uses, FIND_NODE,
	// GET_VALUE and PUT_VALUE, every request has a response).
	Requests, Messages, Inbound uint64
}

// Wire is every message on the wire: requests, one-way messages, and one
// response per request received.
func (k kadCounts) Wire() uint64 { return k.Requests + k.Messages + k.Inbound }

func (k kadCounts) sub(o kadCounts) kadCounts {
	return kadCounts{k.Requests - o.Requests, k.Messages - o.Messages, k.Inbound - o.Inbound}
}

var (
	kadReaderOnce sync.Once
	kadReader     *sdkmetric.ManualReader
)

// installKadMetrics makes the global OpenTelemetry meter provider one this
// program reads. kad-dht creates its instruments from the global provider
// at package initialisation; the global provider forwards them to the one
// set here.
func installKadMetrics() {
	kadReaderOnce.Do(func() {
		kadReader = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(kadReader)))
	})
}

// readKadCounts sums kad-dht's RPC counters over all their attributes.
func readKadCounts() kadCounts {
	var k kadCounts
	var rm metricdata.ResourceMetrics
	if err := kadReader.Collect(context.Background(), &rm); err != nil {
		return k
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != kadScope {
			continue
		}
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			var t uint64
			for _, dp := range sum.DataPoints {
				t += uint64(dp.Value)
			}
			switch m.Name {
			case "rpc.outbound.requests":
				k.Requests = t
			case "rpc.outbound.messages":
				k.Messages = t
			case "rpc.inbound.messages":
				k.Inbound = t
			}
		}
	}
	return k
}
