package pastry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/transport"
)

// Scribe over libp2p, 16 nodes: subscribe on 12, publish from 4; every
// subscriber gets every message once, in order per publisher. Then the
// topic's root and 2 forwarders are killed, and every surviving subscriber
// receives again: all of what is published after the tree is repaired.
func TestLibp2pScribe(t *testing.T) {
	if testing.Short() {
		t.Skip("16 libp2p hosts")
	}
	const size = 16
	r := rand.New(rand.NewPCG(16, 12))
	cfg := fastConfig()
	// A bound of 3 children gives the tree forwarders below the root.
	o, hosts := startLibp2pOverlayOpts(t, r, size, func(i int) int { return r.IntN(i) },
		WithConfig(cfg), WithMulticast(multicast.Options{MaxChildren: 3}))
	o.waitLeaves(15 * time.Second)
	const topic = "news"
	tp := multicast.TopicID(topic)
	perm := r.Perm(size)
	subscribers, publishers := perm[:12], perm[12:]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subs := map[int]*Subscription{}
	for _, i := range subscribers {
		s, err := o.nodes[i].Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	// Wait until every subscription has joined the tree (has a parent, or
	// is the root): what is published before reaches nobody there.
	for _, i := range subscribers {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			infos, _, err := o.nodes[i].TopicsInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) == 1 && (infos[0].Root || infos[0].Parent.Addr != "") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber %d not in the tree: %+v", i, infos)
			}
		}
	}

	// publishRound publishes count messages from each live publisher and
	// returns them by publisher id.
	round := 0
	publishRound := func(count int) map[id.ID][]string {
		round++
		out := map[id.ID][]string{}
		for k := range count {
			for _, p := range publishers {
				if o.dead[p] {
					continue
				}
				data := fmt.Sprintf("r%d/p%d/%d", round, p, k)
				if err := o.nodes[p].Publish(ctx, topic, []byte(data)); err != nil {
					t.Fatalf("publish from %d: %v", p, err)
				}
				out[o.nodes[p].ID()] = append(out[o.nodes[p].ID()], data)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return out
	}
	// collect reads what each live subscriber got until it has want
	// messages, or until the deadline.
	collect := func(want int, within time.Duration) map[int]map[id.ID][]string {
		got := map[int]map[id.ID][]string{}
		deadline := time.After(within)
		for _, i := range subscribers {
			if o.dead[i] {
				continue
			}
			got[i] = map[id.ID][]string{}
			for n := 0; n < want; n++ {
				select {
				case m := <-subs[i].C:
					got[i][m.Publisher] = append(got[i][m.Publisher], string(m.Data))
				case <-deadline:
					return got
				}
			}
		}
		return got
	}
	sent := publishRound(5)
	got := collect(5*len(publishers), 10*time.Second)
	for _, i := range subscribers {
		for p, want := range sent {
			if !slices.Equal(got[i][p], want) {
				t.Fatalf("before the failures, subscriber %d from %s: got %v, want %v", i, p.Short(), got[i][p], want)
			}
		}
	}

	// The root, and 2 forwarders (tree members with children that are not
	// the root), none of them a publisher.
	root := -1
	var forwarders []int
	for i, n := range o.nodes {
		infos, _, err := n.TopicsInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range infos {
			switch {
			case ti.Topic != tp:
			case ti.Root:
				root = i
			case len(ti.Children) > 0 && !slices.Contains(publishers, i):
				forwarders = append(forwarders, i)
			}
		}
	}
	if root < 0 || len(forwarders) < 2 {
		t.Fatalf("tree: root %d, forwarders %v: want a root and 2 forwarders", root, forwarders)
	}
	if slices.Contains(publishers, root) {
		t.Logf("the root %d is a publisher", root)
	}
	kill := append([]int{root}, forwarders[:2]...)
	for _, i := range kill {
		o.nodes[i].Close()
		hosts[i].Close()
		o.dead[i] = true
	}
	start := time.Now()
	// Publish until every surviving subscriber receives again; then all
	// of one round must arrive, each once and in order.
	var repaired time.Duration
	for deadline := time.Now().Add(detection(cfg) + 5*time.Second); ; {
		sent = publishRound(1)
		got = collect(len(sent), time.Second)
		all := true
		for _, i := range subscribers {
			if o.dead[i] {
				continue
			}
			for p := range sent {
				all = all && len(got[i][p]) > 0
			}
		}
		if all {
			repaired = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers not receiving %v after the root and 2 forwarders were killed: %v", time.Since(start), got)
		}
	}
	for _, i := range subscribers { // drain what the repair rounds left
		for len(subs[i].C) > 0 {
			<-subs[i].C
		}
	}
	sent = publishRound(5)
	live := 0
	for _, p := range publishers {
		if !o.dead[p] {
			live++
		}
	}
	got = collect(5*live, 10*time.Second)
	for _, i := range subscribers {
		if o.dead[i] {
			continue
		}
		for p, want := range sent {
			if !slices.Equal(got[i][p], want) {
				t.Fatalf("after repair, subscriber %d from %s: got %v, want %v", i, p.Short(), got[i][p], want)
			}
		}
	}
	t.Logf("killed root %d and forwarders %v: every surviving subscriber received again after %v", root, forwarders[:2], repaired.Round(time.Millisecond))
	for _, i := range subscribers {
		if !o.dead[i] {
			if err := subs[i].Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := <-subs[i].C; ok {
				t.Fatalf("subscription %d: channel open after Close", i)
			}
		}
	}
}

// A subscription's channel is closed however the subscription and the
// node end, even when both close at once.
func TestSubscriptionClosedWithNode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for k := range 20 {
		hub := transport.NewHub()
		o := memOverlay(t, r, hub, 1)
		sub, err := o.nodes[0].Subscribe(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { o.nodes[0].Close(); close(done) }()
		if k%2 == 0 {
			if err := sub.Close(); err != nil {
				t.Fatal(err)
			}
		}
		<-done
		select {
		case _, ok := <-sub.C:
			if ok {
				t.Fatal("a message on a closed subscription")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the subscription's channel stayed open after the node closed", k)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
