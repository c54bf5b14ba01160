package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Transport carries core messages between Pastry nodes.
//
// Semantics:
//   - Best-effort: a message may be lost (queue full, stream reset, peer
//     gone) without an error; the protocol's per-hop acks and probes
//     recover. Send returns an error only when it knows at once that the
//     message will not go out.
//   - Ordered per peer: messages sent to one peer that arrive, arrive in the
//     order Send was called.
//   - Send never blocks: each peer has a bounded queue; when it is full the
//     message is dropped (counted) and ErrQueueFull returned. Send encodes
//     or copies the message before returning, so the caller may reuse it.
//   - Received messages go to the Handler given at construction, called
//     from transport goroutines: concurrently for different peers, never
//     concurrently for the same peer, in arrival order. From is the
//     authenticated sender; every handle in the message has been checked.
//   - Liveness and proximity come from Ping and RTT, measured over the same
//     path as the messages, never from connection state.
//
// All methods are safe for concurrent use.
type Transport interface {
	// Send queues m for m.To (m.To.Addr holds the peer ID).
	Send(m *core.Message) error
	// Ping sends a transport-level ping to h and waits for its pong or
	// ctx's end. The round trip also updates RTT(h).
	Ping(ctx context.Context, h id.Handle) (time.Duration, error)
	// RTT returns the smoothed round-trip time to h measured by pings
	// (EWMA, weight 1/8 on the newest sample); false if none answered yet.
	RTT(h id.Handle) (time.Duration, bool)
	// Measure pings h in the background, so that RTT(h) comes to be
	// known: unless a measurement of h is in flight, or the transport's
	// bounds refuse it (pings in flight; the libp2p transport's dial
	// budget, charged to sender, the node whose message named h, when it
	// is not the zero handle). It never blocks.
	Measure(h, sender id.Handle)
	// Stats returns a snapshot of the counters.
	Stats() Stats
	// Close stops the transport: queued messages are dropped, streams
	// closed, goroutines ended. The handler is not called after Close
	// returns.
	Close() error
}

// StateTracker is implemented by transports that keep per-peer resources
// in line with the node's routing state (the libp2p transport protects
// the state's connections in the host's connection manager). The runtime
// calls TrackState from its event loop after every input, and
// TrackState(nil) once when the node closes; it must not block.
type StateTracker interface {
	TrackState(st *routing.State)
}

// CausedSender is implemented by transports that budget the connections
// another peer's messages make the node open (the libp2p transport's dial
// budget). SendFor is Send for a message that cause's message made the
// node send: when m.To is not connected, the dial takes a token of the
// budget of cause and of m.To's addresses; without one, m is not sent
// (counted in Stats.SendsThrottled, and reported unsent).
type CausedSender interface {
	SendFor(m *core.Message, cause id.Handle) error
}

// Connectivity is implemented by transports that pay to open a connection
// (the libp2p transport: a dial and a security handshake). Connected
// reports whether a message to h would go out without opening one. Safe
// for concurrent use; it must not block.
type Connectivity interface {
	Connected(h id.Handle) bool
}

// Signer is implemented by transports that hold the node's private key
// (the libp2p transport: the host's), for the core's Signer.
type Signer interface {
	Sign(data []byte) ([]byte, error)
	Verify(h id.Handle, data, sig []byte) bool
}

// Handler receives messages. It must not block for long: it holds up
// further messages from the same peer. It owns m.
type Handler func(m *core.Message)

// Unsent names a message that a transport accepted in Send but could not
// send: its peer was unreachable (no stream would open) or its stream
// broke before the message was written.
type Unsent struct {
	To   id.ID // the message's To
	Type core.MsgType
	Seq  uint64
}

// UnsentReporter is implemented by transports that tell when a message
// they accepted was not sent, so that the node can route around an
// unreachable next hop at once (core.Machine.Unsent) instead of waiting for
// its hop timeout. fn is called from the transport's goroutines (or from
// Send itself) and must not block. Messages dropped because the
// transport is closing are not reported.
type UnsentReporter interface {
	ReportUnsent(fn func(Unsent))
}

// MsgTypeSlots is the size of per-type counter arrays, indexed by
// core.MsgType; types beyond it are counted in slot 0.
const MsgTypeSlots = 32

