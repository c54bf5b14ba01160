package pastry

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/transport"
)

// options is the runtime's configuration; see the Option functions.
type options struct {
	core   core.Config
	prefix protocol.ID
	logger *slog.Logger
	inbox  int
	// routeRate and routeBurst limit one peer's routed messages (per
	// second); 0: no limit.
	routeRate, routeBurst float64
	window                int // 0: routes not paced
	transport             []transport.Option
	// anycastAccept is the anycast policy (WithAnycastPolicy).
	anycastAccept func(topic id.ID, payload []byte) bool
	multicast     multicast.Options        // WithMulticast
	store         replication.Store        // WithStore; nil: in memory
	past          replication.PastOptions  // WithReplication
	security      *transport.Security      // WithSecurity; nil: open mode
	adversary     *lookup.AdversaryOptions // WithAdversary; nil: an honest node
}

func defaultOptions() options {
	return options{core: core.DefaultConfig(), logger: slog.Default(), inbox: 4096, window: defaultRouteWindow,
		routeRate: 2000, routeBurst: 4000}
}

// Option configures New. An invalid option makes New fail with an error
// naming it.
type Option func(*options) error

// WithConfig sets the protocol parameters (core.DefaultConfig otherwise).
func WithConfig(c core.Config) Option {
	return func(o *options) error {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("pastry: option WithConfig: %w", err)
		}
		o.core = c
		return nil
	}
}

// WithAnycastPolicy sets whether this node, where it subscribes to a
// topic, takes an anycast to it (Node.Anycast) with payload. It runs on
// the node's event loop and must not block. Without one the node takes
// none.
func WithAnycastPolicy(accept func(topic id.ID, payload []byte) bool) Option {
	return func(o *options) error {
		o.anycastAccept = accept
		return nil
	}
}

// WithMulticast sets Scribe's parameters (package multicast: heartbeats,
// the bound on children, replicas of a topic's root, the largest
// message); its Deliver and Accept are the node's own and are ignored
// here (see Subscribe and WithAnycastPolicy).
func WithMulticast(mo multicast.Options) Option {
	return func(o *options) error {
		if mo.HeartbeatInterval < 0 || mo.ParentSilence < 0 || mo.MaxData < 0 || mo.AnycastTimeout < 0 || mo.Replicas < 0 {
			return fmt.Errorf("pastry: option WithMulticast: negative durations or sizes: %+v", mo)
		}
		o.multicast = mo
		return nil
	}
}

// WithStore keeps the node's replicas in store (pebblestore on disk for a
// daemon; the caller closes it after the node). Without it they are kept
// in memory and lost when the node stops.
func WithStore(store replication.Store) Option {
	return func(o *options) error {
		if store == nil {
			return errors.New("pastry: option WithStore: nil store")
		}
		o.store = store
		return nil
	}
}

// WithReplication sets PAST's parameters (replicas K, quorums W and R,
// timeouts, maintenance period; package replication). Epoch is the
// node's own.
func WithReplication(po replication.PastOptions) Option {
	return func(o *options) error {
		o.past = po
		return nil
	}
}

// WithProtocolPrefix runs the protocol as PREFIX/pastry/1.0.0, so that
// private networks do not talk to each other (see transport.ProtocolID).
func WithProtocolPrefix(p protocol.ID) Option {
	return func(o *options) error {
		o.prefix = p
		o.transport = append(o.transport, transport.ProtocolPrefix(p))
		return nil
	}
}

// WithLogger sets the logger (slog.Default otherwise).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("pastry: option WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithInbox bounds the received messages waiting for the event loop:
// n in all, n/8 (at least 16) from any one peer, served round robin by
// peer; beyond that messages are dropped (and counted), which the
// protocol's acks and probes recover from. Default 4096.
func WithInbox(n int) Option {
	return func(o *options) error {
		if n < 16 || n > 1<<20 {
			return fmt.Errorf("pastry: option WithInbox: %d, want 16 to 1048576", n)
		}
		o.inbox = n
		return nil
	}
}

// WithRouteWindow sets the initial window that paces Route and Lookup:
// the node's own messages go out only while fewer hops it has sent than
// the window wait for their ack. The window grows by one per window's
// worth of acks and halves on hop timeouts (at most once per
// HopTimeoutMin), between 4 (or n, if smaller) and 64 n; the messages
// held back wait in the queue of Route and Lookup. 0 turns pacing off.
// Default 16.
func WithRouteWindow(n int) Option {
	return func(o *options) error {
		if n < 0 || n > 1<<16 {
			return fmt.Errorf("pastry: option WithRouteWindow: %d, want 0 to 65536", n)
		}
		o.window = n
		return nil
	}
}

// WithAddrPolicy keeps the addresses p refuses, learned from the handles
// the node receives, out of the host's peerstore (transport.AddrFilter).
// It does not reach the host's dialler, which is the caller's: build the
// host with libp2p.ConnectionGater(p.Gater()), or with
// transport.HostConfig.AddrPolicy, to refuse dials to them whatever their
// source. Default transport.AddrsAll.
func WithAddrPolicy(p transport.AddrPolicy) Option {
	return func(o *options) error {
		if p > transport.AddrsPrivate {
			return fmt.Errorf("pastry: option WithAddrPolicy: %v, want AddrsAll, AddrsPublic or AddrsPrivate", p)
		}
		if p != transport.AddrsAll {
			o.transport = append(o.transport, transport.AddrFilter(p.AllowsPeerAddr))
		}
		return nil
	}
}

// WithTransportOptions passes options to the libp2p transport.
func WithTransportOptions(opts ...transport.Option) Option {
	return func(o *options) error {
		o.transport = append(o.transport, opts...)
		return nil
	}
}

// WithRouteRateLimit limits the routed messages (routes and joins, which
// the node forwards) it takes from any one peer to perSecond, with bursts
// of burst; beyond it they are dropped unacknowledged, so that the peer
// routes around this node. It keeps one peer's flood from taking the
// node's time. 0 turns the limit off. Default 2000 a second, bursts of
// 4000.
func WithRouteRateLimit(perSecond, burst int) Option {
	return func(o *options) error {
		if perSecond < 0 || burst < 0 || perSecond > 0 && burst < 1 {
			return fmt.Errorf("pastry: option WithRouteRateLimit: %d a second, burst %d; want both > 0, or 0 a second", perSecond, burst)
		}
		o.routeRate, o.routeBurst = float64(perSecond), float64(burst)
		return nil
	}
}

// WithSecurity sets the network's admission mode (transport.Security):
// certificate mode, where this node's id is its certificate's and every
// handle must carry a valid certificate of the network's authority, or
// open mode with the identity puzzle. Every node of a network must use
// the same mode.
func WithSecurity(s transport.Security) Option {
	return func(o *options) error {
		if s.Verifier == nil && s.Own == nil && s.PuzzleBits == 0 {
			o.security = nil
			return nil
		}
		o.security = &s
		o.transport = append(o.transport, transport.WithSecurity(s))
		return nil
	}
}

// WithAdversary makes the node an attacker, for demonstrations and tests
// (`pastry devnet --malicious`): it runs lookup.Adversary in place of the
// lookup application, attacking the lookups routed through it as opts
// says, and cannot start lookups of its own (Lookup fails). Its
// Colluders must not change once the node starts.
func WithAdversary(opts lookup.AdversaryOptions) Option {
	return func(o *options) error {
		if opts.Colluders == nil {
			return errors.New("pastry: option WithAdversary: no Colluders")
		}
		o.adversary = &opts
		return nil
	}
}
