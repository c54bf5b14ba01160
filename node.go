package pastry

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// Errors returned by a Node.
var (
	ErrClosed     = errors.New("pastry: node closed")
	ErrJoinFailed = errors.New("pastry: join failed")
)

// Node is a Pastry node running on a libp2p host (or, in tests, on an
// in-memory transport). Its methods are safe for concurrent use.
type Node struct {
	opts  options
	tr    transport.Transport
	lp    *transport.Libp2p // nil on other transports
	ownTr bool
	self  id.Handle
	log   *slog.Logger
	start time.Time

	c       *core.Machine // owned by the loop goroutine
	inbox   chan *core.Message
	calls   chan func()
	routes  chan func() // Route's and Lookup's, paced by win
	win     routeWindow // loop goroutine only
	guard   connGuard   // loop goroutine only
	quit    chan struct{}
	done    chan struct{}
	closing sync.Once
	timer   *time.Timer

	status  atomic.Uint32 // core.Status, published by the loop
	joined  chan struct{} // closed when the node first joins
	joinedO sync.Once

	// Proximity measurements in flight, bounded by opts.pings.
	pingMu  sync.Mutex
	pinging map[peer.ID]bool
	// Connections measurements opened, closed when unused (conns.go),
	// and the budget of the dials they make (dialbudget.go).
	dialed    measureConns
	reaped    atomic.Uint64
	budget    dialBudget
	throttled atomic.Uint64
	stepFrom  peer.ID // the sender of the message being stepped; loop goroutine only

	// Lookups waiting for their reply; loop goroutine only.
	lookups map[uint64]chan lookupReply
	// The lookup-duration histogram of the latest RegisterMetrics, if any.
	lookupRec atomic.Pointer[lookupRecorder]
	nextReq   uint64

	inboxDrops  atomic.Uint64
	stepErrors  atomic.Uint64
	routeErrors atomic.Uint64
}

// New attaches a Pastry node to h, which must have an Ed25519 identity. The
// node speaks /pastry/1.0.0 (under WithProtocolPrefix's prefix). Close the
// node before the host; the host stays the caller's.
func New(h host.Host, opts ...Option) (*Node, error) {
	if h == nil {
		return nil, errors.New("pastry: New needs a host")
	}
	o, err := collect(opts)
	if err != nil {
		return nil, err
	}
	self, err := secure.HandleFromPeer(h.ID())
	if err != nil {
		return nil, fmt.Errorf("pastry: host identity: %w", err)
	}
	n := newNode(o, self)
	lp, err := transport.NewLibp2p(h, n.onMessage, append([]transport.Option{transport.Logger(o.logger)}, o.transport...)...)
	if err != nil {
		return nil, err
	}
	n.tr, n.lp, n.ownTr = lp, lp, true
	if err := n.startCore(); err != nil {
		lp.Close()
		return nil, err
	}
	return n, nil
}

// NewWithTransport runs a node over a transport the caller built (the
// in-memory hub in tests). attach is called with the node's message
// handler and returns the transport; the node does not close it.
func NewWithTransport(self id.Handle, attach func(transport.Handler) (transport.Transport, error), opts ...Option) (*Node, error) {
	o, err := collect(opts)
	if err != nil {
		return nil, err
	}
	n := newNode(o, self)
	if n.tr, err = attach(n.onMessage); err != nil {
		return nil, err
	}
	if err := n.startCore(); err != nil {
		return nil, err
	}
	return n, nil
}

func collect(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

func newNode(o options, self id.Handle) *Node {
	return &Node{
		opts: o, self: self, start: time.Now(),
		log:     o.logger.With("node", self.ID.Short()),
		inbox:   make(chan *core.Message, o.inbox),
		calls:   make(chan func(), callQueue),
		routes:  make(chan func(), callQueue),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		joined:  make(chan struct{}),
		pinging: map[peer.ID]bool{},
		lookups: map[uint64]chan lookupReply{},
	}
}

func (n *Node) startCore() error {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return fmt.Errorf("pastry: seed: %w", err)
	}
	env := &runtimeEnv{n: n, rng: rand.New(rand.NewChaCha8(seed))}
	c, err := core.NewMachine(n.opts.core, n.self, env)
	if err != nil {
		return err
	}
	if err := c.RegisterApplication(lookupAppID, &lookupApp{n: n}); err != nil {
		return err
	}
	n.c = c
	if n.opts.window > 0 {
		n.win = newRouteWindow(n.opts.window, n.opts.core.HopTimeoutMin)
	}
	n.timer = time.NewTimer(time.Hour)
	n.timer.Stop()
	if r, ok := n.tr.(transport.UnsentReporter); ok {
		r.ReportUnsent(n.onUnsent)
	}
	go n.loop()
	return nil
}

