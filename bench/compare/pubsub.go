package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/pastrynet/pastry"
)

// GossipSub is the third protocol, set up after the other two.
const GossipSub = "gossipsub"

// pubsubTopic is the topic both Scribe and GossipSub carry.
const pubsubTopic = "bench-compare"

// rpcCounter counts the RPCs GossipSub sends (each a frame on a stream:
// messages, and control messages such as IHAVE, IWANT, GRAFT, PRUNE).
type rpcCounter struct{ sent atomic.Uint64 }

func (c *rpcCounter) AddPeer(peer.ID, protocol.ID)                         {}
func (c *rpcCounter) RemovePeer(peer.ID)                                   {}
func (c *rpcCounter) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (c *rpcCounter) OnClosedOutboundStream(peer.ID)                       {}
func (c *rpcCounter) Join(string)                                          {}
func (c *rpcCounter) Leave(string)                                         {}
func (c *rpcCounter) Graft(peer.ID, string)                                {}
func (c *rpcCounter) Prune(peer.ID, string)                                {}
func (c *rpcCounter) ValidateMessage(*pubsub.Message)                      {}
func (c *rpcCounter) DeliverMessage(*pubsub.Message)                       {}
func (c *rpcCounter) RejectMessage(*pubsub.Message, string)                {}
func (c *rpcCounter) DuplicateMessage(*pubsub.Message)                     {}
func (c *rpcCounter) ThrottlePeer(peer.ID)                                 {}
func (c *rpcCounter) RecvRPC(*pubsub.RPC)                                  {}
func (c *rpcCounter) SendRPC(*pubsub.RPC, peer.ID)                         { c.sent.Add(1) }
func (c *rpcCounter) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (c *rpcCounter) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (c *rpcCounter) UndeliverableMessage(*pubsub.Message)                 {}

// deliveries collects publish-to-delivery latencies: each message carries
// its protocol's tag, its number and its send time.
type deliveries struct {
	epoch time.Time
	mu    sync.Mutex
	lat   map[byte][]float64
	n     map[byte]int
}

func (d *deliveries) record(data []byte) {
	if len(data) < 17 {
		return
	}
	at := time.Duration(binary.BigEndian.Uint64(data[9:17]))
	ms := float64((time.Since(d.epoch) - at).Microseconds()) / 1000
	d.mu.Lock()
	d.lat[data[0]] = append(d.lat[data[0]], ms)
	d.n[data[0]]++
	d.mu.Unlock()
}

func (d *deliveries) count(tag byte) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[tag]
}

const (
	tagScribe = 1
	tagGossip = 2
)

