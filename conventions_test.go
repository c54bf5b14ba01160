package pastry

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/pastrynet/pastry/transport"
)

// TestStockHostPingsAndIdentifiesNode: a go-libp2p host built with
// libp2p's stock protocols only (no Pastry code) connects to a node,
// pings it with libp2p's ping protocol, and reads through identify the
// node's agent version (pastry/VERSION), its protocol version (the wire
// protocol) and the protocols it serves.
func TestStockHostPingsAndIdentifiesNode(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{71}))
	n, h := startHostNode(t, r, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatal(err)
	}

	stock, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ForceReachabilityPrivate())
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	if err := stock.Connect(ctx, addrInfo(h)); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-ping.Ping(ctx, stock, h.ID()):
		if res.Error != nil {
			t.Fatalf("ping: %v", res.Error)
		}
		if res.RTT <= 0 || res.RTT > 10*time.Second {
			t.Fatalf("ping RTT %v", res.RTT)
		}
	case <-ctx.Done():
		t.Fatal("no ping result")
	}

	// stock.Connect returns once identify has run.
	agent, err := stock.Peerstore().Get(h.ID(), "AgentVersion")
	if err != nil {
		t.Fatalf("agent version: %v", err)
	}
	if a, _ := agent.(string); a != transport.AgentVersion() || !strings.HasPrefix(a, "pastry/") || len(a) <= len("pastry/") {
		t.Fatalf("agent version %q, want %q", agent, transport.AgentVersion())
	}
	pv, err := stock.Peerstore().Get(h.ID(), "ProtocolVersion")
	if err != nil {
		t.Fatalf("protocol version: %v", err)
	}
	if pv != string(transport.ProtocolID("")) {
		t.Fatalf("protocol version %q, want %q", pv, transport.ProtocolID(""))
	}
	protos, err := stock.Peerstore().GetProtocols(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []protocol.ID{ping.ID, transport.ProtocolID("")} {
		if !slices.Contains(protos, want) {
			t.Fatalf("identify lists %v, without %s", protos, want)
		}
	}
}

// TestAgentVersionOption: HostConfig.AgentVersion replaces the default,
// and the protocol version follows the protocol prefix.
func TestAgentVersionOption(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{72}))
	_, h := startHostNode(t, r, func(hc *transport.HostConfig) {
		hc.AgentVersion = "myapp/2.1"
		hc.ProtocolPrefix = "/mynet"
	}, WithProtocolPrefix("/mynet"))
	stock, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.ForceReachabilityPrivate())
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := stock.Connect(ctx, addrInfo(h)); err != nil {
		t.Fatal(err)
	}
	agent, _ := stock.Peerstore().Get(h.ID(), "AgentVersion")
	pv, _ := stock.Peerstore().Get(h.ID(), "ProtocolVersion")
	if agent != "myapp/2.1" || pv != "/mynet/pastry/1.0.0" {
		t.Fatalf("agent version %q, protocol version %q; want myapp/2.1 and /mynet/pastry/1.0.0", agent, pv)
	}
}
