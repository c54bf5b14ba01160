package pastry

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// statePeers lists the peers of a node's routing state, and those of them
// outside its leaf set.
func statePeers(inf Info) (all, beyondLeaves map[peer.ID]bool) {
	all, leaves := map[peer.ID]bool{}, map[peer.ID]bool{}
	for _, side := range [][]id.Handle{inf.Left, inf.Right} {
		for _, h := range side {
			all[peer.ID(h.Addr)], leaves[peer.ID(h.Addr)] = true, true
		}
	}
	for _, row := range append(inf.Rows, inf.Neighbors) {
		for _, h := range row {
			all[peer.ID(h.Addr)] = true
		}
	}
	beyondLeaves = map[peer.ID]bool{}
	for p := range all {
		if !leaves[p] {
			beyondLeaves[p] = true
		}
	}
	return all, beyondLeaves
}

// When the connection manager trims, the connections it closes are those
// the routing state does not need: every routing-table and neighbourhood
// peer is protected along with the leaf set (before, only the leaf set
// was, and a trim closed the connections to the table's entries), and
// the protection goes when the node closes.
func TestStatePeersSurviveConnectionTrimming(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 4))
	cfg := fastConfig()
	cfg.LeafSetSize = 4 // 12 nodes: most of the table lies beyond the leaf set
	o, hosts := startLibp2pOverlay(t, r, cfg, 12, func(i int) int { return r.IntN(i) },
		func(i int, hc *transport.HostConfig) {
			if i == 0 { // node 0's manager trims everything it may
				hc.ConnsLow, hc.ConnsHigh, hc.GracePeriod = 1, 2, time.Millisecond
			}
		})
	o.waitLeaves(15 * time.Second)
	o.lookups(200, r)
	n, h := o.nodes[0], hosts[0]

	// Connections nothing in the state needs, as proximity pings to
	// candidates that lost leave behind. The manager keeps ConnsLow (1)
	// unprotected connections, so a trim closes at least two of these.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var spare []network.Conn
	var spareIDs []peer.ID
	for range 3 {
		k, err := secure.GenerateKey(chachaReader{r})
		if err != nil {
			t.Fatal(err)
		}
		other, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		if err := other.Connect(ctx, addrInfo(h)); err != nil {
			t.Fatal(err)
		}
		spare = append(spare, h.Network().ConnsToPeer(other.ID())...)
		spareIDs = append(spareIDs, other.ID())
	}
	time.Sleep(10 * time.Millisecond) // past the 1 ms grace period

	all, beyond := statePeers(n.Info())
	eventually(t, "every state peer protected", func() bool {
		all, beyond = statePeers(n.Info())
		for p := range all {
			if !h.ConnManager().IsProtected(p, "") {
				return false
			}
		}
		return true
	})
	for _, p := range spareIDs {
		if h.ConnManager().IsProtected(p, "") {
			t.Fatal("a peer outside the state is protected")
		}
	}
	held := map[peer.ID][]network.Conn{}
	connectedBeyond := 0
	for p := range all {
		if cs := h.Network().ConnsToPeer(p); len(cs) > 0 {
			held[p] = cs
			if beyond[p] {
				connectedBeyond++
			}
		}
	}
	if connectedBeyond < 2 { // the manager may keep one of them
		t.Fatalf("no connected state peer beyond the leaf set (%d state peers, %d beyond): the test would not tell leaf-only protection apart", len(all), len(beyond))
	}

	h.ConnManager().TrimOpenConns(ctx)
	eventually(t, "two spare connections trimmed", func() bool {
		closed := 0
		for _, c := range spare {
			if c.IsClosed() {
				closed++
			}
		}
		return closed >= 2
	})
	after, _ := statePeers(n.Info())
	for p, cs := range held {
		if !after[p] {
			continue // left the state meanwhile; no longer protected
		}
		for _, c := range cs {
			if c.IsClosed() {
				t.Errorf("connection to state peer %s (beyond the leaf set: %v) trimmed", p, beyond[p])
			}
		}
	}
	t.Logf("%d state peers (%d beyond the leaf set, %d of them connected) kept through the trim", len(all), len(beyond), connectedBeyond)

	n.Close()
	o.dead[0] = true
	for p := range after {
		if h.ConnManager().IsProtected(p, "") {
			t.Errorf("peer %s still protected after Close", p)
		}
	}
}

// A connection a proximity ping had to open is closed once no stream uses
// it, if the peer stayed outside the routing state; one that existed
// before the ping, and one to a peer the state took after its ping, stay.
func TestMeasureConnsClosedWhenUnused(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 4))
	cfg := fastConfig()
	// No heartbeats during the test: the state peer's connection goes
	// quiet like the others, and only its place in the state keeps it.
	cfg.HeartbeatInterval, cfg.NeighborSilence = time.Minute, 3*time.Minute
	const idle = time.Second
	fast := []Option{
		WithConfig(cfg),
		WithTransportOptions(transport.Timeouts(2*time.Second, 2*time.Second, idle), transport.MeasureLimits(16, 50*time.Millisecond)),
	}
	start := func() (*Node, host.Host) { return startHostNode(t, r, nil, fast...) }
	x, hx := start()
	w, hw := start() // measured, then joins x: a state peer
	_, hy := start() // never joins: measured only
	_, hz := start() // connects to x first, then is measured
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := x.Join(ctx); err != nil {
		t.Fatal(err)
	}
	handle := func(h host.Host) id.Handle {
		hd, err := secure.HandleFromPeer(h.ID())
		if err != nil {
			t.Fatal(err)
		}
		return hd
	}
	// w's connection is a measurement's: the ping dials it. Once w has
	// joined, its place in the state keeps the connection.
	hx.Peerstore().AddAddrs(hw.ID(), hw.Addrs(), time.Hour)
	x.tr.Measure(handle(hw), id.Handle{})
	eventually(t, "w measured", func() bool { _, ok := x.tr.RTT(handle(hw)); return ok })
	if err := w.Join(ctx, addrInfo(hx)); err != nil {
		t.Fatal(err)
	}
	if err := hz.Connect(ctx, addrInfo(hx)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "w in x's leaf set", func() bool { all, _ := statePeers(x.Info()); return all[hw.ID()] })

	hx.Peerstore().AddAddrs(hy.ID(), hy.Addrs(), time.Hour)
	for _, h := range []host.Host{hy, hz} {
		x.tr.Measure(handle(h), id.Handle{})
	}
	eventually(t, "y and z measured", func() bool {
		_, y := x.tr.RTT(handle(hy))
		_, z := x.tr.RTT(handle(hz))
		return y && z
	})
	eventually(t, "the connection to y closed", func() bool { return hx.Network().Connectedness(hy.ID()) != network.Connected })
	time.Sleep(3 * idle) // past the idle timeouts and many sweeps
	st, err := x.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.MeasureConnsClosed != 1 {
		t.Fatalf("%d measurement connections closed, want 1 (y's)", st.MeasureConnsClosed)
	}
	if hx.Network().Connectedness(hz.ID()) != network.Connected {
		t.Fatal("a connection another peer opened was closed")
	}
	if all, _ := statePeers(x.Info()); !all[hw.ID()] || hx.Network().Connectedness(hw.ID()) != network.Connected {
		t.Fatalf("state peer w: in the state %v, connected %v", all[hw.ID()], hx.Network().Connectedness(hw.ID()))
	}
}
