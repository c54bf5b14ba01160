package pastry

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/pastrynet/pastry/id"
)

// A root that has no connection to a lookup's origin routes its answer
// over its routing state's connections instead of dialling the origin
// (a dial and handshake cost more than the extra hops, and a root of a
// large overlay would otherwise connect to the origin of nearly every
// lookup it answers). The answer still arrives, and the two stay
// unconnected.
func TestLookupAnswerAvoidsDial(t *testing.T) {
	r := rand.New(rand.NewPCG(40, 4))
	cfg := fastConfig()
	cfg.LeafSetSize, cfg.NeighborhoodSize = 4, 4 // small states: pairs outside each other's
	o, hosts := startLibp2pOverlay(t, r, cfg, 40, func(i int) int { return r.IntN(i) })
	o.waitLeaves(20 * time.Second)

	// Pairs (origin, root) outside each other's routing state. Each pair
	// first measures its proximity both ways, so that a measurement
	// started when one hears of the other (from a heartbeat, say) cannot
	// dial during the lookup, and a pair whose measured proximity brings
	// one into the other's state is left out (a neighbour may be dialled).
	outside := func(a, b int) bool {
		sa, _ := statePeers(o.nodes[a].Info())
		sb, _ := statePeers(o.nodes[b].Info())
		return !sa[hosts[b].ID()] && !sb[hosts[a].ID()]
	}
	var pairs [][2]int
	for a := range o.nodes {
		for b := range o.nodes {
			if a != b && outside(a, b) {
				pairs = append(pairs, [2]int{a, b})
			}
		}
	}
	r.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	pairs = pairs[:min(len(pairs), 8)]
	for _, p := range pairs {
		for _, d := range [][2]int{p, {p[1], p[0]}} {
			hosts[d[0]].Peerstore().AddAddrs(hosts[d[1]].ID(), hosts[d[1]].Addrs(), peerstore.TempAddrTTL)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := o.nodes[d[0]].tr.Ping(ctx, id.Handle{Addr: string(hosts[d[1]].ID())})
			cancel()
			if err != nil {
				t.Fatalf("node %d pinging node %d: %v", d[0], d[1], err)
			}
		}
	}
	time.Sleep(2 * cfg.HeartbeatInterval) // for the states to take the proximities in
	tested := 0
	for _, p := range pairs {
		if tested == 3 {
			break
		}
		origin, root := p[0], p[1]
		if !outside(origin, root) {
			continue
		}
		tested++
		ho, hr := hosts[origin], hosts[root]
		_ = hr.Network().ClosePeer(ho.ID())
		_ = ho.Network().ClosePeer(hr.ID())
		eventually(t, "the pair disconnected", func() bool {
			return hr.Network().Connectedness(ho.ID()) != network.Connected &&
				ho.Network().Connectedness(hr.ID()) != network.Connected
		})
		sub, err := hr.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := o.nodes[origin].Lookup(ctx, o.nodes[root].ID())
		cancel()
		time.Sleep(20 * time.Millisecond) // for the events of a dial just made
		sub.Close()
		for e := range sub.Out() {
			if ev := e.(event.EvtPeerConnectednessChanged); ev.Peer == ho.ID() && ev.Connectedness == network.Connected {
				t.Fatalf("root %d connected to origin %d while answering its lookup", root, origin)
			}
		}
		if err != nil {
			t.Fatalf("lookup from node %d for node %d's id: %v", origin, root, err)
		}
		if res.Root != o.nodes[root].ID() || res.Hops < 1 {
			t.Fatalf("lookup from node %d for node %d's id: %+v", origin, root, res)
		}
		if hr.Network().Connectedness(ho.ID()) == network.Connected {
			t.Fatalf("root %d dialled origin %d to answer its lookup (%d hops)", root, origin, res.Hops)
		}
		// What an integrator does with the answer: connect to the root.
		if res.RootPeer != hr.ID() {
			t.Fatalf("lookup from node %d for node %d's id: root peer %s, want %s", origin, root, res.RootPeer, hr.ID())
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = ho.Connect(ctx, peer.AddrInfo{ID: res.RootPeer})
		cancel()
		if err != nil {
			t.Fatalf("origin %d cannot connect to the root peer it was told of: %v", origin, err)
		}
		t.Logf("origin %d, root %d: %d hops, answered in %v without a connection between them", origin, root, res.Hops, res.Latency)
	}
	if tested < 3 {
		t.Fatalf("only %d pairs stayed outside each other's state: the test would prove nothing", tested)
	}
}