// Stats are the transport's counters since it started. Bytes count whole
// frames including the length prefix (Mem counts bytes only with
// HubCodec).
type Stats struct {
	SentMsgs, SentBytes [MsgTypeSlots]uint64
	RecvMsgs, RecvBytes [MsgTypeSlots]uint64
	// Rejected counts received frames refused as invalid, by Reason.
	Rejected [NumReasons]uint64
	// Dropped counts outgoing messages that were not sent, by Drop.
	Dropped [NumDrops]uint64
	// StreamsOpened and StreamsAccepted count outbound and inbound
	// streams; StreamResets those reset because of an error.
	StreamsOpened, StreamsAccepted, StreamResets uint64
	// PingsSent, PongsReceived; PongsLate answered no waiting Ping.
	PingsSent, PongsReceived, PongsLate uint64
	// AddrsRefused counts addresses learned from received handles that
	// the AddrFilter option refused (a list that keeps arriving is looked
	// at again only when it is due for renewal; see AddrTTL).
	AddrsRefused uint64
	// AddrsThrottled counts addresses of peers named by others' handles
	// not added to the peerstore: the sender's budget for new unverified
	// peers was spent, or too many were held (see UnverifiedAddrTTL).
	AddrsThrottled uint64
	// SendsThrottled counts messages not sent because they needed a new
	// connection beyond the dial budget of the peer whose message caused
	// them (CausedSender).
	SendsThrottled uint64
	// MeasuresThrottled counts proximity measurements not started because
	// a dial to the peer would have exceeded the dial budget of its
	// addresses or of the peer that sent its handle (libp2p only).
	MeasuresThrottled uint64
	// MeasureConnsClosed counts connections a proximity measurement, a
	// ping or a probe opened to a peer the routing state did not take,
	// closed once no stream used them (libp2p only).
	MeasureConnsClosed uint64
	// WriteRetries counts batches of frames, and pings, written again on
	// a new stream because the peer's stream was found gone when written
	// to (the peer's transport closed, or the peer restarted).
	WriteRetries uint64
	// Security counts the handles and stream openers refused by the
	// network's admission mode (WithSecurity), by reason.
	Security SecurityStats
}

// TotalRejected sums Rejected.
func (s Stats) TotalRejected() uint64 {
	var n uint64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// TotalDropped sums Dropped.
func (s Stats) TotalDropped() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// counters are Stats, updated atomically.
type counters struct {
	sentMsgs, sentBytes [MsgTypeSlots]atomic.Uint64
	recvMsgs, recvBytes [MsgTypeSlots]atomic.Uint64
	rejected            [NumReasons]atomic.Uint64
	dropped             [NumDrops]atomic.Uint64
	streamsOpened       atomic.Uint64
	streamsAccepted     atomic.Uint64
	streamResets        atomic.Uint64
	pingsSent           atomic.Uint64
	pongsReceived       atomic.Uint64
	pongsLate           atomic.Uint64
	addrsRefused        atomic.Uint64
	addrsThrottled      atomic.Uint64
	sendsThrottled      atomic.Uint64
	writeRetries        atomic.Uint64
	measuresThrottled   atomic.Uint64
	measureConnsClosed  atomic.Uint64
}

func slot(t core.MsgType) int {
	if int(t) < MsgTypeSlots {
		return int(t)
	}
	return 0
}

func (c *counters) sent(t core.MsgType, n int) {
	c.sentMsgs[slot(t)].Add(1)
	c.sentBytes[slot(t)].Add(uint64(n))
}

func (c *counters) received(t core.MsgType, n int) {
	c.recvMsgs[slot(t)].Add(1)
	c.recvBytes[slot(t)].Add(uint64(n))
}

func (c *counters) reject(err error) Reason {
	r := ReasonOf(err)
	c.rejected[r].Add(1)
	return r
}

func (c *counters) drop(d Drop) { c.dropped[d].Add(1) }

func (c *counters) snapshot() Stats {
	var s Stats
	for i := range MsgTypeSlots {
		s.SentMsgs[i] = c.sentMsgs[i].Load()
		s.SentBytes[i] = c.sentBytes[i].Load()
		s.RecvMsgs[i] = c.recvMsgs[i].Load()
		s.RecvBytes[i] = c.recvBytes[i].Load()
	}
	for i := range s.Rejected {
		s.Rejected[i] = c.rejected[i].Load()
	}
	for i := range s.Dropped {
		s.Dropped[i] = c.dropped[i].Load()
	}
	s.StreamsOpened = c.streamsOpened.Load()
	s.StreamsAccepted = c.streamsAccepted.Load()
	s.StreamResets = c.streamResets.Load()
	s.PingsSent = c.pingsSent.Load()
	s.PongsReceived = c.pongsReceived.Load()
	s.PongsLate = c.pongsLate.Load()
	s.AddrsRefused = c.addrsRefused.Load()
	s.AddrsThrottled = c.addrsThrottled.Load()
	s.SendsThrottled = c.sendsThrottled.Load()
	s.WriteRetries = c.writeRetries.Load()
	s.MeasuresThrottled = c.measuresThrottled.Load()
	s.MeasureConnsClosed = c.measureConnsClosed.Load()
	return s
}

// rttTable keeps a smoothed RTT per peer, bounded in size: when full, an
// arbitrary entry is forgotten (it is re-measured on the next ping).
type rttTable struct {
	mu  sync.Mutex
	m   map[string]time.Duration // by peer ID (a handle's Addr)
	max int
}

func newRTTTable(max int) *rttTable {
	return &rttTable{m: make(map[string]time.Duration), max: max}
}

// update folds a sample in like TCP's SRTT: srtt += (sample - srtt) / 8.
func (t *rttTable) update(p string, sample time.Duration) {
	if sample <= 0 {
		sample = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.m[p]
	if !ok {
		if len(t.m) >= t.max {
			for k := range t.m {
				delete(t.m, k)
				break
			}
		}
		t.m[p] = sample
		return
	}
	t.m[p] = old + (sample-old)/8
}

func (t *rttTable) get(p string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.m[p]
	return d, ok
}
