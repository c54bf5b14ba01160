package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	manet "github.com/multiformats/go-multiaddr/net"
	msmux "github.com/multiformats/go-multistream"

	"github.com/pastrynet/pastry/core"
)

func TestHostListensOnLoopbackOnly(t *testing.T) {
	id := newIdentity(t, 1)
	h, err := NewHost(DefaultHostConfig(id.priv))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ID() != id.pid {
		t.Fatalf("host id %s, want %s", h.ID(), id.pid)
	}
	if len(h.Addrs()) == 0 {
		t.Fatal("no listen addresses")
	}
	for _, a := range h.Addrs() {
		if !manet.IsIPLoopback(a) {
			t.Fatalf("listening on %s", a)
		}
	}
	ping := false
	for _, p := range h.Mux().Protocols() {
		if strings.Contains(string(p), "relay") {
			t.Fatalf("host speaks %s", p)
		}
		ping = ping || p == "/ipfs/ping/1.0.0"
	}
	if !ping {
		t.Fatalf("host does not serve libp2p's ping; it speaks %v", h.Mux().Protocols())
	}
}

func TestResourceLimitsCoverOurProtocol(t *testing.T) {
	proto := ProtocolID("/test")
	before := len(rcmgr.DefaultLimits.ProtocolLimits)
	lim := DefaultResourceLimits(proto).ToPartialLimitConfig()
	if len(rcmgr.DefaultLimits.ProtocolLimits) != before {
		t.Fatal("DefaultResourceLimits changed libp2p's package defaults")
	}
	pl, ok := lim.Protocol[proto]
	if !ok {
		t.Fatal("no protocol limits for our protocol")
	}
	if pl.StreamsInbound < rcmgr.LimitVal(ProtocolBaseLimit.StreamsInbound) || pl.StreamsInbound == rcmgr.Unlimited {
		t.Fatalf("protocol inbound streams %v", pl.StreamsInbound)
	}
	pp, ok := lim.ProtocolPeer[proto]
	if !ok || pp.StreamsInbound != 2 || pp.StreamsOutbound != 2 {
		t.Fatalf("per-peer limits %+v", pp)
	}

	// A host built by NewHost runs with them.
	a := newNode(t, 1)
	err := a.h.Network().ResourceManager().ViewProtocol(a.t.Protocol(), func(s network.ProtocolScope) error {
		l, ok := s.(rcmgr.ResourceScopeLimiter)
		if !ok {
			t.Fatalf("scope %T has no limits", s)
		}
		if got := l.Limit().GetStreamLimit(network.DirInbound); got < ProtocolBaseLimit.StreamsInbound || got > 1<<20 {
			t.Fatalf("host's protocol inbound stream limit %d", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHostOptionsValidate(t *testing.T) {
	if _, err := HostOptions(HostConfig{}); err == nil || !strings.Contains(err.Error(), "Key") {
		t.Fatalf("no key: %v", err)
	}
	cfg := DefaultHostConfig(newIdentity(t, 1).priv)
	cfg.ConnsHigh = cfg.ConnsLow - 1
	if _, err := HostOptions(cfg); err == nil || !strings.Contains(err.Error(), "ConnsHigh") {
		t.Fatalf("bad watermarks: %v", err)
	}
	cfg = DefaultHostConfig(newIdentity(t, 1).priv)
	cfg.AnnounceAddrs = []string{"/ip4/1.2.3/tcp/1"}
	if _, err := HostOptions(cfg); err == nil || !strings.Contains(err.Error(), "AnnounceAddrs") {
		t.Fatalf("bad announce address: %v", err)
	}
}

// A host with AnnounceAddrs advertises them instead of its listen
// addresses, and still listens where it was told.
func TestHostAnnounceAddrs(t *testing.T) {
	cfg := DefaultHostConfig(newIdentity(t, 3).priv)
	cfg.AnnounceAddrs = []string{"/ip4/203.0.113.7/tcp/4001", "/dns4/node.example.com/udp/4001/quic-v1"}
	h, err := NewHost(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var got []string
	for _, a := range h.Addrs() {
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != strings.Join(cfg.AnnounceAddrs, " ") {
		t.Fatalf("advertised %v, want %v", got, cfg.AnnounceAddrs)
	}
	if ls := h.Network().ListenAddresses(); len(ls) != 1 || !manet.IsIPLoopback(ls[0]) {
		t.Fatalf("listening on %v", ls)
	}
}

// A loopback host has its reachability fixed (no AutoNAT prober, whose
// close can deadlock), and CloseHost closes it within its context.
func TestLoopbackHostAndCloseHost(t *testing.T) {
	id := newIdentity(t, 2)
	h, err := NewLoopbackHost(DefaultHostConfig(id.priv))
	if err != nil {
		t.Fatal(err)
	}
	an, ok := h.(interface{ GetAutoNat() autonat.AutoNAT })
	if !ok {
		t.Fatalf("%T has no AutoNAT accessor", h)
	}
	if st := an.GetAutoNat().Status(); st != network.ReachabilityPrivate {
		t.Fatalf("reachability %s, want private", st)
	}
	for _, a := range h.Addrs() {
		if !manet.IsIPLoopback(a) {
			t.Fatalf("listening on %s", a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := CloseHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	if len(h.Network().ListenAddresses()) != 0 {
		t.Fatalf("still listening on %v after CloseHost", h.Network().ListenAddresses())
	}
}

// Two hosts that dial each other at the same moment both connect. With
// TCP port reuse (go-libp2p's default) each dials from its listening port,
// the two SYNs make one TCP connection by simultaneous open, both ends
// start the Noise handshake as its initiator and both dials fail
// (libp2p/go-libp2p#2925). In a joining overlay that is routine: a root
// answering a joiner while the joiner pings it lost the join reply, and
// the join waited for its 10 s timeout.
func TestSimultaneousDial(t *testing.T) {
	const pairs = 40
	failed := 0
	for i := range pairs {
		var hs [2]host.Host
		for k := range hs {
			h, err := NewLoopbackHost(DefaultHostConfig(newIdentity(t, uint64(2*i+k+1)).priv))
			if err != nil {
				t.Fatal(err)
			}
			hs[k] = h
		}
		hs[0].Peerstore().AddAddrs(hs[1].ID(), hs[1].Addrs(), peerstore.PermanentAddrTTL)
		hs[1].Peerstore().AddAddrs(hs[0].ID(), hs[0].Addrs(), peerstore.PermanentAddrTTL)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for k := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[k] = hs[k].Connect(ctx, peer.AddrInfo{ID: hs[1-k].ID()})
			}()
		}
		close(start)
		wg.Wait()
		cancel()
		for _, err := range errs {
			if err != nil {
				failed++
				t.Logf("pair %d: %v", i, err)
			}
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, h := range hs {
			CloseHost(closeCtx, h)
		}
		cancel()
	}
	if failed > 0 {
		t.Fatalf("%d of %d simultaneous dials failed", failed, 2*pairs)
	}
}

func TestRetryOpen(t *testing.T) {
	unsupported := fmt.Errorf("failed to negotiate protocol: %w", msmux.ErrNotSupported[protocol.ID]{Protos: []protocol.ID{"/pastry/1.0.0"}})
	for _, c := range []struct {
		name string
		err  error
		took time.Duration
		want bool
	}{
		{"quick failure", errors.New("failed to negotiate security protocol: noise: message is too short"), time.Millisecond, true},
		{"slow failure", errors.New("i/o timeout"), 2 * openRetryFast, false},
		{"protocol not spoken", unsupported, time.Millisecond, false},
		{"no addresses", fmt.Errorf("failed to dial: %w", swarm.ErrNoAddresses), time.Millisecond, false},
		{"dial backoff", fmt.Errorf("failed to dial: %w", swarm.ErrDialBackoff), time.Millisecond, false},
		{"closing", context.Canceled, time.Millisecond, false},
		{"dial timeout", fmt.Errorf("dial: %w", context.DeadlineExceeded), time.Millisecond, false},
	} {
		if got := retryOpen(c.err, c.took); got != c.want {
			t.Errorf("%s: retry %v, want %v", c.name, got, c.want)
		}
	}
}

// On hosts that do reuse ports (an integrator's default go-libp2p host),
// two transports sending to each other at the same moment still deliver
// both messages: a quick failed open is tried once more.
func TestSimultaneousSendOnReusedPorts(t *testing.T) {
	const pairs = 30
	lost := 0
	for i := range pairs {
		var ns [2]*node
		for k := range ns {
			id := newIdentity(t, uint64(100+2*i+k))
			h, err := libp2p.New(libp2p.Identity(id.priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
				libp2p.DisableRelay(), libp2p.ForceReachabilityPrivate(), libp2p.Ping(false))
			if err != nil {
				t.Fatal(err)
			}
			in := newInbox()
			tr, err := NewLibp2p(h, in.handle, Logger(quietLogger))
			if err != nil {
				t.Fatal(err)
			}
			ns[k] = &node{h: h, t: tr, in: in, id: id}
		}
		introduce(ns[0], ns[1])
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k, n := range ns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := n.t.Send(&core.Message{Type: core.MsgProbe, From: n.id.h, To: ns[1-k].id.h, Seq: 1}); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, n := range ns {
			deadline := time.Now().Add(5 * time.Second)
			for len(n.in.snapshot()) == 0 && time.Now().Before(deadline) {
				select {
				case <-n.in.ch:
				case <-time.After(10 * time.Millisecond):
				}
			}
			if len(n.in.snapshot()) == 0 {
				lost++
				t.Logf("pair %d: a message was lost; drops %v", i, n.t.Stats().Dropped)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, n := range ns {
			n.t.Close()
			CloseHost(ctx, n.h)
		}
		cancel()
	}
	if lost > 0 {
		t.Fatalf("%d of %d messages lost", lost, 2*pairs)
	}
}
