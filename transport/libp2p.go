package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Libp2p is the Transport over libp2p streams.
//
// Each peer we send to gets one long-lived outbound stream, opened lazily
// by that peer's writer goroutine on the first message, carrying many
// frames, and re-opened after an error; it is closed after IdleTimeout
// without traffic. The writer drains the peer's bounded queue in batches
// and writes them under a deadline. Nothing reads an outbound stream.
// Inbound streams are read in a loop by the goroutine libp2p starts for
// them; they carry messages, pings and pongs, and a ping is answered on
// our own outbound stream to the pinger, so each direction of a pair of
// peers costs one goroutine per side. Only the newest inbound stream of a
// peer is kept.
//
// Every received message is checked before the handler sees it: each
// handle's node id is recomputed from its peer ID (by the Codec), From
// must be the authenticated remote peer and To this node. Framing errors
// and undecodable frames reset the stream; a well-framed message that
// fails a check is dropped and counted, and the stream goes on.
type Libp2p struct {
	h       host.Host
	cfg     config
	proto   protocol.ID
	codec   *Codec
	hello   []byte // certificate mode: the first frame of every stream
	handler Handler
	self    id.Handle
	log     *slog.Logger
	ctr     counters
	rtt     *rttTable
	epoch   time.Time
	nonce   atomic.Uint64
	ctx     context.Context // canceled by Close
	// stopping is set by Close before it wakes the writers.
	stopping atomic.Bool
	cancel   context.CancelFunc
	ownAddr  selfAddrs
	learned  learnedAddrs
	unsent   atomic.Pointer[func(Unsent)] // ReportUnsent's

	// The connection policy (policy.go).
	measuring  inFlight
	budget     dialBudget
	unverified unverifiedPeers
	dialed     measureConns
	guard      connGuard

	mu     sync.Mutex
	closed bool
	peers  map[peer.ID]*peerState
	pings  map[uint64]*pingWait
	live   map[network.Stream]struct{} // every stream not yet finished, for Close
	wg     sync.WaitGroup
}

var _ Transport = (*Libp2p)(nil)

// peerState is what the transport keeps per remote peer while it has a
// writer or an inbound stream. Fields marked (mu) are guarded by Libp2p.mu.
type peerState struct {
	id      peer.ID
	queue   chan *outFrame // nil: a wake-up (see wake)
	pings   chan *pingWait
	qbytes  atomic.Int64
	idleDue atomic.Bool    // the writer's idle timer fired
	running bool           // (mu) a writer goroutine is live
	refs    int            // (mu) live writer + inbound streams
	in      network.Stream // (mu) the newest inbound stream
	deliver sync.Mutex     // held while calling the handler
	delay   int64          // InjectDelay's for this peer, in ns (0: none)
}

// outFrame is an encoded frame, length prefix included, in a pooled
// buffer. Queues hold pointers to pooled outFrames: a queue of 256 values
// (48 bytes each) took 12 KiB per peer, 13% of a 200-node devnet's heap.
type outFrame struct {
	buf  *[]byte
	typ  core.MsgType
	seq  uint64
	to   id.ID
	pong bool  // a pong (queuePong), not a message
	due  int64 // with InjectDelay: when it may be written (t.now()); 0 at once
}

var framePool = sync.Pool{New: func() any { return new(outFrame) }}

// newOutFrame returns a pooled frame holding b.
func newOutFrame(b *[]byte) *outFrame {
	f := framePool.Get().(*outFrame)
	f.buf = b
	return f
}

// free recycles f and its buffer; f must not be used afterwards.
func (f *outFrame) free() {
	putBuf(f.buf)
	*f = outFrame{}
	framePool.Put(f)
}

type pingWait struct {
	peer  peer.ID
	nonce uint64
	sent  atomic.Int64 // ns since epoch, set when written
	done  chan struct{}
	rtt   time.Duration
	err   error
}