// publishSubscribe sets up GossipSub on every host, subscribes half the
// nodes to one topic with both Scribe and GossipSub, and has 4 other nodes
// publish cfg.Publishes messages with each, in cfg.Rounds interleaved
// rounds, 10 ms apart, waiting after each burst for its deliveries.
func (b *bench) publishSubscribe(ctx context.Context) error {
	n := len(b.hosts)
	perm := b.r.Perm(n)
	subs := perm[:n/2]
	pubs := perm[n/2 : n/2+min(4, n-n/2)]
	res := b.res
	gs := &ProtoResult{Name: GossipSub, Order: 3,
		Config: fmt.Sprintf("go-libp2p-pubsub %s, GossipSub defaults (D=6), peers: the hosts' existing connections (no discovery)", depVersion("github.com/libp2p/go-libp2p-pubsub"))}
	res.GossipSub = gs
	ctr := &rpcCounter{}
	b.gossipRPCs = ctr
	before := footprint()
	m0, by0 := b.counts(GossipSub)
	start := time.Now()
	pss := make([]*pubsub.PubSub, n) // they stop with gctx
	topics := make([]*pubsub.Topic, n)
	gctx, gcancel := context.WithCancel(context.Background())
	b.closeGossip = gcancel
	for i, h := range b.hosts {
		ps, err := pubsub.NewGossipSub(gctx, h, pubsub.WithRawTracer(ctr))
		if err != nil {
			return fmt.Errorf("gossipsub %d: %w", i, err)
		}
		pss[i] = ps
	}
	for _, i := range append(slices.Clone(subs), pubs...) {
		t, err := pss[i].Join(pubsubTopic)
		if err != nil {
			return err
		}
		topics[i] = t
	}
	del := &deliveries{epoch: time.Now(), lat: map[byte][]float64{}, n: map[byte]int{}}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // after the Scribe subscriptions' Close, deferred below
	for _, i := range subs {
		s, err := topics[i].Subscribe()
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer s.Cancel()
			for {
				m, err := s.Next(sctx)
				if err != nil {
					return
				}
				del.record(m.Data)
			}
		})
	}
	// Ready: every subscriber has at least 4 mesh-candidate peers in the
	// topic (GossipSub's D_lo), or 30 s.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ok := true
		for _, i := range subs {
			if len(topics[i].ListPeers()) < min(4, len(subs)-1) {
				ok = false
				break
			}
		}
		if ok {
			break
		}
	}
	gs.ReadyS = time.Since(start).Seconds()
	gs.JoinedS = gs.ReadyS
	gs.Ready = fmt.Sprintf("every subscriber sees at least %d topic peers", min(4, len(subs)-1))
	m1, by1 := b.counts(GossipSub)
	gs.setup(m1-m0, by1-by0, n)
	time.Sleep(b.cfg.Settle)
	gs.Added = footprint()
	gs.AddedPerNode = perNode(gs.Added, before, n)
	b.logf("gossipsub ready in %.2f s; +%.2f MiB RSS, +%.0f goroutines per node", gs.ReadyS, gs.AddedPerNode.RSSMiB, gs.AddedPerNode.Goroutines)
	im0, ib0 := b.counts(GossipSub)
	t0 := time.Now()
	time.Sleep(b.cfg.Idle)
	im1, ib1 := b.counts(GossipSub)
	secs := time.Since(t0).Seconds()
	gs.IdleMsgsPerNodeS, gs.IdleBytesPerNodeS = float64(im1-im0)/secs/float64(n), float64(ib1-ib0)/secs/float64(n)

	var scribeSubs []*pastry.Subscription
	for _, i := range subs {
		s, err := b.nodes[i].Subscribe(ctx, pubsubTopic)
		if err != nil {
			return fmt.Errorf("scribe subscribe at %d: %w", i, err)
		}
		scribeSubs = append(scribeSubs, s)
		wg.Go(func() {
			for m := range s.C {
				del.record(m.Data)
			}
		})
	}
	defer func() {
		for _, s := range scribeSubs {
			s.Close()
		}
	}()
	time.Sleep(2 * time.Second) // the subscriptions' acks, and GossipSub's heartbeats

	sop := res.op("publish", Pastry, "Node.Publish (Scribe)")
	gop := res.op("publish", GossipSub, "Topic.Publish")
	sop.Subscribers, gop.Subscribers = len(subs), len(subs)
	seq := uint64(0)
	for round := range b.cfg.Rounds {
		count := b.cfg.Publishes/b.cfg.Rounds + btoi(round < b.cfg.Publishes%b.cfg.Rounds)
		for _, op := range []*OpResult{sop, gop} {
			tag := byte(tagScribe)
			if op == gop {
				tag = tagGossip
			}
			seg := b.begin(op)
			want := del.count(tag) + count*len(subs)
			for k := range count {
				p := pubs[k%len(pubs)]
				seq++
				data := make([]byte, 17, 64)
				data[0] = tag
				binary.BigEndian.PutUint64(data[1:], seq)
				binary.BigEndian.PutUint64(data[9:], uint64(time.Since(del.epoch)))
				data = append(data, make([]byte, 64-17)...)
				var err error
				if op == sop {
					err = b.nodes[p].Publish(ctx, pubsubTopic, data)
				} else {
					err = topics[p].Publish(ctx, data)
				}
				op.Count++
				if err != nil {
					op.Failed++
					if len(op.Errors) < 5 {
						op.Errors = append(op.Errors, err.Error())
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			for deadline := time.Now().Add(5 * time.Second); del.count(tag) < want && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			seg.end()
		}
	}
	// Stop the readers: GossipSub's with their context, Scribe's by
	// closing the subscriptions (which closes their channels).
	cancel()
	for _, s := range scribeSubs {
		s.Close()
	}
	wg.Wait()
	del.mu.Lock()
	sop.LatencyMs, gop.LatencyMs = del.lat[tagScribe], del.lat[tagGossip]
	sop.Delivered, gop.Delivered = del.n[tagScribe], del.n[tagGossip]
	del.mu.Unlock()
	for _, op := range []*OpResult{sop, gop} {
		op.Expected = (op.Count - op.Failed) * len(subs)
	}
	return nil
}

// gossipMsgs is the RPCs every GossipSub router sent so far.
func (b *bench) gossipMsgs() uint64 {
	if b.gossipRPCs == nil {
		return 0
	}
	return b.gossipRPCs.sent.Load()
}
