package pastry

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// TestLibp2pSecureLookupsUnderAttack: over libp2p in certificate mode, 3
// certified attacker nodes (one drops the lookups routed through it, two
// answer them as the root) sit among 16 honest nodes. Plain lookups from
// the honest nodes go wrong where an attacker is on the route (the test
// requires some to, so that the attackers are on routes at all); secure
// lookups of the same keys from every honest node all end at the key's
// true root, the numerically closest of all nodes.
func TestLibp2pSecureLookupsUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("19 libp2p nodes and secure lookups: not in -short")
	}
	r := rand.New(rand.NewPCG(25, 21))
	const network = "attacknet"
	ca, err := secure.NewAuthority(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.LeafSetSize = 8 // routes of more than one hop among 19 nodes
	colluders := new(lookup.Colluders)
	attacks := []lookup.Attack{lookup.AttackDrop, lookup.AttackFakeRoot, lookup.AttackFakeRoot}
	const honest = 16
	var all, good []*Node
	for i := range honest + len(attacks) {
		k, err := secure.GenerateKey(chachaReader{r})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.Issue(k.GetPublic(), network, time.Now().Add(-time.Minute), 24*time.Hour, chachaReader{r})
		if err != nil {
			t.Fatal(err)
		}
		v, err := secure.NewVerifier(ca.Public(), network, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		opts := []Option{WithConfig(cfg), WithSecurity(transport.Security{Verifier: v, Own: cert})}
		if i >= honest {
			opts = append(opts, WithAdversary(lookup.AdversaryOptions{Attack: attacks[i-honest], Colluders: colluders}))
		}
		n, err := New(h, opts...)
		if err != nil {
			h.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); h.Close() })
		if i >= honest {
			colluders.Add(n.Self())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if i == 0 {
			err = n.Join(ctx)
		} else {
			err = n.Join(ctx, addrInfo(all[r.IntN(len(all))].host))
		}
		cancel()
		if err != nil {
			t.Fatalf("node %d: join: %v", i, err)
		}
		all = append(all, n)
		if i < honest {
			good = append(good, n)
		}
	}
	o := &overlay{t: t, nodes: all, dead: map[int]bool{}}
	o.waitLeaves(30 * time.Second)
	if !all[0].Config().ConstrainedTable {
		t.Fatal("certificate mode did not turn on the constrained table")
	}
	root := func(key id.ID) id.ID {
		want := all[0].ID()
		for _, n := range all[1:] {
			if id.Closer(key, n.ID(), want) {
				want = n.ID()
			}
		}
		return want
	}

	const perNode = 6
	keys := make([][]id.ID, len(good))
	for i := range keys {
		for range perNode {
			keys[i] = append(keys[i], id.Random(r))
		}
	}
	type outcome struct {
		node   int
		key    id.ID
		res    LookupResult
		err    error
		secure bool
	}
	run := func(lo LookupOptions) []outcome {
		var mu sync.Mutex
		var out []outcome
		var wg sync.WaitGroup
		for i, n := range good {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, k := range keys[i] {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					res, err := n.LookupWith(ctx, k, lo)
					cancel()
					mu.Lock()
					out = append(out, outcome{i, k, res, err, lo.Secure})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return out
	}
	plainWrong := 0
	for _, x := range run(LookupOptions{}) {
		if x.err != nil || x.res.Root != root(x.key) {
			plainWrong++
		}
	}
	redundant, right := 0, 0
	for _, x := range run(LookupOptions{Secure: true}) {
		if x.err != nil {
			t.Errorf("node %d: secure lookup %s: %v", x.node, x.key.Short(), x.err)
			continue
		}
		if want := root(x.key); x.res.Root != want {
			t.Errorf("node %d: secure lookup %s ended at %s, the root is %s (redundant %v, rounds %d)",
				x.node, x.key.Short(), x.res.Root.Short(), want.Short(), x.res.Redundant, x.res.Rounds)
		} else {
			right++
		}
		if x.res.Redundant {
			redundant++
		}
	}
	t.Logf("%d honest nodes, %d attackers: plain lookups wrong %d of %d; secure lookups right %d of %d, %d with redundant routing",
		honest, len(attacks), plainWrong, honest*perNode, right, honest*perNode, redundant)
	if plainWrong == 0 {
		t.Fatal("no plain lookup went wrong: the attackers were on no route, and the test shows nothing")
	}
	if redundant == 0 {
		t.Error("no secure lookup needed redundant routing, though plain lookups were attacked")
	}
	var st = &all[0].secLookups
	if st.lookups.Load() != perNode || st.testPassed.Load()+st.testFailed.Load() > perNode {
		t.Errorf("node 0's secure lookup counters: %d lookups, %d passed, %d failed; want %d lookups",
			st.lookups.Load(), st.testPassed.Load(), st.testFailed.Load(), perNode)
	}
}
