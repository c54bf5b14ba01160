package pastry

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/transport"
)

func TestRouteWindowAIMD(t *testing.T) {
	const gap = 50 * time.Millisecond
	rw := newRouteWindow(8, gap)
	var l core.Load
	at := func(now time.Duration, acked, timedOut uint64) {
		l.Acked += acked
		l.TimedOut += timedOut
		rw.observe(now, l)
	}
	// Additive increase: one per window's worth of acks.
	at(time.Millisecond, 8, 0)
	if rw.w != 9 {
		t.Fatalf("after 8 acks at 8: window %v, want 9", rw.w)
	}
	// Multiplicative decrease, at most once per gap.
	at(2*time.Millisecond, 0, 3)
	if rw.w != 4.5 {
		t.Fatalf("after timeouts: window %v, want 4.5", rw.w)
	}
	at(3*time.Millisecond, 5, 1) // within the gap: no second cut, and no increase
	if rw.w != 4.5 {
		t.Fatalf("timeouts within the gap: window %v, want 4.5", rw.w)
	}
	at(2*time.Millisecond+gap, 0, 1)
	if rw.w != 4 { // 2.25, but not below the floor
		t.Fatalf("after a second cut: window %v, want the floor 4", rw.w)
	}
	// The ceiling: 64 times the initial window.
	for i := range 100000 {
		at(time.Second+time.Duration(i), 100, 0)
	}
	if rw.w != 64*8 {
		t.Fatalf("window %v, want the ceiling %d", rw.w, 64*8)
	}
	// open compares the hops in flight with the window.
	if !rw.open(core.Load{InFlight: 511}) || rw.open(core.Load{InFlight: 512}) {
		t.Fatal("open: want in flight < window")
	}
	// An initial window below the floor is its own floor.
	small := newRouteWindow(2, gap)
	small.observe(time.Second, core.Load{TimedOut: 1})
	if small.w != 2 {
		t.Fatalf("window %v, want 2", small.w)
	}
}

// With its acks slow, a node sends no more of its own routes than its
// window allows, and queues the rest; they go out as the acks come.
func TestRouteWindowHoldsRoutes(t *testing.T) {
	var slow atomic.Int64 // the latency to node 0, once set
	var first atomic.Value
	hub := transport.NewHub(transport.HubLatency(func(_, to peer.ID) time.Duration {
		if to == first.Load() {
			return time.Duration(slow.Load())
		}
		return 0
	}))
	t.Cleanup(hub.Close)
	cfg := fastConfig()
	cfg.NeighborSilence, cfg.ProbeTimeout = 20*time.Second, 5*time.Second
	cfg.HopTimeoutMin, cfg.HopTimeoutMax = 10*time.Second, 20*time.Second
	r := rand.New(rand.NewPCG(7, 7))
	app := payloadApp{got: make(chan []byte, 64)}
	var nodes []*Node
	for i := range 2 {
		n := newMemNode(t, r, hub, WithConfig(cfg), WithRouteWindow(4))
		if _, err := n.RegisterApplication(9, app); err != nil {
			t.Fatal(err)
		}
		var via *Node
		if i > 0 {
			via = nodes[0]
		}
		nodes = append(nodes, n)
		joinVia(t, n, via)
	}
	first.Store(peer.ID(nodes[0].Self().Addr))
	time.Sleep(200 * time.Millisecond) // let the joins' traffic and acks settle
	const ackDelay = time.Second
	slow.Store(int64(ackDelay))
	const sent = 10
	for range sent {
		if err := nodes[0].Route(context.Background(), nodes[1].ID(), 9, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	for range 4 {
		select {
		case <-app.got:
		case <-time.After(5 * time.Second):
			t.Fatal("the window's first 4 messages not delivered")
		}
	}
	st, err := nodes[0].Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d >= ackDelay/2 {
		t.Logf("the first 4 deliveries took %v: the acks may be back, the window's hold is not checked", d)
	} else {
		select {
		case <-app.got:
			t.Fatal("a fifth message went out before any ack came back")
		case <-time.After(100 * time.Millisecond):
		}
		if st.RouteWindow != 4 || st.RoutesQueued != sent-4 {
			t.Fatalf("window %d, queued %d; want 4 and %d", st.RouteWindow, st.RoutesQueued, sent-4)
		}
	}
	for i := 4; i < sent; i++ {
		select {
		case <-app.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered once the acks came", i)
		}
	}
	// Lookups are paced too: with the window full, one waits for the
	// acks (or its context).
	waitIdle := func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var inFlight int
			err := nodes[0].call(context.Background(), func() { inFlight = nodes[0].c.Load().InFlight })
			st, _ := nodes[0].Stats(context.Background())
			if err == nil && st.RoutesQueued == 0 && inFlight == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("hops still in flight after 10 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitIdle()
	st, err = nodes[0].Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range st.RouteWindow + 1 { // the window, rounded up, grew with the acks
		if err := nodes[0].Route(context.Background(), nodes[1].ID(), 9, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackDelay/4)
	defer cancel()
	// It gives up where it waits, for the window, not after it went out.
	if _, err := nodes[0].Lookup(ctx, nodes[1].ID()); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "route window") {
		t.Fatalf("a lookup with the window full: %v, want its deadline, waiting for the window", err)
	}
	// Once the acks come, lookups go out again.
	waitIdle()
	if res, err := nodes[0].Lookup(context.Background(), nodes[1].ID()); err != nil || res.Root != nodes[1].ID() {
		t.Fatalf("lookup after the acks: %+v, %v", res, err)
	}
}
