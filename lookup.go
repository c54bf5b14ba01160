package pastry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// lookupAppID is the runtime's own application: traced lookups whose root
// answers the origin. Application ids from 0xffff0000 are reserved.
const lookupAppID core.AppID = 0xffff0001

// LookupResult is where a key's lookup ended.
type LookupResult struct {
	Key  id.ID
	Root id.ID
	// RootPeer is the root's libp2p peer ID (over libp2p), taken from the
	// answer's origin handle, whose node id the transport checked against
	// it; the addresses that handle carried are in the host's peerstore
	// (within the node's address policy), so the caller can connect to
	// the root: host.Connect(ctx, peer.AddrInfo{ID: res.RootPeer}).
	RootPeer peer.ID
	// Hops is the number of overlay hops the request took; Path the nodes
	// it visited, origin first, root last.
	Hops int
	Path []id.ID
	// Latency is the round trip: request routed to the root, reply sent
	// back (see Lookup).
	Latency time.Duration
}

type lookupReply struct {
	root     id.ID
	rootPeer peer.ID
	hops     int
	path     []id.ID
}

// Lookup routes a traced request for key to its root and waits for the
// root's answer. The root sends the answer straight to the origin when
// its host is connected to it, and otherwise routes it to the origin's
// id, over the connections of the routing state: a dial and a security
// handshake cost more than the extra hops (over QUIC on loopback, 200
// nodes: 2.6 ms against 0.4 for a lookup whose root had to dial), and
// a root would otherwise open a connection to the origin of nearly every
// lookup it answers in a large overlay. Requests are paced by the route
// window, as Route's messages are (WithRouteWindow); the latency reported
// includes any wait for it, and ctx bounds it.
func (n *Node) Lookup(ctx context.Context, key id.ID) (LookupResult, error) {
	start := time.Now()
	res, err := n.lookup(ctx, key, start)
	if rec := n.lookupRec.Load(); rec != nil {
		rec.record(time.Since(start), err == nil)
	}
	return res, err
}

func (n *Node) lookup(ctx context.Context, key id.ID, start time.Time) (LookupResult, error) {
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
		n.nextReq++
		req = n.nextReq
		n.lookups[req] = ch
		p := putUint64([]byte{lookupRequest}, req)
		err = n.c.RouteMessage(n.now(), core.Message{Key: key, App: lookupAppID, Flags: core.FlagTrace, Payload: p}, nil)
		if err != nil {
			delete(n.lookups, req)
		}
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
		return LookupResult{Key: key, Root: r.root, RootPeer: r.rootPeer, Hops: r.hops, Path: r.path, Latency: time.Since(start)}, nil
	case <-ctx.Done():
		n.call(context.Background(), func() { delete(n.lookups, req) })
		return LookupResult{}, fmt.Errorf("lookup %s: %w", key.Short(), ctx.Err())
	case <-n.quit:
		return LookupResult{}, ErrClosed
	}
}

const (
	lookupRequest = 1
	lookupAnswer  = 2
)

// lookupApp answers lookups at the root and completes them at the origin.
// (The routing state's peers are protected in the connection manager by
// the node's connGuard.)
type lookupApp struct{ n *Node }

func (a *lookupApp) Forward(*core.Message, *id.Handle) bool { return true }

func (a *lookupApp) Update(id.Handle, bool) {}

func (a *lookupApp) Deliver(m *core.Message) {
	n := a.n
	if len(m.Payload) < 9 {
		return
	}
	req := binary.BigEndian.Uint64(m.Payload[1:9])
	switch m.Payload[0] {
	case lookupRequest:
		ans := putUint64([]byte{lookupAnswer}, req)
		ans = appendAnswer(ans, m.Hops, n.self.ID, len(m.Path), func(i int) id.ID { return m.Path[i].ID })
		origin := m.Origin
		var hint *id.Handle
		if n.connected(origin) {
			hint = &origin
		}
		if err := n.c.Route(n.now(), origin.ID, lookupAppID, ans, hint); err != nil {
			n.log.Debug("lookup answer", "err", err)
		}
	case lookupAnswer:
		if m.Key != n.self.ID {
			return // an answer for another node that reached us instead (it left, say): its req is not ours
		}
		r, err := parseAnswer(m.Payload[9:])
		if err != nil {
			n.log.Debug("lookup answer", "err", err)
			return
		}
		if r.root != m.Origin.ID {
			n.log.Debug("lookup answer not sent by the root it names", "root", r.root.Short(), "origin", m.Origin.ID.Short())
			return
		}
		r.rootPeer = peer.ID(m.Origin.Addr)
		if ch := n.lookups[req]; ch != nil {
			delete(n.lookups, req)
			ch <- r
		}
	}
}

var errAnswer = errors.New("pastry: malformed lookup answer")

// maxAnswerPath is the most path entries an answer carries (a count byte).
const maxAnswerPath = 255

// appendAnswer encodes the body of a lookup answer (after its type byte
// and request number): [hops u16][root 16][path count u8][path ids, 16
// each], the path cut to its first maxAnswerPath nodes. parseAnswer reads
// it.
func appendAnswer(b []byte, hops uint16, root id.ID, pathLen int, path func(int) id.ID) []byte {
	b = binary.BigEndian.AppendUint16(b, hops)
	b = append(b, root[:]...)
	pathLen = min(pathLen, maxAnswerPath)
	b = append(b, byte(pathLen))
	for i := range pathLen {
		x := path(i)
		b = append(b, x[:]...)
	}
	return b
}

// parseAnswer reads what appendAnswer wrote; anything else is errAnswer.
func parseAnswer(b []byte) (lookupReply, error) {
	var r lookupReply
	if len(b) < 2+16+1 {
		return r, errAnswer
	}
	r.hops = int(binary.BigEndian.Uint16(b))
	copy(r.root[:], b[2:18])
	k := int(b[18])
	b = b[19:]
	if len(b) != 16*k {
		return r, errAnswer
	}
	for i := range k {
		var x id.ID
		copy(x[:], b[16*i:])
		r.path = append(r.path, x)
	}
	return r, nil
}

// connected reports whether h can be reached without a dial: over libp2p,
// whether the host has a connection to it; over another transport, always.
// A choice of path only; liveness is the protocol's (acks and probes).
func (n *Node) connected(h id.Handle) bool {
	if n.lp == nil {
		return true
	}
	return n.lp.Host().Network().Connectedness(peer.ID(h.Addr)) == network.Connected
}
