package pastry

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/transport"
)

// WithAddrPolicy reaches the transport: a node joining a loopback overlay
// with the public policy learns no address from the handles it receives
// (its join went through an address given explicitly), and one without
// the option learns them all.
func TestWithAddrPolicyFiltersLearnedAddresses(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(i int) int { return r.IntN(i) })
	o.waitLeaves(15 * time.Second)

	// Options are checked before anything attaches to the host.
	if _, err := New(hosts[0], WithAddrPolicy(transport.AddrPolicy(7))); err == nil || !strings.Contains(err.Error(), "WithAddrPolicy") {
		t.Fatalf("an unknown policy: %v", err)
	}
	refused := map[transport.AddrPolicy]uint64{}
	for _, pol := range []transport.AddrPolicy{transport.AddrsAll, transport.AddrsPublic} {
		n, _ := startHostNode(t, r, nil, WithConfig(cfg), WithAddrPolicy(pol))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := n.Join(ctx, addrInfo(hosts[0]))
		cancel()
		if err != nil {
			t.Fatalf("join with policy %v: %v", pol, err)
		}
		st, err := n.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		refused[pol] = st.Transport.AddrsRefused
	}
	if refused[transport.AddrsAll] != 0 || refused[transport.AddrsPublic] == 0 {
		t.Fatalf("learned addresses refused: %v", refused)
	}
}