// onUnsent is the transport's report of a message it could not send: the
// core re-routes a hop waiting for its ack at once, rather than at its
// timeout. When the loop's queue is full the report is dropped, and the
// hop's timeout does it.
func (n *Node) onUnsent(u transport.Unsent) {
	select {
	case n.calls <- func() { n.c.Unsent(n.now(), u.To, u.Type, u.Seq) }:
	default:
	}
}

// Self is this node's handle (nodeId and peer ID).
func (n *Node) Self() id.Handle { return n.self }

// ID is this node's nodeId.
func (n *Node) ID() id.ID { return n.self.ID }

// State is the routing state, for lock-free reads.
func (n *Node) State() *routing.State { return n.c.State() }

// Transport is the node's transport.
func (n *Node) Transport() transport.Transport { return n.tr }

// Status is the node's place in the overlay's life cycle.
func (n *Node) Status() core.Status { return core.Status(n.status.Load()) }

// now is the core's clock: time since the node started, never zero.
func (n *Node) now() time.Duration { return time.Since(n.start) + time.Millisecond }

// onMessage is the transport's handler: queue for the loop, or drop.
func (n *Node) onMessage(m *core.Message) {
	select {
	case n.inbox <- m:
	default:
		n.inboxDrops.Add(1)
	}
}

// loop is the node's one goroutine that touches the core.
func (n *Node) loop() {
	defer close(n.done)
	var reap <-chan time.Time // libp2p only: see measureConns
	if n.lp != nil {
		t := time.NewTicker(n.opts.reapEvery)
		defer t.Stop()
		reap = t.C
	}
	for {
		routes := n.routes
		if n.opts.window > 0 && !n.win.open(n.c.Load()) {
			routes = nil // held back until acks (or timeouts) come
		}
		select {
		case <-n.quit:
			if n.lp != nil {
				n.guard.release(n.lp)
			}
			return
		case m := <-n.inbox:
			n.stepFrom = peer.ID(m.From.Addr) // the handles it names are its (dialBudget)
			err := n.c.Step(n.now(), m)
			n.stepFrom = ""
			if err != nil {
				n.stepErrors.Add(1)
				n.log.Debug("message refused", "err", err)
			}
		case f := <-routes:
			f()
		case f := <-n.calls:
			f()
		case <-n.timer.C:
			n.c.Tick(n.now())
		case <-reap:
			n.reapMeasureConns()
		}
		n.flush()
		if n.opts.window > 0 {
			n.win.observe(n.now(), n.c.Load())
		}
	}
}

// flush carries out the core's Ready: send, re-arm the timer, publish the
// status.
func (n *Node) flush() {
	rd := n.c.Ready()
	for i := range rd.Messages {
		if err := n.tr.Send(&rd.Messages[i]); err != nil {
			n.log.Debug("send", "to", rd.Messages[i].To, "type", rd.Messages[i].Type, "err", err)
		}
	}
	n.c.Advance()
	n.timer.Stop()
	if rd.WakeAt != 0 {
		n.timer.Reset(max(0, rd.WakeAt-n.now()))
	}
	st := n.c.Status()
	n.status.Store(uint32(st))
	if st == core.StatusJoined {
		n.joinedO.Do(func() { close(n.joined) })
	}
	if n.lp != nil {
		n.guard.sync(n.lp, n.c.State())
	}
}

// callQueue bounds the closures waiting for the event loop, in each of
// its two queues (Route's and Lookup's, paced by the route window, and
// call's); beyond it their callers wait.
const callQueue = 256

