package pastry

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/routing"
)

// protector is what connGuard needs of the transport (transport.Libp2p).
type protector interface {
	Protect(p peer.ID)
	Unprotect(p peer.ID) bool
}

// connGuard keeps every peer of the node's routing state (leaf set,
// routing table and neighbourhood set) protected in the host's connection
// manager, and no other. When the host holds more connections than the
// manager's high watermark, those trimmed are then the ones nothing in
// the state needs: connections opened to measure a candidate's proximity,
// for join traffic, or by other protocols. A trimmed routing-table
// entry would cost a new connection (a dial and a security handshake) on
// the next message routed through it. The state is bounded (L + M +
// (2^b - 1) x log_{2^b} N peers), so is the protected set.
//
// sync runs on the loop goroutine after every input and does work only
// when the state's generation moved. Loop goroutine only.
type connGuard struct {
	gen       uint64
	started   bool
	protected map[peer.ID]struct{}
	next      map[peer.ID]struct{}
	buf       []routing.Entry
}

// sync brings the protected set in line with st.
func (g *connGuard) sync(p protector, st *routing.State) {
	gen := st.Generation()
	if g.started && gen == g.gen {
		return
	}
	g.gen, g.started = gen, true
	if g.protected == nil {
		g.protected, g.next = map[peer.ID]struct{}{}, map[peer.ID]struct{}{}
	}
	clear(g.next)
	add := func(es []routing.Entry) {
		for _, e := range es {
			g.next[peer.ID(e.Addr)] = struct{}{}
		}
	}
	g.buf = st.Leaves.Members(g.buf[:0])
	add(g.buf)
	add(st.Neighbors.Members())
	st.Table.ForEach(func(_, _ int, e routing.Entry) bool {
		g.next[peer.ID(e.Addr)] = struct{}{}
		return true
	})
	delete(g.next, peer.ID(st.Self.Addr))
	for id := range g.protected {
		if _, ok := g.next[id]; !ok {
			p.Unprotect(id)
		}
	}
	for id := range g.next {
		if _, ok := g.protected[id]; !ok {
			p.Protect(id)
		}
	}
	g.protected, g.next = g.next, g.protected
}

// release unprotects every peer; the node is closing.
func (g *connGuard) release(p protector) {
	for id := range g.protected {
		p.Unprotect(id)
	}
	clear(g.protected)
}
