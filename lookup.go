package pastry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
)

// LookupResult is where a key's lookup ended.
type LookupResult struct {
	Key  id.ID
	Root id.ID
	// RootPeer is the root's libp2p peer ID (over libp2p), from the
	// handle of the node that answered as the root, whose node id the
	// transport checked against it; the addresses that handle carried
	// are in the host's peerstore (within the node's address policy), so
	// the caller can connect to the root:
	// host.Connect(ctx, peer.AddrInfo{ID: res.RootPeer}).
	RootPeer peer.ID
	// Hops is the number of overlay hops the request took; Path the nodes
	// it visited, origin first, root last.
	Hops int
	Path []id.ID
	// AnswerHops is how many overlay hops the answer took back: 1 when
	// the root was connected to this node and sent it straight, the
	// routed answer's hops otherwise (a root not connected to the origin
	// routes its answer rather than dialling it), 0 when this node is the
	// root.
	AnswerHops int
	// Latency is the round trip: request routed to the root, answer sent
	// back (see Lookup).
	Latency time.Duration
	// Secure lookups (LookupOptions.Secure) only. Redundant says whether
	// redundant routing ran (the failure test failed, no answer came in
	// time, or LookupOptions.Redundant asked for it), Rounds its rounds
	// and Claims the signed claims collected; Root is then the id closest
	// to the key among the claims. TestPassed is the routing failure
	// test's verdict on the routed answer (false when none came).
	Secure, Redundant, TestPassed bool
	Rounds, Claims                int
}

// LookupOptions are LookupWith's options.
type LookupOptions struct {
	// Secure makes a secure lookup (package lookup's secure.go): routed
	// through the constrained routing tables (on in certificate mode, or
	// with core.Config.ConstrainedTable; without them it routes through
	// the proximity table), the root's signed answer checked by the
	// routing failure test, and redundant routing over diverse first hops
	// when the test fails or no answer comes.
	Secure bool
	// Redundant, with Secure, runs redundant routing whatever the test
	// says (for operations that must not trust one route).
	Redundant bool
}

// secureLookupStats are the secure lookups' counters (metrics).
type secureLookupStats struct {
	lookups, testPassed, testFailed, redundant, rounds atomic.Uint64
}

type lookupReply struct {
	res lookup.Result
	err error
}

// Lookup routes a traced request for key to its root and waits for the
// root's answer (package lookup: the answer comes straight from the root
// when the root is connected to this node, and is routed back otherwise).
// Requests are paced by the route window, as Route's messages are
// (WithRouteWindow); the latency reported includes any wait for it. ctx
// bounds the lookup, and so does the lookup's own timeout (30 s).
func (n *Node) Lookup(ctx context.Context, key id.ID) (LookupResult, error) {
	return n.LookupWith(ctx, key, LookupOptions{})
}

// LookupWith is Lookup with options (LookupOptions: secure lookups).
func (n *Node) LookupWith(ctx context.Context, key id.ID, lo LookupOptions) (LookupResult, error) {
	start := time.Now()
	res, err := n.lookup(ctx, key, lo, start)
	if rec := n.lookupRec.Load(); rec != nil {
		rec.record(time.Since(start), err == nil)
	}
	return res, err
}

func (n *Node) lookup(ctx context.Context, key id.ID, lo LookupOptions, start time.Time) (LookupResult, error) {
	if n.lk == nil {
		return LookupResult{}, errors.New("pastry: this node is an attacker (WithAdversary): it starts no lookups")
	}
	ch := make(chan lookupReply, 1)
	var req uint64
	var err error
	// The request may wait in the route queue for the window: the caller
	// may give up meanwhile (claim 0 -> 2), and then the closure, when it
	// runs, does nothing; once the closure has claimed it (0 -> 1), the
	// caller waits for it to finish.
	var claim atomic.Int32
	finished := make(chan struct{})
	f := func() {
		defer close(finished)
		if !claim.CompareAndSwap(0, 1) {
			return
		}
		n.c.Run(n.now(), func() {
			so := lookup.StartOptions{Secure: lo.Secure, Redundant: lo.Secure && lo.Redundant}
			req, err = n.lk.StartWith(key, so, func(r lookup.Result, err error) { ch <- lookupReply{r, err} })
		})
		n.flush()
	}
	select {
	case n.routes <- f:
	case <-ctx.Done():
		return LookupResult{}, fmt.Errorf("lookup %s: %w", key.Short(), ctx.Err())
	case <-n.quit:
		return LookupResult{}, ErrClosed
	}
	select {
	case <-finished:
	case <-ctx.Done():
		if claim.CompareAndSwap(0, 2) {
			return LookupResult{}, fmt.Errorf("lookup %s: %w (waiting for the route window)", key.Short(), ctx.Err())
		}
		<-finished // running now
	case <-n.quit:
		return LookupResult{}, ErrClosed
	}
	if err != nil {
		return LookupResult{}, err
	}
	select {
	case r := <-ch:
		if lo.Secure {
			n.countSecure(r)
		}
		if r.err != nil {
			return LookupResult{}, r.err
		}
		res := LookupResult{Key: key, Root: r.res.Root.ID, RootPeer: peer.ID(r.res.Root.Addr), Hops: r.res.Hops,
			Path: r.res.Path, AnswerHops: r.res.AnswerHops, Latency: time.Since(start)}
		if lo.Secure {
			res.Secure, res.Redundant, res.Rounds, res.Claims = true, r.res.Redundant, r.res.Rounds, r.res.Claims
			res.TestPassed = r.res.Answered && r.res.AnswerTest.Passed
		}
		return res, nil
	case <-ctx.Done():
		n.call(context.Background(), func() { n.lk.Cancel(req) })
		return LookupResult{}, fmt.Errorf("lookup %s: %w", key.Short(), ctx.Err())
	case <-n.quit:
		return LookupResult{}, ErrClosed
	}
}

// countSecure counts a finished secure lookup (metrics).
func (n *Node) countSecure(r lookupReply) {
	st := &n.secLookups
	st.lookups.Add(1)
	if r.err != nil {
		return
	}
	switch {
	case r.res.Answered && r.res.AnswerTest.Passed:
		st.testPassed.Add(1)
	case r.res.Answered:
		st.testFailed.Add(1)
	}
	if r.res.Redundant {
		st.redundant.Add(1)
		st.rounds.Add(uint64(r.res.Rounds))
	}
}