// NewLibp2p starts the transport on h: it registers the stream handler for
// the protocol and delivers received messages to handler. h's identity
// must be an Ed25519 key. Close the transport before the host.
func NewLibp2p(h host.Host, handler Handler, opts ...Option) (*Libp2p, error) {
	if h == nil || handler == nil {
		return nil, errors.New("transport: NewLibp2p needs a host and a handler")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	self, err := secure.HandleFromPeer(h.ID())
	if err != nil {
		return nil, fmt.Errorf("transport: host identity: %w", err)
	}
	sec := cfg.security
	switch {
	case sec.certMode():
		if err := sec.Own.CheckPeer(h.ID()); err != nil {
			return nil, fmt.Errorf("transport: host identity: %w", err)
		}
		self.ID = sec.Own.NodeID()
	case sec.PuzzleBits > 0:
		if bits := PuzzleBitsOf(h.ID()); bits < sec.PuzzleBits {
			return nil, fmt.Errorf("transport: host identity: %w: %d leading zero bits, the network wants %d", ErrPuzzle, bits, sec.PuzzleBits)
		}
	}
	t := &Libp2p{
		h: h, cfg: cfg, proto: ProtocolID(cfg.prefix), handler: handler, self: self,
		log: cfg.logger.With("component", "transport", "self", self.ID.Short()),
		rtt: newRTTTable(cfg.rttPeers), epoch: time.Now(),
		learned: learnedAddrs{refresh: learnedRefresh(cfg.addrTTL)},
		peers:   make(map[peer.ID]*peerState), pings: make(map[uint64]*pingWait),
		live:      make(map[network.Stream]struct{}),
		measuring: inFlight{max: cfg.measurePings},
	}
	t.codec, err = NewCodec(cfg.limits, t.addrsOf)
	if err != nil {
		return nil, err
	}
	if sec.Verifier != nil || sec.PuzzleBits > 0 {
		if err := t.codec.SetSecurity(sec); err != nil {
			return nil, err
		}
		if sec.certMode() {
			t.hello = AppendHello(nil, t.codec.ownCert)
		}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(t.proto, t.handleStream)
	t.wg.Add(1)
	go t.sweepLoop()
	return t, nil
}

// addrsOf supplies the addresses advertised with a handle.
func (t *Libp2p) addrsOf(p peer.ID) []ma.Multiaddr {
	if p == t.h.ID() {
		return t.ownAddr.get(time.Now(), t.h.Addrs)
	}
	return t.h.Peerstore().Addrs(p)
}

// Local returns this node's handle.
func (t *Libp2p) Local() id.Handle { return t.self }

// Protocol returns the protocol ID in use.
func (t *Libp2p) Protocol() protocol.ID { return t.proto }

// Host returns the libp2p host.
func (t *Libp2p) Host() host.Host { return t.h }

// protectTag marks connections the overlay needs in the connection manager.
const protectTag = "pastry"

// Protect asks the connection manager never to trim connections to p. Call
// it for every peer of the node's routing state (leaf set, routing table and
// neighbourhood set).
func (t *Libp2p) Protect(p peer.ID) { t.h.ConnManager().Protect(p, protectTag) }

// Unprotect undoes Protect; it reports whether p is still protected by
// another tag.
func (t *Libp2p) Unprotect(p peer.ID) bool { return t.h.ConnManager().Unprotect(p, protectTag) }

// ReportUnsent implements UnsentReporter: fn hears of every message the
// writers drop because no stream to its peer would open or a write
// failed.
func (t *Libp2p) ReportUnsent(fn func(Unsent)) { t.unsent.Store(&fn) }

// reportUnsent tells ReportUnsent's function of f, if there is one.
func (t *Libp2p) reportUnsent(f *outFrame) {
	if fn := t.unsent.Load(); fn != nil && !f.pong {
		(*fn)(Unsent{To: f.to, Type: f.typ, Seq: f.seq})
	}
}

// Stats implements Transport.
func (t *Libp2p) Stats() Stats {
	s := t.ctr.snapshot()
	s.Security = t.codec.SecurityStats()
	return s
}

// Codec is the transport's codec (its certificates, in certificate mode).
func (t *Libp2p) Codec() *Codec { return t.codec }

// RTT implements Transport.
func (t *Libp2p) RTT(h id.Handle) (time.Duration, bool) { return t.rtt.get(h.Addr) }

// Send implements Transport.
func (t *Libp2p) Send(m *core.Message) error {
	p, err := t.target(m)
	if err != nil {
		t.ctr.drop(DropEncode)
		return err
	}
	b := getBuf(512)
	*b, err = t.codec.AppendMessageFrame((*b)[:0], m)
	if err != nil {
		putBuf(b)
		t.ctr.drop(DropEncode)
		return fmt.Errorf("transport: send %s to %s: %w", m.Type, m.To, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		putBuf(b)
		return ErrClosed
	}
	f := newOutFrame(b)
	f.typ, f.seq, f.to = m.Type, m.Seq, m.To.ID
	if err := t.enqueueLocked(t.peerLocked(p), f); err != nil {
		return fmt.Errorf("%w: %s to %s", err, m.Type, m.To)
	}
	return nil
}

// enqueueLocked queues f for ps's writer, starting it, or drops f (and
// returns ErrQueueFull) when the queue is full in frames or bytes.
func (t *Libp2p) enqueueLocked(ps *peerState, f *outFrame) error {
	n := int64(len(*f.buf))
	if ps.delay > 0 {
		f.due = t.now() + ps.delay
	}
	if ps.qbytes.Load()+n <= int64(t.cfg.queueBytes) {
		select {
		case ps.queue <- f:
			ps.qbytes.Add(n)
			t.startWriterLocked(ps)
			return nil
		default:
		}
	}
	f.free()
	t.ctr.drop(DropQueueFull)
	t.forgetUnusedLocked(ps)
	return ErrQueueFull
}

// queuePong answers a ping from ps's peer on our own outbound stream to
// it, through its writer like any frame: the pinger's outbound stream is
// not read (see outStream). A full queue drops the pong: the ping times
// out, as it would behind a congested link.
func (t *Libp2p) queuePong(ps *peerState, nonce uint64) {
	b := getBuf(16)
	*b = appendNonceFrame((*b)[:0], fFramePong, nonce)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		putBuf(b)
		return
	}
	f := newOutFrame(b)
	f.pong = true
	_ = t.enqueueLocked(ps, f)
}

func (t *Libp2p) target(m *core.Message) (peer.ID, error) {
	if m == nil {
		return "", fmt.Errorf("%w: nil message", ErrBadType)
	}
	// The encoder checks the peer ID (against To's node id).
	p := peer.ID(m.To.Addr)
	if p == "" {
		return "", fmt.Errorf("%w: send %s: handle %s has no peer ID", ErrBadPeerID, m.Type, m.To)
	}
	if p == t.h.ID() {
		return "", fmt.Errorf("%w: %s addressed to this node", ErrUnreachable, m.Type)
	}
	return p, nil
}

// Ping implements Transport.
func (t *Libp2p) Ping(ctx context.Context, h id.Handle) (time.Duration, error) {
	return t.ping(ctx, peer.ID(h.Addr))
}

func (t *Libp2p) ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	if p == t.h.ID() || p == "" {
		return 0, fmt.Errorf("%w: cannot ping %q", ErrUnreachable, p)
	}
	w := &pingWait{peer: p, nonce: t.nonce.Add(1), done: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return 0, ErrClosed
	}
	ps := t.peerLocked(p)
	select {
	case ps.pings <- w:
		t.pings[w.nonce] = w
		t.wake(ps)
	default:
		t.forgetUnusedLocked(ps)
		t.mu.Unlock()
		return 0, fmt.Errorf("%w: pings to %s", ErrQueueFull, p)
	}
	t.startWriterLocked(ps)
	t.mu.Unlock()

	select {
	case <-w.done:
		return w.rtt, w.err
	case <-ctx.Done():
		t.finishPing(w.nonce, ctx.Err())
		<-w.done // finished by us or, just before, by the pong
		return w.rtt, w.err
	}
}

// finishPing fails the ping with this nonce, unless it is already
// complete; it reports whether it was still waiting.
func (t *Libp2p) finishPing(nonce uint64, err error) bool {
	t.mu.Lock()
	w, ok := t.pings[nonce]
	delete(t.pings, nonce)
	t.mu.Unlock()
	if !ok {
		return false
	}
	w.err = err
	close(w.done)
	return true
}

// now is the transport's monotonic clock for ping timestamps.
func (t *Libp2p) now() int64 { return int64(time.Since(t.epoch)) }

// pong settles a ping answered by p.
func (t *Libp2p) pong(p peer.ID, nonce uint64) {
	t.mu.Lock()
	w, ok := t.pings[nonce]
	if ok && w.peer == p && w.sent.Load() != 0 {
		delete(t.pings, nonce) // claimed: no one else completes it
	} else {
		ok = false
	}
	t.mu.Unlock()
	if !ok {
		t.ctr.pongsLate.Add(1)
		return
	}
	w.rtt = max(time.Duration(t.now()-w.sent.Load()), 1)
	t.ctr.pongsReceived.Add(1)
	t.rtt.update(string(p), w.rtt) // before Ping returns, so RTT reflects it
	if t.unverified.verify(p) {
		t.h.Peerstore().UpdateAddrs(p, t.cfg.unverifiedTTL, t.cfg.addrTTL)
	}
	close(w.done)
}

// peerLocked returns p's state, creating it. Callers hold t.mu and must
// take a reference (start the writer or register a stream) before
// unlocking.
func (t *Libp2p) peerLocked(p peer.ID) *peerState {
	ps := t.peers[p]
	if ps == nil {
		ps = &peerState{id: p, queue: make(chan *outFrame, t.cfg.queueLen), pings: make(chan *pingWait, 16)}
		if t.cfg.delay != nil {
			ps.delay = int64(min(max(t.cfg.delay(p), 0), maxInjectedDelay))
		}
		t.peers[p] = ps
	}
	return ps
}

// releaseLocked drops a reference to ps, forgetting it when none is left.
func (t *Libp2p) releaseLocked(ps *peerState) {
	ps.refs--
	t.forgetUnusedLocked(ps)
}

// forgetUnusedLocked forgets ps if nothing refers to it: peerLocked made
// it for a frame or ping that was then refused.
func (t *Libp2p) forgetUnusedLocked(ps *peerState) {
	if ps.refs == 0 && !ps.running && t.peers[ps.id] == ps {
		delete(t.peers, ps.id)
	}
}

func (t *Libp2p) startWriterLocked(ps *peerState) {
	if ps.running {
		return
	}
	ps.running = true
	ps.refs++
	t.wg.Add(1)
	go t.writeLoop(ps)
}

// Close implements Transport.
func (t *Libp2p) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	streams := make([]network.Stream, 0, len(t.live))
	for s := range t.live {
		streams = append(streams, s)
	}
	var pending []uint64
	for n := range t.pings {
		pending = append(pending, n)
	}
	t.mu.Unlock()

	if !t.cfg.keepHandler {
		t.h.RemoveStreamHandler(t.proto)
	}
	t.stopping.Store(true)
	t.cancel()
	t.mu.Lock()
	for _, ps := range t.peers {
		if ps.running {
			t.wake(ps)
		}
	}
	t.mu.Unlock()
	for _, s := range streams {
		s.Reset()
	}
	for _, n := range pending {
		t.finishPing(n, ErrClosed)
	}
	t.wg.Wait()
	return nil
}
