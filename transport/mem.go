package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Hub is an in-memory network connecting Mem endpoints in one process, for
// tests of everything above the transport. It keeps Transport's
// semantics: per-link ordering, bounded queues, non-blocking Send, the
// handler never called concurrently for one sender, From checked against
// the sending endpoint, pings answered by the remote endpoint over the
// reverse link. Links may be given a latency and cut one way at a time.
type Hub struct {
	latency  func(from, to peer.ID) time.Duration
	queueLen int
	codec    bool
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex // guards everything below and every memLink
	closed bool
	eps    map[peer.ID]*Mem
	links  map[[2]peer.ID]*memLink
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// HubLatency sets the one-way delay of each link (0 by default). It must
// return the same value for a link every time, so that ordering holds.
func HubLatency(f func(from, to peer.ID) time.Duration) HubOption {
	return func(h *Hub) { h.latency = f }
}

// HubQueueLen bounds each link's queue (default 1024 messages).
func HubQueueLen(n int) HubOption {
	return func(h *Hub) {
		if n > 0 {
			h.queueLen = n
		}
	}
}

// HubCodec makes every message cross the hub as wire bytes, through the
// same codec and checks as the libp2p transport. Handles must then be
// real identities (secure.HandleFromPeer); otherwise any Addr will do.
func HubCodec() HubOption { return func(h *Hub) { h.codec = true } }

// NewHub returns an empty network.
func NewHub(opts ...HubOption) *Hub {
	h := &Hub{
		queueLen: 1024, done: make(chan struct{}),
		eps: make(map[peer.ID]*Mem), links: make(map[[2]peer.ID]*memLink),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Close detaches every endpoint and waits for in-flight deliveries.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	eps := make([]*Mem, 0, len(h.eps))
	for _, m := range h.eps {
		eps = append(eps, m)
	}
	close(h.done)
	h.mu.Unlock()
	for _, m := range eps {
		m.Close()
	}
	h.wg.Wait()
}

// SetLink cuts (up=false) or restores the link from one endpoint to
// another, in that direction only. Messages on a cut link are lost
// silently, as in a partition.
func (h *Hub) SetLink(from, to peer.ID, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.linkLocked(from, to)
	l.down = !up
	if l.down {
		l.q = nil
	}
}

// Attach adds an endpoint for self (self.Addr names it and must be unique)
// that delivers to handler.
func (h *Hub) Attach(self id.Handle, handler Handler) (*Mem, error) {
	if self.Addr == "" || handler == nil {
		return nil, errors.New("transport: Attach needs a handle with an Addr and a handler")
	}
	m := &Mem{hub: h, self: self, id: peer.ID(self.Addr), handler: handler,
		rtt: newRTTTable(4096), pings: make(map[uint64]*memPing),
		measuring: inFlight{max: 16}, stop: make(chan struct{})}
	if h.codec {
		var err error
		if m.codec, err = NewCodec(Limits{}, nil); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.eps[m.id] != nil {
		return nil, fmt.Errorf("transport: endpoint %s already attached", self)
	}
	h.eps[m.id] = m
	return m, nil
}

// Mem is an endpoint of a Hub.
type Mem struct {
	hub     *Hub
	self    id.Handle
	id      peer.ID
	handler Handler
	codec   *Codec
	ctr     counters
	rtt     *rttTable
	unsent  atomic.Pointer[func(Unsent)] // ReportUnsent's
	// measuring bounds Measure's pings; stop ends them at Close.
	measuring inFlight
	stop      chan struct{}

	mu     sync.Mutex
	closed bool
	nonce  uint64
	pings  map[uint64]*memPing
	wg     sync.WaitGroup // handler calls in progress
}

var _ Transport = (*Mem)(nil)

// ReportUnsent implements UnsentReporter: fn hears of every message sent
// to an address with no endpoint (as over libp2p, where no stream would
// open), from within Send.
func (m *Mem) ReportUnsent(fn func(Unsent)) { m.unsent.Store(&fn) }

type memPing struct {
	peer peer.ID
	sent time.Time
	done chan struct{}
	rtt  time.Duration
	err  error
}

// memItem is a frame in flight on a link.
type memItem struct {
	kind  FrameKind
	msg   *core.Message // without HubCodec: a deep copy
	wire  []byte        // with HubCodec
	from  id.Handle     // the sender, which the wire leaves out
	nonce uint64
	typ   core.MsgType
	size  int
	at    time.Time // delivery time
}

type memLink struct {
	from, to peer.ID
	q        []memItem
	running  bool
	down     bool
}

// Local returns the endpoint's handle.
func (m *Mem) Local() id.Handle { return m.self }

// Stats implements Transport.
func (m *Mem) Stats() Stats { return m.ctr.snapshot() }

// RTT implements Transport.
func (m *Mem) RTT(h id.Handle) (time.Duration, bool) { return m.rtt.get(h.Addr) }

// Measure implements Transport: a ping in the background, at most 16 at
// a time (a hub has no dials to budget).
func (m *Mem) Measure(h, _ id.Handle) {
	if h.Addr == "" || h.Addr == m.self.Addr || !m.measuring.start(h.Addr) {
		return
	}
	go func() {
		defer m.measuring.done(h.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, _ = m.Ping(ctx, h)
	}()
}

// Send implements Transport.
func (m *Mem) Send(msg *core.Message) error {
	if msg == nil || !msg.Type.Valid() {
		m.ctr.drop(DropEncode)
		return fmt.Errorf("%w: cannot send %v", ErrBadType, msg)
	}
	if msg.To.Addr == "" || msg.To.Addr == m.self.Addr {
		m.ctr.drop(DropEncode)
		return fmt.Errorf("%w: %s to %q", ErrUnreachable, msg.Type, msg.To.Addr)
	}
	it := memItem{kind: FrameMessage, typ: msg.Type, from: m.self}
	if m.codec != nil {
		b, err := m.codec.AppendMessage(nil, msg)
		if err != nil {
			m.ctr.drop(DropEncode)
			return fmt.Errorf("transport: send %s to %s: %w", msg.Type, msg.To, err)
		}
		it.wire, it.size = b, frameHeaderLen(len(b))+len(b)
	} else {
		it.msg = cloneMessage(msg)
	}
	if err := m.hub.enqueue(m, peer.ID(msg.To.Addr), it); err != nil {
		if err != errNoEndpoint {
			return err
		}
		if fn := m.unsent.Load(); fn != nil {
			(*fn)(Unsent{To: msg.To.ID, Type: msg.Type, Seq: msg.Seq})
		}
		return nil // as over libp2p: the loss shows later, not in Send
	}
	m.ctr.sent(msg.Type, it.size)
	return nil
}

// cloneMessage copies m and the slices it owns.
func cloneMessage(m *core.Message) *core.Message {
	c := *m
	c.Payload = slices.Clone(m.Payload)
	c.Path = slices.Clone(m.Path)
	c.Handles = slices.Clone(m.Handles)
	return &c
}

// Ping implements Transport.
func (m *Mem) Ping(ctx context.Context, h id.Handle) (time.Duration, error) {
	p := peer.ID(h.Addr)
	if p == m.id || p == "" {
		return 0, fmt.Errorf("%w: cannot ping %q", ErrUnreachable, p)
	}
	w := &memPing{peer: p, sent: time.Now(), done: make(chan struct{})}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, ErrClosed
	}
	m.nonce++
	nonce := m.nonce
	m.pings[nonce] = w
	m.mu.Unlock()
	if err := m.hub.enqueue(m, p, memItem{kind: FramePing, nonce: nonce}); err != nil {
		m.finishPing(nonce, err)
		return 0, err
	}
	m.ctr.pingsSent.Add(1)
	select {
	case <-w.done:
	case <-ctx.Done():
		m.finishPing(nonce, ctx.Err())
		<-w.done
	}
	return w.rtt, w.err
}

// finishPing completes a ping once; err nil means its pong arrived. It
// returns the round-trip time and whether the ping was still waiting.
func (m *Mem) finishPing(nonce uint64, err error) (time.Duration, bool) {
	m.mu.Lock()
	w, ok := m.pings[nonce]
	delete(m.pings, nonce)
	m.mu.Unlock()
	if !ok {
		return 0, false
	}
	w.err = err
	if err == nil {
		w.rtt = max(time.Since(w.sent), 1)
		m.ctr.pongsReceived.Add(1)
		m.rtt.update(string(w.peer), w.rtt) // before Ping returns, so RTT reflects it
	}
	close(w.done)
	return w.rtt, true
}

// Close implements Transport: the endpoint leaves the hub.
func (m *Mem) Close() error {
	h := m.hub
	h.mu.Lock()
	if h.eps[m.id] == m {
		delete(h.eps, m.id)
	}
	h.mu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	pending := make([]uint64, 0, len(m.pings))
	for n := range m.pings {
		pending = append(pending, n)
	}
	m.mu.Unlock()
	for _, n := range pending {
		m.finishPing(n, ErrClosed)
	}
	m.wg.Wait()
	return nil
}

// call runs f (a handler call) unless the endpoint is closed; Close waits
// for it.
func (m *Mem) call(f func()) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	f()
}

func (h *Hub) linkLocked(from, to peer.ID) *memLink {
	k := [2]peer.ID{from, to}
	l := h.links[k]
	if l == nil {
		l = &memLink{from: from, to: to}
		h.links[k] = l
	}
	return l
}

// enqueue puts it on the link from src to dst.
func (h *Hub) enqueue(src *Mem, dst peer.ID, it memItem) error {
	var d time.Duration
	if h.latency != nil {
		d = h.latency(src.id, dst)
	}
	it.at = time.Now().Add(d)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed || h.eps[src.id] != src:
		return ErrClosed
	case h.eps[dst] == nil:
		src.ctr.drop(DropUnreachable)
		if it.kind == FramePing {
			return fmt.Errorf("%w: %s", ErrUnreachable, dst)
		}
		return errNoEndpoint
	}
	l := h.linkLocked(src.id, dst)
	if l.down {
		return nil
	}
	if len(l.q) >= h.queueLen {
		src.ctr.drop(DropQueueFull)
		return fmt.Errorf("%w: to %s", ErrQueueFull, dst)
	}
	l.q = append(l.q, it)
	if !l.running {
		l.running = true
		h.wg.Add(1)
		go h.run(l)
	}
	return nil
}

// errNoEndpoint is enqueue's answer for a message to an address with no
// endpoint: Send reports it unsent and returns nil.
var errNoEndpoint = errors.New("transport: no endpoint")

// run delivers a link's queue in order, then exits.
func (h *Hub) run(l *memLink) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if len(l.q) == 0 || h.closed {
			l.q, l.running = nil, false
			h.mu.Unlock()
			return
		}
		it := l.q[0]
		l.q[0] = memItem{}
		l.q = l.q[1:]
		h.mu.Unlock()
		if d := time.Until(it.at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-h.done:
				t.Stop()
				continue
			}
		}
		h.mu.Lock()
		rcv, snd := h.eps[l.to], h.eps[l.from]
		down := l.down
		h.mu.Unlock()
		if rcv == nil || down {
			continue
		}
		h.deliver(l, rcv, snd, it)
	}
}

func (h *Hub) deliver(l *memLink, rcv, snd *Mem, it memItem) {
	switch it.kind {
	case FramePing:
		if snd != nil {
			h.enqueue(rcv, l.from, memItem{kind: FramePong, nonce: it.nonce})
		}
	case FramePong:
		if _, ok := rcv.finishPing(it.nonce, nil); !ok {
			rcv.ctr.pongsLate.Add(1)
		}
	case FrameMessage:
		msg := it.msg
		if rcv.codec != nil {
			f, err := rcv.codec.Decode(it.wire)
			if err == nil && f.Kind != FrameMessage {
				err = ErrUnexpectedFrame
			}
			if err != nil {
				rcv.ctr.reject(err)
				return
			}
			msg = f.Msg
		}
		if err := SettleEnds(msg, it.from, rcv.self); err != nil {
			rcv.ctr.reject(err)
			return
		}
		rcv.ctr.received(msg.Type, it.size)
		rcv.call(func() { rcv.handler(msg) })
	}
}
