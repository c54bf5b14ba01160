package pastry

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// certNode starts a node in certificate mode on a loopback host: its key
// certified by issuer for network from notBefore for validity, checked
// against the authority ca (the network's, or the node's own idea of it)
// on a clock now (nil: time.Now).
func certNode(t *testing.T, r *rand.Rand, issuer *secure.Authority, ca ed25519.PublicKey, network string, notBefore time.Time, validity time.Duration, now func() time.Time) (*Node, host.Host) {
	t.Helper()
	k, err := secure.GenerateKey(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := issuer.Issue(k.GetPublic(), network, notBefore, validity, chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	return certNodeWith(t, k, cert, ca, network, now)
}

func certNodeWith(t *testing.T, k crypto.PrivKey, cert *secure.Certificate, ca ed25519.PublicKey, network string, now func() time.Time) (*Node, host.Host) {
	t.Helper()
	v, err := secure.NewVerifier(ca, network, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(h, WithConfig(fastConfig()), WithSecurity(transport.Security{Verifier: v, Own: cert, Now: now}))
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); h.Close() })
	return n, h
}

func secStats(n *Node) transport.SecurityStats {
	return n.Transport().(*transport.Libp2p).Stats().Security
}

// TestLibp2pCertificateMode: over libp2p, nodes whose certificates are of
// another authority, of another network or expired never enter an honest
// node's routing table, leaf set or neighbourhood set, and each is
// refused and counted by its reason; nodes with valid certificates join,
// with their certified ids, and a late one's join answer is checked in a
// batch.
func TestLibp2pCertificateMode(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 69))
	const network = "testnet"
	ca, err := secure.NewAuthority(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	evil, err := secure.NewAuthority(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	o := &overlay{t: t, dead: map[int]bool{}}
	var hosts []host.Host
	join := func(n *Node, via host.Host) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if via == nil {
			return n.Join(ctx)
		}
		return n.Join(ctx, addrInfo(via))
	}
	for i := range 4 {
		n, h := certNode(t, r, ca, ca.Public(), network, now, 24*time.Hour, nil)
		var via host.Host
		if i > 0 {
			via = hosts[0]
		}
		if err := join(n, via); err != nil {
			t.Fatalf("honest node %d: %v", i, err)
		}
		if x, _ := secure.NodeIDFromPeer(h.ID()); n.ID() == x {
			t.Fatalf("node %d: id derived from its key, not its certificate", i)
		}
		o.nodes, hosts = append(o.nodes, n), append(hosts, h)
	}

	// The refused: of another authority (a forger's, with the right
	// network name), of another network, expired an hour ago (on a clock
	// that runs late enough to start).
	type badNode struct {
		why string
		n   *Node
		h   host.Host
	}
	skewed := func() time.Time { return time.Now().Add(-3 * time.Hour) }
	var bad []badNode
	n, h := certNode(t, r, evil, evil.Public(), network, now, 24*time.Hour, nil)
	bad = append(bad, badNode{"signature", n, h})
	n, h = certNode(t, r, ca, ca.Public(), "othernet", now, 24*time.Hour, nil)
	bad = append(bad, badNode{"foreign_network", n, h})
	n, h = certNode(t, r, ca, ca.Public(), network, now.Add(-3*time.Hour), 2*time.Hour, skewed)
	bad = append(bad, badNode{"expired", n, h})
	for i, b := range bad {
		if err := join(b.n, hosts[i%len(hosts)]); err == nil {
			t.Errorf("%s: joined", b.why)
		}
		// Try every honest node, as a joiner and as a would-be neighbour.
		for _, hh := range hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			b.n.Transport().(*transport.Libp2p).Ping(ctx, idHandleOf(hh.ID()))
			cancel()
		}
	}

	// A valid latecomer joins through another node.
	late, lh := certNode(t, r, ca, ca.Public(), network, now, 24*time.Hour, nil)
	if err := join(late, hosts[1]); err != nil {
		t.Fatalf("valid late node: %v", err)
	}
	o.nodes, hosts = append(o.nodes, late), append(hosts, lh)
	o.waitLeaves(20 * time.Second)

	badPeers := map[string]string{}
	for _, b := range bad {
		badPeers[string(b.h.ID())] = b.why
	}
	var st transport.SecurityStats
	for i, n := range o.nodes {
		check := func(where string, es []routing.Entry) {
			for _, e := range es {
				if why, ok := badPeers[e.Addr]; ok {
					t.Errorf("node %d: the %s node is in its %s", i, why, where)
				}
			}
		}
		s := n.State()
		check("leaf set", s.Leaves.Members(nil))
		check("neighbourhood set", s.Neighbors.Members())
		for r := range s.Table.Rows() {
			check("routing table", s.Table.Row(r, nil))
		}
		ns := secStats(n)
		for k, c := range ns.CertRejected {
			st.CertRejected[k] += c
		}
		st.CertsBatched += ns.CertsBatched
	}
	for _, b := range bad {
		k := -1
		for i, name := range transport.CertReasons {
			if name == b.why {
				k = i
			}
		}
		if st.CertRejected[k] == 0 {
			t.Errorf("no refusal counted as %s", b.why)
		}
	}
	if st.CertsBatched == 0 {
		t.Error("no certificates checked in a batch")
	}
	t.Logf("refusals by reason %v, certificates batched %d", st.CertRejected, st.CertsBatched)
}

