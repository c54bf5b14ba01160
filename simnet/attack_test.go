package simnet

import (
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
)

// Path walks the routing state to the key's root, and a lookup delivered
// without interference takes exactly that route.
func TestPathIsTheRoute(t *testing.T) {
	nw, l := grown(t, 5, 200, time.Second, time.Minute)
	var routes [][]int
	l.OnDeliver = func(at *Host, num uint64, m *core.Message, _ bool) {
		var r []int
		for _, h := range m.Path[1:] {
			j, _ := nw.index(h)
			r = append(r, int(j))
		}
		routes = append(routes, r)
	}
	var want [][]int
	for i := range 300 {
		key := id.Random(nw.Rand())
		p := nw.Path(i%200, key, 64)
		root, _ := nw.Root(key)
		if len(p) > 0 && p[len(p)-1] != root.Index || len(p) == 0 && root.Index != i%200 {
			t.Fatalf("path %v from %d to %s ends away from its root %d", p, i%200, key.Short(), root.Index)
		}
		if _, err := l.Lookup(i%200, key); err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Second)
		want = append(want, p)
	}
	if len(routes) != len(want) {
		t.Fatalf("%d deliveries of %d lookups", len(routes), len(want))
	}
	for k := range want {
		if len(routes[k]) != len(want[k]) {
			t.Fatalf("lookup %d took %v, Path said %v", k, routes[k], want[k])
		}
		for h := range want[k] {
			if routes[k][h] != want[k][h] {
				t.Fatalf("lookup %d took %v, Path said %v", k, routes[k], want[k])
			}
		}
	}
}

// A node with the adversary's application drops what is routed through
// it: lookups whose route meets it go unanswered, the others are answered
// by their roots, and none is answered by anyone else.
func TestAdversaryDrops(t *testing.T) {
	nw, err := New(Options{Seed: 6, Node: core.SimConfig(), Topology: NewPlane()})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLookups(nw)
	var col lookup.Colluders
	const n, bad = 150, 30
	for i := range n {
		h := nw.AddNode()
		if i%(n/bad) == 1 {
			col.Add(h.Self())
			err = l.AttachAdversary(h, lookup.AdversaryOptions{Attack: lookup.AttackDrop, Colluders: &col})
		} else {
			err = l.Attach(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			err = nw.Bootstrap(0)
		} else {
			err = nw.Join(i, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		nw.RunFor(time.Second)
	}
	nw.RunFor(time.Minute)
	answered, wrong, clean := 0, 0, 0
	l.OnAnswer = func(_ uint64, _ int, key id.ID, r lookup.Result, err error) {
		if err != nil {
			return
		}
		answered++
		if root, _ := nw.Root(key); root.Self() != r.Root {
			wrong++
		}
	}
	issued := 0
	for i := range n {
		if i%(n/bad) == 1 {
			continue
		}
		for range 5 {
			key := id.Random(nw.Rand())
			ok := true
			for _, j := range nw.Path(i, key, 64) {
				ok = ok && j%(n/bad) != 1
			}
			if ok {
				clean++
			}
			if _, err := l.Lookup(i, key); err != nil {
				t.Fatal(err)
			}
			issued++
		}
	}
	nw.RunFor(time.Minute)
	t.Logf("%d lookups, %d answered, %d routes free of the %d attackers", issued, answered, clean, bad)
	if answered != clean || wrong != 0 || clean == issued || clean == 0 {
		t.Fatalf("%d answered (%d wrongly), %d routes free of attackers, of %d", answered, wrong, clean, issued)
	}
}
