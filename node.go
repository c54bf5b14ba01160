package pastry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/replication"
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
// in-memory transport). Its methods are safe for concurrent use, but must
// not be called from the node's own upcalls (they run on its event loop,
// which these methods wait for): applications act through their
// core.Endpoint there.
type Node struct {
	opts  options
	tr    transport.Transport
	host  host.Host // nil on other transports
	ownTr bool
	self  id.Handle
	log   *slog.Logger
	start time.Time

	c       *core.Machine     // owned by the loop goroutine
	lk      *lookup.App       // the lookup application; loop goroutine only
	sc      *multicast.App    // Scribe; loop goroutine only
	past    *replication.Past // PAST storage; loop goroutine only
	store   replication.Store // the replicas this node holds
	topics  topics            // local subscriptions
	in      *inbox
	calls   chan func()
	routes  chan func() // Route's and Lookup's, paced by win
	win     routeWindow // loop goroutine only
	quit    chan struct{}
	done    chan struct{}
	closing sync.Once
	timer   *time.Timer

	status  atomic.Uint32 // core.Status, published by the loop
	joined  chan struct{} // closed when the node first joins
	joinedO sync.Once
	// stepFrom is the sender of the message being stepped: the
	// measurements its handles cause are charged to it. Loop goroutine
	// only.
	stepFrom id.Handle

	// The lookup-duration histogram of the latest RegisterMetrics, if any.
	lookupRec atomic.Pointer[lookupRecorder]

	stepErrors  atomic.Uint64
	routeErrors atomic.Uint64
	secLookups  secureLookupStats // lookup.go
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
	if o.security != nil && o.security.Own != nil {
		if err := o.security.Own.CheckPeer(h.ID()); err != nil {
			return nil, fmt.Errorf("pastry: host identity: %w", err)
		}
		self.ID = o.security.Own.NodeID() // certificate mode: the certified id
	}
	n := newNode(o, self)
	lp, err := transport.NewLibp2p(h, n.onMessage, append([]transport.Option{transport.Logger(o.logger)}, o.transport...)...)
	if err != nil {
		return nil, err
	}
	n.tr, n.host, n.ownTr = lp, h, true
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
	if o.security != nil && o.security.Verifier != nil {
		// Certificate mode: secure lookups route through constrained
		// tables, filled from the certified nodes the core admits.
		o.core.ConstrainedTable = true
	}
	return o, nil
}

func newNode(o options, self id.Handle) *Node {
	return &Node{
		opts: o, self: self, start: time.Now(), store: o.store,
		log:    o.logger.With("node", self.ID.Short()),
		in:     newInbox(o.inbox, o.routeRate, o.routeBurst),
		calls:  make(chan func(), callQueue),
		routes: make(chan func(), callQueue),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		joined: make(chan struct{}),
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

// Config is the node's protocol configuration (WithConfig's, or
// core.DefaultConfig).
func (n *Node) Config() core.Config { return n.opts.core }

// Status is the node's place in the overlay's life cycle.
func (n *Node) Status() core.Status { return core.Status(n.status.Load()) }

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
	if n.host != nil && len(b.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(b.ID, b.Addrs, peerstore.PermanentAddrTTL)
	}
	if h, err = n.certifiedHandle(ctx, b.ID, h); err != nil {
		return err
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

// certifiedHandle is p's handle in certificate mode (h otherwise): its id
// is the one its certificate certifies, which p sends first on every
// stream it opens, so a ping (answered on p's own stream) brings it.
func (n *Node) certifiedHandle(ctx context.Context, p peer.ID, h id.Handle) (id.Handle, error) {
	lp, ok := n.tr.(*transport.Libp2p)
	if n.opts.security == nil || n.opts.security.Verifier == nil || !ok {
		return h, nil
	}
	if _, x, ok := lp.Codec().Certificate(p); ok {
		return id.Handle{ID: x, Addr: string(p)}, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := lp.Ping(pctx, h); err != nil {
		return h, fmt.Errorf("no answer to fetch its certificate: %w", err)
	}
	_, x, ok := lp.Codec().Certificate(p)
	if !ok {
		return h, errors.New("it presented no valid certificate of this network")
	}
	return id.Handle{ID: x, Addr: string(p)}, nil
}

// RegisterApplication multiplexes app over the node under appID and
// returns its Endpoint, through which it acts (core.Endpoint: route, send,
// timers, watches). Its upcalls run on the node's loop goroutine and must
// not block; it may call its Endpoint from them, or from Do.
func (n *Node) RegisterApplication(appID core.AppID, app core.Application) (*core.Endpoint, error) {
	if appID == lookup.AppID || appID == multicast.AppID || appID == replication.AppID {
		return nil, fmt.Errorf("%w: %d is reserved", core.ErrDuplicate, appID)
	}
	var ep *core.Endpoint
	var err error
	if cerr := n.call(context.Background(), func() { ep, err = n.c.RegisterApplication(appID, app) }); cerr != nil {
		return nil, cerr
	}
	return ep, err
}

// Do runs f on the node's event loop and waits for it: the one place
// outside their upcalls where the node's applications may call their
// Endpoints. f must not block, nor call the Node's methods.
func (n *Node) Do(ctx context.Context, f func()) error { return n.call(ctx, f) }

// Route sends payload to the root of key, for application app, which
// must be registered on this node (as on every node the message passes:
// its Forward sees it there). It returns once the message is queued for
// the event loop, waiting only while that queue (256 messages) is full
// (up to ctx), and fails with core.ErrNotJoined before the node has
// joined; a message the loop then cannot route (no such application, or
// the node stopped being joined) is counted in Stats.RouteErrors. The loop sends queued
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
		var err error
		n.c.Run(n.now(), func() {
			if ep := n.c.Endpoint(app); ep != nil {
				err = ep.Route(key, p, nil)
			} else {
				err = fmt.Errorf("no application %d registered", app)
			}
		})
		if err != nil {
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
		n.closeTopics()
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
	err := n.call(ctx, func() {
		s.Core, s.RouteWindow = n.c.Stats(), int(n.win.w)
		s.Multicast, s.Tree = n.sc.Stats(), n.sc.Tree()
		s.Replication, s.Store = n.past.Stats(), n.store.Stats()
	})
	s.Transport = n.tr.Stats()
	s.InboxDrops = n.in.drops.Load()
	s.RateLimited = n.in.limited.Load()
	s.StepErrors = n.stepErrors.Load()
	s.RouteErrors = n.routeErrors.Load()
	s.RoutesQueued = len(n.routes)
	s.MeasureConnsClosed = s.Transport.MeasureConnsClosed
	s.MeasuresThrottled = s.Transport.MeasuresThrottled
	return s, err
}

// Stats are a node's counters.
type Stats struct {
	Core      core.Stats
	Transport transport.Stats
	// InboxDrops counts received messages dropped because the loop was
	// behind: the sender's queue, or the whole inbox, was full.
	InboxDrops uint64
	// RateLimited counts received routed messages dropped because their
	// sender exceeded WithRouteRateLimit.
	RateLimited uint64
	StepErrors  uint64 // received messages the core refused as invalid
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
	// Multicast is Scribe's counters; Tree the size of this node's part in
	// the topics' trees (zero, like Core, when the loop did not answer).
	Multicast multicast.Stats
	Tree      multicast.Tree
	// Replication is PAST's counters, Store what this node's store holds.
	Replication replication.PastStats
	Store       replication.Stats
}