func idHandleOf(p peer.ID) (h id.Handle) {
	h, _ = secure.HandleFromPeer(p)
	return h
}

// TestLibp2pPuzzleMode: in open mode with the identity puzzle (c1 = 6),
// nodes whose keys solve it join; one whose key does not is refused by
// every node (counted) and enters no one's state.
func TestLibp2pPuzzleMode(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 70))
	const c1 = 6
	start := func(k crypto.PrivKey) (*Node, host.Host) {
		h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(h, WithConfig(fastConfig()), WithSecurity(transport.Security{PuzzleBits: c1}))
		if err != nil {
			h.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); h.Close() })
		return n, h
	}
	o := &overlay{t: t, dead: map[int]bool{}}
	var hosts []host.Host
	for i := range 3 {
		k, _, err := secure.SolvePuzzle(context.Background(), c1, 0, chachaReader{r})
		if err != nil {
			t.Fatal(err)
		}
		n, h := start(k)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var via []peer.AddrInfo
		if i > 0 {
			via = []peer.AddrInfo{addrInfo(hosts[0])}
		}
		err = n.Join(ctx, via...)
		cancel()
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		o.nodes, hosts = append(o.nodes, n), append(hosts, h)
	}
	o.waitLeaves(10 * time.Second)
	// A key that does not solve the puzzle: its own node refuses to start
	// with it, so it talks as a bare transport in open mode would.
	var k crypto.PrivKey
	for {
		var err error
		if k, err = secure.GenerateKey(chachaReader{r}); err != nil {
			t.Fatal(err)
		}
		if p, _ := peer.IDFromPrivateKey(k); transport.PuzzleBitsOf(p) < c1 {
			break
		}
	}
	h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(h, WithSecurity(transport.Security{PuzzleBits: c1})); err == nil {
		t.Fatal("a node started with a key that does not solve the puzzle")
	}
	bad, err := New(h, WithConfig(fastConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := bad.Join(ctx, addrInfo(hosts[1])); err == nil {
		t.Error("the unsolved node joined")
	}
	cancel()
	var refused uint64
	for i, n := range o.nodes {
		refused += secStats(n).PuzzleRejected
		if n.State().Knows(bad.ID()) {
			t.Errorf("node %d holds the unsolved node", i)
		}
	}
	if refused == 0 {
		t.Error("no puzzle refusal counted")
	}
}

// TestAdversaryNodeStartsNoLookups: a node made an attacker
// (WithAdversary) runs lookup.Adversary and refuses lookups of its own;
// WithAdversary without colluders is refused.
func TestAdversaryNodeStartsNoLookups(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 71))
	hub := transport.NewHub()
	n := newMemNode(t, r, hub, WithAdversary(lookup.AdversaryOptions{Attack: lookup.AttackFakeRoot, Colluders: new(lookup.Colluders)}))
	if _, err := n.Lookup(context.Background(), id.ID{1}); err == nil || !strings.Contains(err.Error(), "attacker") {
		t.Errorf("Lookup on an attacker: %v", err)
	}
	if _, err := collect([]Option{WithAdversary(lookup.AdversaryOptions{Attack: lookup.AttackDrop})}); err == nil {
		t.Error("WithAdversary without colluders accepted")
	}
}