// call runs f on the loop goroutine and waits for it.
func (n *Node) call(ctx context.Context, f func()) error {
	finished := make(chan struct{})
	// Flush before reporting back, so that the caller sees what f did (a
	// join in progress, say) published, not the state before it.
	select {
	case n.calls <- func() { f(); n.flush(); close(finished) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.quit:
		return ErrClosed
	}
	select {
	case <-finished:
		return nil
	case <-n.quit:
		return ErrClosed
	}
}

// Join joins the overlay through the first bootstrap node that answers, in
// order, or starts a new overlay when none is given. It returns when the
// node has joined and its immediate neighbours know of it (until then it
// forwards messages but holds those it is the root of; see core's
// activate.go), or with ErrJoinFailed when no bootstrap node worked, or
// with ctx's error.
func (n *Node) Join(ctx context.Context, bootstrap ...peer.AddrInfo) error {
	if len(bootstrap) == 0 {
		var err error
		if cerr := n.call(ctx, func() { err = n.c.Bootstrap(n.now()) }); cerr != nil {
			return cerr
		}
		return err
	}
	var errs []error
	for _, b := range bootstrap {
		if b.ID == peer.ID(n.self.Addr) {
			continue
		}
		err := n.joinVia(ctx, b)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, fmt.Errorf("via %s: %w", b.ID, err))
	}
	return fmt.Errorf("%w: %w", ErrJoinFailed, errors.Join(errs...))
}

func (n *Node) joinVia(ctx context.Context, b peer.AddrInfo) error {
	h, err := secure.HandleFromPeer(b.ID)
	if err != nil {
		return err
	}
	if n.lp != nil && len(b.Addrs) > 0 {
		n.lp.Host().Peerstore().AddAddrs(b.ID, b.Addrs, peerstore.PermanentAddrTTL)
	}
	var jerr error
	if err := n.call(ctx, func() { jerr = n.c.Join(n.now(), h) }); err != nil {
		return err
	}
	if jerr != nil {
		return jerr
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.joined:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-n.quit:
			return ErrClosed
		case <-tick.C:
			if n.Status() == core.StatusIdle { // the core gave up
				return errors.New("no answer to the join")
			}
		}
	}
}

// RegisterApplication multiplexes app over the node under appID; its
// upcalls run on the node's loop goroutine and must not block.
func (n *Node) RegisterApplication(appID core.AppID, app core.Application) error {
	if appID == lookupAppID {
		return fmt.Errorf("%w: %d is reserved", core.ErrDuplicate, appID)
	}
	var err error
	if cerr := n.call(context.Background(), func() { err = n.c.RegisterApplication(appID, app) }); cerr != nil {
		return cerr
	}
	return err
}

// Route sends payload to the root of key, for application app. It
// returns once the message is queued for the event loop, waiting only
// while that queue (256 messages) is full (up to ctx), and fails with
// core.ErrNotJoined before the node has joined. The loop sends queued
// messages as the route window allows (see WithRouteWindow). Route copies
// payload.
func (n *Node) Route(ctx context.Context, key id.ID, app core.AppID, payload []byte) error {
	select {
	case <-n.quit:
		return ErrClosed
	default:
	}
	if n.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	p := slices.Clone(payload)
	f := func() {
		if err := n.c.Route(n.now(), key, app, p, nil); err != nil {
			n.routeErrors.Add(1) // the node stopped being joined meanwhile
			n.log.Debug("route refused", "key", key, "err", err)
		}
	}
	select {
	case n.routes <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.quit:
		return ErrClosed
	}
}

// Close stops the node (without a graceful leave; see Leave) and its
// transport if New created it. The host stays open.
func (n *Node) Close() error {
	n.closing.Do(func() {
		close(n.quit)
		<-n.done
		if n.ownTr {
			n.tr.Close()
		}
	})
	return nil
}

// Leave tells the leaf and neighbourhood sets that this node is leaving,
// gives the messages a moment to go out, and closes the node.
func (n *Node) Leave(ctx context.Context) error {
	var err error
	if cerr := n.call(ctx, func() { err = n.c.Leave(n.now()) }); cerr != nil {
		return cerr
	}
	t := time.NewTimer(100 * time.Millisecond)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	n.Close()
	return err
}

