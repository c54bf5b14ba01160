package transport

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ProtocolName is the Pastry protocol's libp2p name, version 1 of the
// schema in pb/pastry.proto.
const ProtocolName = "/pastry/1.0.0"

// ProtocolID returns the protocol ID under a network prefix: "" gives
// "/pastry/1.0.0", "/mynet" gives "/mynet/pastry/1.0.0". Nodes with
// different prefixes do not talk to each other, which keeps private
// networks apart (as go-libp2p-kad-dht's ProtocolPrefix does).
func ProtocolID(prefix protocol.ID) protocol.ID { return prefix + ProtocolName }

// config is the libp2p transport's configuration; see the options.
type config struct {
	prefix        protocol.ID
	limits        Limits
	queueLen      int
	queueBytes    int
	dialTimeout   time.Duration
	writeTimeout  time.Duration
	idleTimeout   time.Duration
	pingIdle      time.Duration
	addrTTL       time.Duration
	unverifiedTTL time.Duration
	addrFilter    func(peer.ID, ma.Multiaddr) bool
	rttPeers      int
	measurePings  int
	sweepEvery    time.Duration
	logger        *slog.Logger
	keepHandler   bool
	delay         func(peer.ID) time.Duration

	security Security
}

func defaultConfig() config {
	return config{
		limits:        DefaultLimits(),
		queueLen:      256,
		queueBytes:    8 << 20,
		dialTimeout:   10 * time.Second,
		writeTimeout:  10 * time.Second,
		idleTimeout:   2 * time.Minute,
		pingIdle:      10 * time.Second,
		addrTTL:       30 * time.Minute,
		unverifiedTTL: 2 * time.Minute,
		rttPeers:      4096,
		measurePings:  16,
		sweepEvery:    10 * time.Second,
		logger:        slog.Default(),
	}
}

// Option configures NewLibp2p. An invalid option makes NewLibp2p fail with
// an error naming it.
type Option func(*config) error

// KeepHandlerOnClose makes Close leave the protocol's stream handler on
// the host (resetting every stream that still arrives), for a host that
// is closed right after the transport. Removing the handler makes the
// host push an identify update to every connected peer: at 200 nodes in
// one process, 9 of the 14 s the devnet took to close its nodes.
func KeepHandlerOnClose() Option {
	return func(c *config) error {
		c.keepHandler = true
		return nil
	}
}

func optErr(name, format string, args ...any) error {
	return fmt.Errorf("transport: option %s: %s", name, fmt.Sprintf(format, args...))
}

// ProtocolPrefix puts the protocol under a network prefix (see ProtocolID).
// The prefix must start with "/" and not end with one. Default: none.
func ProtocolPrefix(prefix protocol.ID) Option {
	return func(c *config) error {
		s := string(prefix)
		if s != "" && (!strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.ContainsAny(s, " \t\n")) {
			return optErr("ProtocolPrefix", "%q must start with '/', not end with '/' and hold no spaces", s)
		}
		c.prefix = prefix
		return nil
	}
}

// WithLimits sets the codec's size limits (DefaultLimits otherwise). Both
// ends should agree; a receiver rejects what exceeds its own limits.
func WithLimits(l Limits) Option {
	return func(c *config) error {
		if err := l.validate(); err != nil {
			return optErr("WithLimits", "%v", err)
		}
		c.limits = l
		return nil
	}
}

// QueueLimits bounds each peer's send queue to frames messages and bytes
// bytes of encoded frames, whichever is reached first; Send drops beyond
// them. Memory for queues is at most peers x bytes. Default 256 frames,
// 8 MiB.
func QueueLimits(frames, bytes int) Option {
	return func(c *config) error {
		if frames < 1 || bytes < 1 {
			return optErr("QueueLimits", "frames=%d bytes=%d, want both >= 1", frames, bytes)
		}
		c.queueLen, c.queueBytes = frames, bytes
		return nil
	}
}

