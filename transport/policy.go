package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/secure"
)

// The libp2p transport's connection policy: what it does with the
// connections of a host that others share, on the runtime's behalf.
//
//   - Proximity measurements (Measure): every node the runtime hears of is
//     pinged once in the background, within a bound on pings in flight and,
//     when the ping needs a dial, within the dial budget of the peer's
//     addresses and of the peer whose message named it (dialbudget.go).
//   - Connection protection (TrackState): every peer of the routing state
//     is protected in the host's connection manager, and no other.
//   - Measurement connections: a connection a measurement had to open is
//     closed once no stream uses it, if the peer stayed outside the state.

var (
	_ StateTracker = (*Libp2p)(nil)
	_ Connectivity = (*Libp2p)(nil)
	_ Signer       = (*Libp2p)(nil)
	_ CausedSender = (*Libp2p)(nil)
)

// SendFor implements CausedSender: a message that needs a new connection
// takes the dial budget of its addressee's addresses and of cause's, the
// one the proximity measurements take (dialbudget.go).
func (t *Libp2p) SendFor(m *core.Message, cause id.Handle) error {
	if m != nil && cause.Addr != "" && m.To.Addr != "" && m.To.Addr != cause.Addr {
		p := peer.ID(m.To.Addr)
		if t.h.Network().Connectedness(p) != network.Connected {
			addrs := t.h.Peerstore().Addrs(p)
			var err error
			switch {
			case len(addrs) == 0: // nothing to dial: fail now, not in a writer
				t.ctr.drop(DropUnreachable)
				err = fmt.Errorf("%w: %s to %s: no address", ErrUnreachable, m.Type, m.To)
			case !t.budget.take(addrs, t.senderKey(peer.ID(cause.Addr)), time.Now()):
				t.ctr.sendsThrottled.Add(1)
				err = fmt.Errorf("%w: %s to %s needs a dial beyond %s's budget", ErrThrottled, m.Type, m.To, cause)
			}
			if err != nil {
				if fn := t.unsent.Load(); fn != nil {
					(*fn)(Unsent{To: m.To.ID, Type: m.Type, Seq: m.Seq})
				}
				return err
			}
		}
	}
	return t.Send(m)
}

// Sign implements Signer with the host's private key.
func (t *Libp2p) Sign(data []byte) ([]byte, error) {
	k := t.h.Peerstore().PrivKey(t.h.ID())
	if k == nil {
		return nil, errors.New("transport: the host's peerstore holds no private key")
	}
	return k.Sign(data)
}

// Verify implements Signer: sig must be data's signature by the public
// key h's peer ID embeds (an Ed25519 peer ID is the identity multihash of
// the key).
func (t *Libp2p) Verify(h id.Handle, data, sig []byte) bool {
	pub, err := peer.ID(h.Addr).ExtractPublicKey()
	if err != nil {
		return false
	}
	ok, err := pub.Verify(data, sig)
	return ok && err == nil
}

// ValidHandle implements core.HandleChecker: h's id must be the one its
// peer ID derives (secure.HandleFromPeer), or in certificate mode the one
// its peer's verified, unexpired certificate certifies.
func (t *Libp2p) ValidHandle(h id.Handle) bool {
	if t.codec.sec.certMode() {
		_, x, ok := t.codec.Certificate(peer.ID(h.Addr))
		return ok && x == h.ID
	}
	x, err := secure.HandleFromPeer(peer.ID(h.Addr))
	return err == nil && x.ID == h.ID
}

// Measure implements Transport: a ping to h in the background, unless one
// is in flight already, MeasureLimits' bound is reached, or it would need
// a dial to a peer with no address, or beyond the budget of h's addresses
// or of sender, the peer whose message named h (its connections' address
// block; see senderKey).
func (t *Libp2p) Measure(h, sender id.Handle) {
	p := peer.ID(h.Addr)
	if p == "" || p == t.h.ID() || !t.measuring.start(h.Addr) {
		return
	}
	fresh := t.h.Network().Connectedness(p) != network.Connected
	if fresh {
		addrs := t.h.Peerstore().Addrs(p)
		if len(addrs) == 0 { // nothing to dial: asked again when next heard
			t.measuring.done(h.Addr)
			return
		}
		if !t.budget.take(addrs, t.senderKey(peer.ID(sender.Addr)), time.Now()) {
			t.ctr.measuresThrottled.Add(1) // proximity stays unknown; asked again when next heard
			t.measuring.done(h.Addr)
			return
		}
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.measuring.done(h.Addr)
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		defer cancel()
		if _, err := t.ping(ctx, p); err != nil {
			t.log.Debug("ping", "peer", p, "err", err)
		}
		if fresh {
			t.dialed.add(p)
		}
	}()
}

