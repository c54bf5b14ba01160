package pastry

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
)

// holds reports whether node n's store holds key.
func holds(t *testing.T, n *Node, key id.ID) bool {
	t.Helper()
	var ok bool
	if err := n.Do(context.Background(), func() { _, ok, _ = n.store.Get(key) }); err != nil {
		t.Fatal(err)
	}
	return ok
}

// PAST over libp2p, 8 nodes: put; kill 2 replicas; get from every node;
// the live replicas are K again after maintenance; a lower version is
// refused; a delete is a tombstone that reads as deleted.
func TestLibp2pRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("8 libp2p hosts")
	}
	r := rand.New(rand.NewPCG(8, 22))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlayOpts(t, r, 8, func(i int) int { return r.IntN(i) },
		WithConfig(cfg), WithReplication(replication.PastOptions{Maintain: time.Second, Timeout: 5 * time.Second}))
	o.waitLeaves(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := o.nodes[0]
	res, err := owner.Put(ctx, "greeting", []byte("hello"), 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := owner.RecordKey("greeting")
	if len(res.Receipts) < 3 || res.Version != 1 || res.Key != key {
		t.Fatalf("put: %+v", res)
	}
	// The write returned at W=3 receipts; the other 2 replicas store it
	// a moment later.
	var holders []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		holders = holders[:0]
		for i, n := range o.nodes {
			if holds(t, n, key) {
				holders = append(holders, i)
			}
		}
		if len(holders) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held by %v, want 5 replicas", holders)
		}
	}
	var killed []int
	for _, i := range holders {
		if i != 0 && len(killed) < 2 {
			o.nodes[i].Close()
			hosts[i].Close()
			o.dead[i] = true
			killed = append(killed, i)
		}
	}
	for i, n := range o.nodes {
		if o.dead[i] {
			continue
		}
		g, err := n.GetRecord(ctx, key)
		if err != nil || string(g.Record.Value) != "hello" {
			t.Fatalf("get from %d after killing replicas %v: %v %v", i, killed, g.Record, err)
		}
	}
	deadline := time.Now().Add(detection(cfg) + 10*time.Second)
	for {
		var now []int
		for i, n := range o.nodes {
			if !o.dead[i] && holds(t, n, key) {
				now = append(now, i)
			}
		}
		if len(now) == 5 {
			t.Logf("killed replicas %v; 5 live replicas again: %v", killed, now)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live replicas %v after %v, want 5", now, detection(cfg)+10*time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var live []*Node
	for i, n := range o.nodes {
		if !o.dead[i] {
			live = append(live, n)
		}
	}
	if _, err := owner.Put(ctx, "greeting", []byte("hello again"), 0); err != nil {
		t.Fatal(err)
	}
	v1, _ := replication.Sign(mustKey(t, owner), []byte("greeting"), []byte("old"), 1, 0)
	if _, err := live[4].PutRecord(ctx, v1); !errors.Is(err, replication.ErrStale) {
		t.Fatalf("a rollback to version 1: %v, want ErrStale", err)
	}
	if _, err := owner.Delete(ctx, "greeting"); err != nil {
		t.Fatal(err)
	}
	g, err := live[5].GetRecord(ctx, key)
	if err != nil || !g.Record.Tombstone || g.Record.Version != 3 {
		t.Fatalf("after the delete: %+v %v", g.Record, err)
	}
	imm, err := live[3].PutImmutable(ctx, []byte("content"))
	if err != nil || imm.Key != replication.ImmutableKey([]byte("content")) {
		t.Fatalf("immutable: %+v %v", imm, err)
	}
	if g, err := live[1].GetRecord(ctx, imm.Key); err != nil || string(g.Record.Value) != "content" {
		t.Fatalf("get immutable: %v %v", g.Record, err)
	}
	if _, err := live[2].GetRecord(ctx, id.ID{1, 2, 3}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of nothing: %v, want ErrNotFound", err)
	}
}

func mustKey(t *testing.T, n *Node) crypto.PrivKey {
	t.Helper()
	k, err := n.signingKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
