package pastry

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// TestUnsentHopsRerouteWithoutTimeout: nodes whose endpoints are gone
// (the hub has no one at their address, as a libp2p host refusing
// connections) are still in everyone's state, and the hop timeout is far
// longer than a lookup may wait. Lookups aimed at the gone nodes still end
// at the true live root: the transport's report of each unsent hop
// reaches the core through the runtime, which re-routes at once. Without
// that wiring every such lookup would wait for a hop timeout and fail.
func TestUnsentHopsRerouteWithoutTimeout(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	hub := transport.NewHub(transport.HubLatency(func(_, _ peer.ID) time.Duration { return 100 * time.Microsecond }))
	t.Cleanup(hub.Close)
	cfg := fastConfig()
	// Failure detection and hop timeouts out of the way: only the unsent
	// reports can move these lookups on within their 10 s.
	cfg.HeartbeatInterval = 20 * time.Second
	cfg.NeighborSilence = time.Minute
	cfg.HopTimeoutMin = time.Minute
	cfg.HopTimeoutMax = time.Minute
	cfg.StateProbeInterval = 0
	cfg.RowExchangeInterval = 0
	o := memOverlay(t, r, hub, 16, WithConfig(cfg))

	var gone []id.ID
	for _, i := range []int{3, 8, 13} {
		gone = append(gone, o.nodes[i].ID())
		o.nodes[i].Close()
		o.nodes[i].Transport().Close() // NewWithTransport's caller owns it
		o.dead[i] = true
	}
	// Each gone node's id looked up from every live node (most have it
	// in their leaf set, so the first hop or the last is to it), then
	// random keys.
	lookups := 0
	for _, key := range gone {
		for i, n := range o.nodes {
			if !o.dead[i] {
				o.lookupKey(n, key)
				lookups++
			}
		}
	}
	o.lookups(100, r)
	lookups += 100

	var unsent, timeouts uint64
	for i, n := range o.nodes {
		if o.dead[i] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := n.Stats(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		unsent += s.Core.HopsUnsent
		timeouts += s.Core.HopTimeouts
	}
	t.Logf("%d lookups past 3 gone nodes: %d hops unsent and re-routed, %d hop timeouts", lookups, unsent, timeouts)
	if unsent == 0 {
		t.Fatal("no hop was reported unsent: the lookups did not meet the gone nodes")
	}
	if timeouts != 0 {
		t.Fatalf("%d hop timeouts with a one-minute hop timeout", timeouts)
	}
}
