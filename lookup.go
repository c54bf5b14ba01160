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
	// Latency is the round trip: request routed to the root, answer sent
	// back (see Lookup).
	Latency time.Duration
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
	start := time.Now()
	res, err := n.lookup(ctx, key, start)
	if rec := n.lookupRec.Load(); rec != nil {
		rec.record(time.Since(start), err == nil)
	}
	return res, err
}

func (n *Node) lookup(ctx context.Context, key id.ID, start time.Time) (LookupResult, error) {
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
			req, err = n.lk.Start(key, func(r lookup.Result, err error) { ch <- lookupReply{r, err} })
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
		if r.err != nil {
			return LookupResult{}, r.err
		}
		return LookupResult{Key: key, Root: r.res.Root.ID, RootPeer: peer.ID(r.res.Root.Addr), Hops: r.res.Hops,
			Path: r.res.Path, Latency: time.Since(start)}, nil
	case <-ctx.Done():
		n.call(context.Background(), func() { n.lk.Cancel(req) })
		return LookupResult{}, fmt.Errorf("lookup %s: %w", key.Short(), ctx.Err())
	case <-n.quit:
		return LookupResult{}, ErrClosed
	}
}