// Stats returns the protocol's and the runtime's counters.
func (n *Node) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := n.call(ctx, func() { s.Core, s.RouteWindow = n.c.Stats(), int(n.win.w) })
	s.Transport = n.tr.Stats()
	s.InboxDrops = n.inboxDrops.Load()
	s.StepErrors = n.stepErrors.Load()
	s.RouteErrors = n.routeErrors.Load()
	s.RoutesQueued = len(n.routes)
	s.MeasureConnsClosed = n.reaped.Load()
	s.MeasuresThrottled = n.throttled.Load()
	return s, err
}

// Stats are a node's counters.
type Stats struct {
	Core       core.Stats
	Transport  transport.Stats
	InboxDrops uint64 // received messages dropped because the loop was behind
	StepErrors uint64 // received messages the core refused as invalid
	// RouteErrors counts messages Route queued that the core refused when
	// their turn came (the node had stopped being joined).
	RouteErrors uint64
	// RouteWindow is the window pacing Route and Lookup (0: not paced),
	// rounded down (like Core, zero when the loop did not answer), and
	// RoutesQueued the messages they queued that wait for it or for the
	// loop.
	RouteWindow, RoutesQueued int
	// MeasureConnsClosed counts connections a proximity measurement
	// opened to a peer the routing state did not take, closed once no
	// stream used them (libp2p only).
	MeasureConnsClosed uint64
	// MeasuresThrottled counts proximity measurements not started because
	// a dial to the peer would have exceeded the dial budget of its
	// addresses or of the peer that sent its handle.
	MeasuresThrottled uint64
}

// runtimeEnv is the core's environment: a ChaCha8 generator seeded from
// crypto/rand, and proximity from the transport's ping RTTs.
type runtimeEnv struct {
	n   *Node
	rng *rand.Rand
}

func (e *runtimeEnv) Uint64() uint64 { return e.rng.Uint64() }

// Proximity returns the measured RTT to h, or UnknownProximity while a
// measurement is started in the background.
func (e *runtimeEnv) Proximity(h id.Handle) uint32 {
	p := peer.ID(h.Addr)
	if rtt, ok := e.n.tr.RTT(p); ok {
		return uint32(min(rtt.Microseconds(), int64(routing.UnknownProximity-1)))
	}
	e.n.measure(p, e.n.stepFrom) // the core asks on the loop goroutine
	return routing.UnknownProximity
}

// measure pings p in the background, at most opts.pings at a time and,
// when that needs a dial, within the dial budget of p's addresses and of
// sender, the peer whose message named p ("" for none), or of the address
// sender's connection comes from (dialBudget).
func (n *Node) measure(p, sender peer.ID) {
	if p == "" || p == peer.ID(n.self.Addr) {
		return
	}
	n.pingMu.Lock()
	if n.pinging[p] || len(n.pinging) >= n.opts.pings {
		n.pingMu.Unlock()
		return
	}
	n.pinging[p] = true
	n.pingMu.Unlock()
	fresh := n.lp != nil && n.lp.Host().Network().Connectedness(p) != network.Connected
	if fresh && !n.budget.take(n.lp.Host().Peerstore().Addrs(p), n.senderKey(sender), time.Now()) {
		n.throttled.Add(1) // proximity stays unknown; asked again when next heard
		n.pingMu.Lock()
		delete(n.pinging, p)
		n.pingMu.Unlock()
		return
	}
	go func() {
		defer func() {
			n.pingMu.Lock()
			delete(n.pinging, p)
			n.pingMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-n.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := n.tr.Ping(ctx, p); err != nil {
			n.log.Debug("ping", "peer", p, "err", err)
		}
		if fresh {
			n.dialed.add(p)
		}
	}()
}

// senderKey names sender's dial budget from the addresses of its
// connections (dialBudget).
func (n *Node) senderKey(sender peer.ID) string {
	if sender == "" {
		return ""
	}
	var remotes []ma.Multiaddr
	for _, c := range n.lp.Host().Network().ConnsToPeer(sender) {
		remotes = append(remotes, c.RemoteMultiaddr())
	}
	return senderKey(sender, remotes)
}

// putUint64 is a helper for the lookup wire format.
func putUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
