package multicast

import (
	"fmt"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
)

// On an owned topic, subscribers deliver only what the owner signed: a
// publish by another node (signed or not), and data a forwarder forges
// in its subtree, are counted as forged and go no further; the owner's
// own messages all arrive. A forwarder that withholds one is seen as a
// missing sequence number.
func TestOwnedTopicRefusesForgeries(t *testing.T) {
	nw, err := simnet.New(simnet.Options{Seed: 9, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	if err := nw.Grow(n, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	apps := make([]*App, n)
	got := make([][]string, n)
	for i := range n {
		apps[i], err = Register(nw.Node(i).Machine, Options{MaxChildren: 3, Deliver: func(d Delivery) {
			got[i] = append(got[i], string(d.Data))
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	on := func(i int, f func(a *App) error) {
		t.Helper()
		var err error
		nw.RunOn(i, func() { err = f(apps[i]) })
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	const owner, impostor = 5, 6
	ownerH := nw.Node(owner).Self()
	tp := OwnedTopicID(ownerH.ID, "announcements")
	subs := []int{}
	for i := 10; i < n; i += 3 {
		subs = append(subs, i)
		on(i, func(a *App) error { return a.SubscribeOwned(tp, ownerH) })
		nw.RunFor(10 * time.Millisecond)
	}
	nw.RunFor(5 * time.Second)
	for k := range 5 {
		on(owner, func(a *App) error { return a.PublishSigned(tp, fmt.Appendf(nil, "owner %d", k)) })
		on(impostor, func(a *App) error { return a.Publish(tp, fmt.Appendf(nil, "impostor %d", k)) })
		on(impostor, func(a *App) error { return a.PublishSigned(tp, fmt.Appendf(nil, "signed impostor %d", k)) })
		nw.RunFor(200 * time.Millisecond)
	}
	// A forwarder forges a message to its children, in the owner's name
	// with the owner's next sequence number, and with a bad signature.
	var fwd int = -1
	var child id.Handle
	for _, i := range subs {
		for _, ti := range apps[i].Topics() {
			if ti.Topic == tp && len(ti.Children) > 0 && !ti.Root {
				fwd, child = i, ti.Children[0]
			}
		}
	}
	if fwd < 0 {
		t.Fatal("no forwarder with children among the subscribers")
	}
	seq := apps[owner].pubs[tp].seq + 1
	forged := msg{kind: kindData, topic: tp, publisher: ownerH.ID, seq: seq, depth: 3, flags: flagSigned, sig: make([]byte, sigLen), data: []byte("forged")}
	b, err := forged.encode()
	if err != nil {
		t.Fatal(err)
	}
	on(fwd, func(a *App) error { return a.ep.Send(child, b) })
	nw.RunFor(time.Second)
	on(owner, func(a *App) error { return a.PublishSigned(tp, []byte("owner last")) })
	nw.RunFor(time.Second)
	var forgedCount uint64
	for _, a := range apps {
		forgedCount += a.Stats().Forged
	}
	for _, i := range subs {
		want := []string{"owner 0", "owner 1", "owner 2", "owner 3", "owner 4", "owner last"}
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Fatalf("subscriber %d got %q, want %q", i, got[i], want)
		}
	}
	// Each impostor's signed publish is refused at the root; its unsigned
	// ones are refused by every subscriber that gets them, the forged data
	// by the child.
	if forgedCount < 5+1 {
		t.Fatalf("forged counted %d times, want the 5 signed impostor publishes and the forged data at least", forgedCount)
	}
	t.Logf("forged counted %d times", forgedCount)
}

// A forwarder that withholds messages shows as missing sequence numbers
// at the subscribers below it.
func TestWithheldMessagesCountAsMissing(t *testing.T) {
	nw, err := simnet.New(simnet.Options{Seed: 10, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	if err := nw.Grow(n, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	apps := make([]*App, n)
	for i := range n {
		if apps[i], err = Register(nw.Node(i).Machine, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	tp := TopicID("withheld")
	sub := 7
	nw.RunOn(sub, func() { apps[sub].Subscribe(tp) })
	nw.RunFor(2 * time.Second)
	pub := 3
	for k := range 3 {
		nw.RunOn(pub, func() { apps[pub].Publish(tp, []byte{byte(k)}) })
		nw.RunFor(100 * time.Millisecond)
	}
	// The publisher skips two sequence numbers, as if a forwarder had
	// withheld them.
	apps[pub].pubs[tp].seq += 2
	nw.RunOn(pub, func() { apps[pub].Publish(tp, []byte{9}) })
	nw.RunFor(time.Second)
	if st := apps[sub].Stats(); st.Delivered != 4 || st.Missing != 2 {
		t.Fatalf("delivered %d, missing %d: want 4 and 2", st.Delivered, st.Missing)
	}
}

// Tree state is bounded: subscriptions for more topics than MaxTopics
// leave no node holding more.
func TestTopicStateBounded(t *testing.T) {
	nw, err := simnet.New(simnet.Options{Seed: 11, Node: core.SimConfig(), Topology: simnet.NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	const n, bound = 40, 3
	if err := nw.Grow(n, 200*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	apps := make([]*App, n)
	for i := range n {
		if apps[i], err = Register(nw.Node(i).Machine, Options{MaxTopics: bound}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range 30 {
		i := k % n
		nw.RunOn(i, func() { _ = apps[i].Subscribe(TopicID(fmt.Sprint("t", k))) })
		nw.RunFor(50 * time.Millisecond)
	}
	nw.RunFor(5 * time.Second)
	var refused uint64
	for i, a := range apps {
		refused += a.Stats().Refused
		if got := len(a.topics); got > bound {
			t.Fatalf("node %d holds %d topics, bound %d", i, got, bound)
		}
	}
	if refused == 0 {
		t.Fatal("no subscription was refused: the bound was never reached")
	}
}