// senderKey names sender's dial budget from the addresses of its
// connections (dialBudget).
func (t *Libp2p) senderKey(sender peer.ID) string {
	if sender == "" {
		return ""
	}
	var remotes []ma.Multiaddr
	for _, c := range t.h.Network().ConnsToPeer(sender) {
		remotes = append(remotes, c.RemoteMultiaddr())
	}
	return senderKey(sender, remotes)
}

// Connected implements Connectivity: whether the host has a connection to
// h.
func (t *Libp2p) Connected(h id.Handle) bool {
	return t.h.Network().Connectedness(peer.ID(h.Addr)) == network.Connected
}

// TrackState implements StateTracker: it keeps every peer of st (leaf
// set, routing table and neighbourhood set) protected in the host's
// connection manager, and no other. When the host holds more connections
// than the manager's high watermark, those trimmed are then the ones
// nothing in the state needs: connections opened to measure a candidate's
// proximity, for join traffic, or by other protocols. A trimmed
// routing-table entry would cost a new connection (a dial and a security
// handshake) on the next message routed through it. The state is bounded
// (L + M + (2^b - 1) x log_{2^b} N peers), so is the protected set. It
// does work only when the state's generation moved. TrackState(nil)
// unprotects every peer (the node is closing).
func (t *Libp2p) TrackState(st *routing.State) {
	t.guard.mu.Lock()
	defer t.guard.mu.Unlock()
	if st == nil {
		t.guard.release(t)
		return
	}
	t.guard.sync(t, st)
}

// protector is what connGuard needs of the transport.
type protector interface {
	Protect(p peer.ID)
	Unprotect(p peer.ID) bool
}

// connGuard is TrackState's protected set. Guarded by mu: the sweep of
// measurement connections reads it.
type connGuard struct {
	mu        sync.Mutex
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

// release unprotects every peer.
func (g *connGuard) release(p protector) {
	for id := range g.protected {
		p.Unprotect(id)
	}
	clear(g.protected)
	g.started = false
}

func (g *connGuard) isProtected(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.protected[p]
	return ok
}

// maxMeasureConns bounds measureConns; beyond it new ones are not
// recorded (the connection manager still trims them when it must).
const maxMeasureConns = 4096

// measureConns remembers the peers a proximity measurement, or a writer
// that carried only probes and probe replies, had to dial: the runtime
// pings every node it hears of and the core probes every candidate before
// admitting it, and most of them never enter the routing state (at 200
// nodes, 40 state peers a node against 86 connected). Such a connection
// is closed once no stream uses it and the peer is still outside the
// state: the streams of pings, pongs, probes and replies idle out first
// (PingIdleTimeout, as they carried nothing else), and a peer that relies
// on the connection keeps a stream on it (heartbeats, routed messages:
// IdleTimeout). One that did not recently pays a dial when it next sends.
// Connections others opened, or that existed before the ping or probe,
// are left alone, and so are those carrying any stream of another
// protocol: on an integrator's host they may be someone else's. Written
// by ping goroutines and writers, swept by sweepLoop.
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

// sweepLoop closes the measurement connections nothing needs, and forgets
// the unverified peers whose time is up, every MeasureLimits sweep
// interval, until Close.
func (t *Libp2p) sweepLoop() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			t.sweepMeasureConns()
			t.sweepUnverified()
		}
	}
}

// sweepMeasureConns closes the measurement connections nothing needs (see
// measureConns).
func (t *Libp2p) sweepMeasureConns() {
	nw := t.h.Network()
	for _, p := range t.dialed.peers(nil) {
		if t.guard.isProtected(p) {
			t.dialed.forget(p) // the state took it
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
		t.dialed.forget(p)
		if len(conns) > 0 {
			t.ctr.measureConnsClosed.Add(1)
			_ = nw.ClosePeer(p)
		}
	}
}

// sweepUnverified removes from the peerstore the peers named by others
// whose addresses expired unverified (learnAddrs), so that their memory
// goes with their TTL and not with the peerstore's own collection, once
// a minute.
func (t *Libp2p) sweepUnverified() {
	ps := t.h.Peerstore()
	for _, p := range t.unverified.expired(time.Now()) {
		if t.h.Network().Connectedness(p) != network.Connected {
			ps.ClearAddrs(p)
			ps.RemovePeer(p)
		}
	}
}

// inFlight bounds background measurements: one per peer at a time, at
// most max at once. Safe for concurrent use.
type inFlight struct {
	mu  sync.Mutex
	m   map[string]bool
	max int
}

// start claims a measurement of the peer at addr; false when one is in
// flight or the bound is reached.
func (f *inFlight) start(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[addr] || len(f.m) >= f.max {
		return false
	}
	if f.m == nil {
		f.m = map[string]bool{}
	}
	f.m[addr] = true
	return true
}

func (f *inFlight) done(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, addr)
}
