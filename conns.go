package pastry

import (
	"sync"
	"time"

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

// defaultReapEvery is how often the loop looks for measurement
// connections to close (measureConns).
const defaultReapEvery = 10 * time.Second

// maxMeasureConns bounds measureConns; beyond it new ones are not
// recorded (the connection manager still trims them when it must).
const maxMeasureConns = 4096

// measureConns remembers the peers a proximity measurement had to dial:
// the runtime pings every node it hears of, and most of them never enter
// the routing state (at 200 nodes, 40 state peers a node against 86
// connected). Such a connection is closed once no stream uses it and the
// peer is still outside the state: the ping's and the pong's streams idle
// out first (10 s, transport.PingIdleTimeout, as they carried nothing
// else), and a peer that relies on the connection keeps a stream on it
// (heartbeats, probes, routed messages: 2 min idle). One that did not
// recently pays a dial when it next sends. Connections others opened, or
// that existed before the ping, are left alone, and so are those carrying
// any stream of another protocol: on an integrator's host they may be
// someone else's. Written by ping goroutines, swept by the loop.
type measureConns struct {
	mu sync.Mutex
	m  map[peer.ID]struct{}
}

func (d *measureConns) add(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[peer.ID]struct{}{}
	}
	if len(d.m) < maxMeasureConns {
		d.m[p] = struct{}{}
	}
}

func (d *measureConns) peers(buf []peer.ID) []peer.ID {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.m {
		buf = append(buf, p)
	}
	return buf
}

func (d *measureConns) forget(p peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, p)
}

// reapMeasureConns closes the measurement connections nothing needs (see
// measureConns). Loop goroutine only; the close itself runs aside.
func (n *Node) reapMeasureConns() {
	nw := n.lp.Host().Network()
	for _, p := range n.dialed.peers(nil) {
		if _, ok := n.guard.protected[p]; ok {
			n.dialed.forget(p) // the state took it
			continue
		}
		conns := nw.ConnsToPeer(p)
		busy := false
		for _, c := range conns {
			busy = busy || len(c.GetStreams()) > 0
		}
		if busy {
			continue // in use: looked at again next time
		}
		n.dialed.forget(p)
		if len(conns) > 0 {
			n.reaped.Add(1)
			go func() { _ = nw.ClosePeer(p) }()
		}
	}
}