// Timeouts sets how long opening a stream (including the dial) and writing
// a batch of frames may take, and how long an outbound stream may stay
// idle before it is closed (inbound streams idle for twice that are
// reset). Defaults 10 s, 10 s, 2 min.
func Timeouts(dial, write, idle time.Duration) Option {
	return func(c *config) error {
		if dial <= 0 || write <= 0 || idle <= 0 {
			return optErr("Timeouts", "dial=%s write=%s idle=%s, want all > 0", dial, write, idle)
		}
		c.dialTimeout, c.writeTimeout, c.idleTimeout = dial, write, idle
		return nil
	}
}

// PingIdleTimeout sets how long an outbound stream that has carried only
// pings and pongs, probes and probe replies may stay idle before it is
// closed; once it carries another message, the idle timeout of Timeouts
// applies (the smaller of the two wins). A node pings every node it hears
// of to learn its proximity and probes every candidate before it admits
// it, and most of them never enter its state: their streams, and then the
// connections the pings and probes opened, need not stay for the full
// idle timeout. Default 10 s.
func PingIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("PingIdleTimeout", "%s, want > 0", d)
		}
		c.pingIdle = d
		return nil
	}
}

// AddrTTL is how long addresses learned from received handles stay in the
// peerstore. A list that keeps arriving is renewed every tenth of it (at
// most every 30 s). Default 30 min.
func AddrTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("AddrTTL", "%s, want > 0", d)
		}
		c.addrTTL = d
		return nil
	}
}

// AddrFilter decides which learned addresses enter the peerstore (all, by
// default). Use it to refuse private or loopback addresses on a public
// network. It is called from transport goroutines.
func AddrFilter(f func(p peer.ID, a ma.Multiaddr) bool) Option {
	return func(c *config) error {
		c.addrFilter = f
		return nil
	}
}

// Logger sets the logger (slog.Default otherwise).
func Logger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optErr("Logger", "nil logger")
		}
		c.logger = l
		return nil
	}
}

// MeasureLimits bounds the proximity measurements in flight (Measure; 1
// to 65536, default 16) and sets how often connections that measurements
// opened are looked at, to close those nothing needs (default 10 s).
func MeasureLimits(inFlight int, sweepEvery time.Duration) Option {
	return func(c *config) error {
		if inFlight < 1 || inFlight > 1<<16 {
			return optErr("MeasureLimits", "%d pings in flight, want 1 to 65536", inFlight)
		}
		if sweepEvery <= 0 {
			return optErr("MeasureLimits", "sweep every %v, want > 0", sweepEvery)
		}
		c.measurePings, c.sweepEvery = inFlight, sweepEvery
		return nil
	}
}

// UnverifiedAddrTTL sets how long the addresses of a peer that another
// peer's message named are kept in the peerstore until the peer itself
// talks to this node (a message or a pong; then AddrTTL). Default 2 min;
// at most AddrTTL.
func UnverifiedAddrTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optErr("UnverifiedAddrTTL", "%v, want > 0", d)
		}
		c.unverifiedTTL = d
		return nil
	}
}

// InjectDelay holds every frame sent to a peer for delay(peer) before
// its writer writes it: an emulated one-way link latency, for test
// networks on machines without tc netem (the bench harness's namespaces).
// Frames to one peer keep their order (the delay is fixed per peer, read
// once when the transport first sends to it); a ping is written at once
// but its clock starts delay(peer) earlier, so measured RTTs include the
// injected delays of both directions. delay must return 0 to 10 s; a
// value outside is clamped. Default: none. Never use it in production.
func InjectDelay(delay func(peer.ID) time.Duration) Option {
	return func(c *config) error {
		if delay == nil {
			return optErr("InjectDelay", "nil function")
		}
		c.delay = delay
		return nil
	}
}

// maxInjectedDelay bounds InjectDelay's values.
const maxInjectedDelay = 10 * time.Second

// WithSecurity puts the transport into a network's admission mode
// (Security: certificate mode, or open mode with the identity puzzle).
// In certificate mode this node's id is its certificate's, and the host's
// key must be the certified one; with the puzzle, the host's key must
// solve it.
func WithSecurity(s Security) Option {
	return func(c *config) error {
		if err := s.validate(); err != nil {
			return optErr("WithSecurity", "%v", err)
		}
		c.security = s
		return nil
	}
}
