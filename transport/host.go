package transport

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// HostConfig describes a libp2p host for a Pastry node.
type HostConfig struct {
	// Key is the node's Ed25519 identity (secure.LoadOrCreateKey). Required.
	Key crypto.PrivKey
	// ListenAddrs are multiaddr strings. Default: TCP on 127.0.0.1, random
	// port. TCP and QUIC transports are available; an address picks one.
	ListenAddrs []string
	// AnnounceAddrs, if set, are the addresses the host advertises
	// (identify, and the handles its node sends) instead of those it
	// listens on: for a node behind NAT or port forwarding, whose
	// listen addresses others cannot dial. Multiaddr strings.
	AnnounceAddrs []string
	// ProtocolPrefix must match the transport's ProtocolPrefix option, so
	// the resource limits below apply to the protocol actually spoken.
	ProtocolPrefix protocol.ID
	// ConnsLow and ConnsHigh are the connection manager's watermarks: above
	// High it trims unprotected connections down to Low. Pastry's state is
	// about L + M + (2^b - 1) x log_{2^b} N peers (16 + 32 + 75 for b=4 at a
	// million nodes), all protected through Libp2p.Protect; the rest is
	// headroom for joins and replies. Defaults 256 and 384.
	ConnsLow, ConnsHigh int
	// GracePeriod protects new connections from trimming. Default 1 min.
	GracePeriod time.Duration
	// AddrPolicy restricts the addresses the host dials (AddrsAll by
	// default). Pass the same policy to the transport's AddrFilter option
	// so that refused addresses stay out of the peerstore too.
	AddrPolicy AddrPolicy
	// Limits are the resource manager's limits; the zero value means
	// DefaultResourceLimits(ProtocolID(ProtocolPrefix)), scaled to the
	// machine.
	Limits *rcmgr.ConcreteLimitConfig
	// AgentVersion is the agent version identify reports to peers.
	// Default: AgentVersion(), "pastry/VERSION". Identify's protocol
	// version is always the wire protocol, ProtocolID(ProtocolPrefix).
	AgentVersion string
}

// AgentVersion is the agent version a Pastry host reports through
// identify: "pastry/" and this module's version, as the Go toolchain
// stamped it into the binary (the release tag from `go install
// ...@VERSION`, a pseudo-version in a checkout, "devel" when none is
// known), whether this module is the program or a dependency of it.
func AgentVersion() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
		for _, m := range mods {
			if m.Path == modulePath && m.Version != "" && m.Version != "(devel)" {
				v = m.Version
				break
			}
		}
	}
	return "pastry/" + v
}

// modulePath is this project's Go module.
const modulePath = "github.com/pastrynet/pastry"

// DefaultHostConfig returns the defaults described on HostConfig.
func DefaultHostConfig(key crypto.PrivKey) HostConfig {
	return HostConfig{
		Key:         key,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		ConnsLow:    256, ConnsHigh: 384, GracePeriod: time.Minute,
	}
}

// Resource limits for the Pastry protocol. Every neighbour has one
// long-lived stream in each direction; a re-open may briefly overlap the
// old stream, hence 2 per peer and direction. The totals allow 1024
// concurrent neighbours each way, several times the state of a node in a
// million-node overlay (see HostConfig.ConnsLow), and grow with memory as
// libp2p's autoscaling grants it (per GiB: +256 streams each way).
// Stream memory (yamux windows) is charged to connections, not to the
// protocol, so the protocol's memory limit is only a backstop.
var (
	ProtocolBaseLimit = rcmgr.BaseLimit{
		StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048,
		Memory: 64 << 20,
	}
	ProtocolLimitIncrease = rcmgr.BaseLimitIncrease{
		StreamsInbound: 256, StreamsOutbound: 256, Streams: 512,
		Memory: 64 << 20,
	}
	ProtocolPeerBaseLimit = rcmgr.BaseLimit{
		StreamsInbound: 2, StreamsOutbound: 2, Streams: 4,
		Memory: 16 << 20,
	}
)

