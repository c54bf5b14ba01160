package pastry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// The transport's dial budget bursts (transport/dialbudget.go): per
// address block, and per sender of the handles.
const addrBurst, senderBurst = 16, 128

// Handles of many made-up peers that all carry one address make the node
// dial that address at most a burst's worth of times; the rest are
// counted as throttled. The node's address policy (private) refuses the
// dials themselves, so nothing leaves this machine.
func TestMeasurementsThrottledPerAddress(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 4))
	n, h := startHostNode(t, r, func(hc *transport.HostConfig) { hc.AddrPolicy = transport.AddrsPrivate },
		WithConfig(fastConfig()), WithTransportOptions(transport.MeasureLimits(64, time.Minute)))
	victim := ma.StringCast("/ip4/203.0.113.5/tcp/4001")
	const fakes = 40
	for i := range fakes {
		hd, p := keyHandle(t, r)
		h.Peerstore().AddAddrs(p, []ma.Multiaddr{victim, ma.StringCast(fmt.Sprintf("/ip4/203.0.113.5/udp/%d/quic-v1", 4001+i))}, time.Hour)
		n.tr.Measure(hd, id.Handle{})
	}
	st, err := n.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.MeasuresThrottled != fakes-addrBurst {
		t.Fatalf("%d measurements throttled, want %d", st.MeasuresThrottled, fakes-addrBurst)
	}
}

// The handles one message names make the node dial at most the sender's
// burst of fresh peers, whatever their addresses: the loop charges the
// measurements a message causes to the peer that sent it. The address
// policy (private) refuses the dials themselves.
func TestMeasurementsThrottledPerSender(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 5))
	n, h := startHostNode(t, r, func(hc *transport.HostConfig) { hc.AddrPolicy = transport.AddrsPrivate },
		WithConfig(fastConfig()), WithTransportOptions(transport.MeasureLimits(1024, time.Minute)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil { // a new overlay: joined
		t.Fatal(err)
	}
	sender, _ := keyHandle(t, r)
	const fakes = 200
	var hs []id.Handle
	for i := range fakes {
		hd, p := keyHandle(t, r)
		h.Peerstore().AddAddrs(p, []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/203.0.113.%d/tcp/4001", i+1))}, time.Hour)
		hs = append(hs, hd)
	}
	n.onMessage(&core.Message{Type: core.MsgLeafReply, From: sender, To: n.Self(), Handles: hs})
	eventually(t, "the sender's budget to throttle the rest", func() bool {
		st, err := n.Stats(context.Background())
		return err == nil && st.MeasuresThrottled == fakes-senderBurst
	})
}