// DefaultResourceLimits are libp2p's default scaling limits with explicit
// limits for proto (ProtocolBaseLimit, ProtocolLimitIncrease per GiB,
// ProtocolPeerBaseLimit per peer), scaled to this machine's memory and
// file descriptors. libp2p's per-IP connection caps (8 per IPv4 /32,
// WithLimitPerSubnet) stay in force; loopback is exempt from them, so a
// devnet on one machine works and a test there proves nothing about them.
func DefaultResourceLimits(proto protocol.ID) rcmgr.ConcreteLimitConfig {
	sc := rcmgr.DefaultLimits
	// The struct copy shares its maps with the package default: clone
	// them before adding to them.
	sc.ServiceLimits = maps.Clone(sc.ServiceLimits)
	sc.ServicePeerLimits = maps.Clone(sc.ServicePeerLimits)
	sc.ProtocolLimits = maps.Clone(sc.ProtocolLimits)
	sc.ProtocolPeerLimits = maps.Clone(sc.ProtocolPeerLimits)
	sc.PeerLimits = maps.Clone(sc.PeerLimits)
	sc.AddProtocolLimit(proto, ProtocolBaseLimit, ProtocolLimitIncrease)
	sc.AddProtocolPeerLimit(proto, ProtocolPeerBaseLimit, rcmgr.BaseLimitIncrease{})
	libp2p.SetDefaultServiceLimits(&sc)
	return sc.AutoScale()
}

// HostOptions returns libp2p options for a Pastry node's host: the given
// identity and listen addresses; TCP and QUIC; Noise (preferred) and TLS;
// yamux; the resource manager with our limits and its metrics disabled (they
// cost ~40% of stream throughput and our metrics come from Stats); a
// connection manager sized for the overlay; a connection gater when
// cfg.AddrPolicy restricts dials; libp2p's ping service
// (/ipfs/ping/1.0.0), and identify reporting cfg.AgentVersion and the
// wire protocol as its protocol version, so that stock libp2p tools can
// check a node. Relays, NAT port mapping and hole punching are off, and
// mDNS is never started: nothing reaches outside the listen addresses
// unless asked to.
// TCP dials do not reuse the listening port: with reuse, two nodes that
// dial each other at the same moment make one TCP connection by
// simultaneous open, both start the Noise handshake as its initiator and
// both dials fail (libp2p/go-libp2p#2925). Port reuse only helps NAT
// traversal, which is off here.
func HostOptions(cfg HostConfig) ([]libp2p.Option, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("transport: HostConfig.Key is required")
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.ConnsLow <= 0 || cfg.ConnsHigh < cfg.ConnsLow {
		return nil, fmt.Errorf("transport: HostConfig ConnsLow=%d ConnsHigh=%d, want 0 < low <= high", cfg.ConnsLow, cfg.ConnsHigh)
	}
	if cfg.AddrPolicy > AddrsPrivate {
		return nil, fmt.Errorf("transport: HostConfig.AddrPolicy %s, want AddrsAll, AddrsPublic or AddrsPrivate", cfg.AddrPolicy)
	}
	var announce []ma.Multiaddr
	for _, s := range cfg.AnnounceAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("transport: HostConfig.AnnounceAddrs: %q: %w", s, err)
		}
		announce = append(announce, a)
	}
	agent := cfg.AgentVersion
	if agent == "" {
		agent = AgentVersion()
	}
	limits := cfg.Limits
	if limits == nil {
		l := DefaultResourceLimits(ProtocolID(cfg.ProtocolPrefix))
		limits = &l
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(*limits), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("transport: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnsLow, cfg.ConnsHigh, connmgr.WithGracePeriod(cfg.GracePeriod))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("transport: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(agent),
		libp2p.ProtocolVersion(string(ProtocolID(cfg.ProtocolPrefix))),
	}
	if cfg.AddrPolicy != AddrsAll {
		opts = append(opts, libp2p.ConnectionGater(cfg.AddrPolicy.Gater()))
	}
	if len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return slices.Clone(announce) }))
	}
	return opts, nil
}

// NewLoopbackHost is NewHost with reachability fixed as private, for hosts
// on loopback (the devnet, tests, benchmarks): there is nothing to learn
// about NAT there, and without AutoNAT's background service (a goroutine
// and an event subscription per host) the close-time deadlock described at
// CloseHost cannot occur.
func NewLoopbackHost(cfg HostConfig) (host.Host, error) {
	opts, err := HostOptions(cfg)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(append(opts, libp2p.ForceReachabilityPrivate())...)
	if err != nil {
		return nil, fmt.Errorf("transport: new host: %w", err)
	}
	return h, nil
}

// CloseHost closes h, giving up when ctx ends. go-libp2p v0.51's
// host.Close can deadlock: identify, handling a peer's push, holds the
// event bus lock while blocked sending to a subscriber that has stopped
// reading, and AutoNAT's close waits for that lock. The host is then left
// behind, still closing (callers are about to exit anyway).
func CloseHost(ctx context.Context, h host.Host) error {
	done := make(chan error, 1)
	go func() { done <- h.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("transport: close host %s: %w", h.ID(), ctx.Err())
	}
}

// NewHost builds a host with HostOptions.
func NewHost(cfg HostConfig) (host.Host, error) {
	opts, err := HostOptions(cfg)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("transport: new host: %w", err)
	}
	return h, nil
}
