package pastry

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// fastConfig detects failures in seconds rather than minutes, for tests.
func fastConfig() core.Config {
	c := core.DefaultConfig()
	c.HeartbeatInterval = 500 * time.Millisecond
	c.NeighborSilence = 1500 * time.Millisecond
	c.ProbeTimeout = 300 * time.Millisecond
	c.ProbeRetries = 2
	c.HopTimeoutMax = 500 * time.Millisecond
	c.JoinTimeout = 3 * time.Second
	return c
}

// detection bounds how long a config takes to notice and repair a failure:
// silence, then every probe timing out, then repair round trips and a few
// heartbeats to spread the news, plus slack for a loaded CI machine (this
// is a protocol bound, not a speed target: measured 3.9 s with fastConfig).
func detection(c core.Config) time.Duration {
	return c.NeighborSilence + time.Duration(c.ProbeRetries+1)*c.ProbeTimeout + 3*c.HeartbeatInterval + 3*time.Second
}

func keyHandle(t testing.TB, r *rand.Rand) (id.Handle, peer.ID) {
	t.Helper()
	k, err := secure.GenerateKey(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	h, err := secure.HandleFromPeer(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

type chachaReader struct{ r *rand.Rand }

func (c chachaReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(c.r.Uint32())
	}
	return len(b), nil
}

// overlay is a set of running nodes and a way to check them against the
// truth.
type overlay struct {
	t     testing.TB
	nodes []*Node
	dead  map[int]bool
}

func (o *overlay) live() []id.ID {
	var ids []id.ID
	for i, n := range o.nodes {
		if !o.dead[i] {
			ids = append(ids, n.ID())
		}
	}
	slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })
	return ids
}

// leafErrors counts live nodes whose leaf set is not the true one.
func (o *overlay) leafErrors() int {
	live := o.live()
	bad := 0
	for i, n := range o.nodes {
		if o.dead[i] {
			continue
		}
		half := n.opts.core.LeafSetSize / 2
		self := n.ID()
		var others []id.ID
		for _, x := range live {
			if x != self {
				others = append(others, x)
			}
		}
		cw := slices.Clone(others)
		slices.SortFunc(cw, func(a, b id.ID) int { return id.Clockwise(self, a).Cmp(id.Clockwise(self, b)) })
		ccw := slices.Clone(others)
		slices.SortFunc(ccw, func(a, b id.ID) int { return id.Clockwise(a, self).Cmp(id.Clockwise(b, self)) })
		k := min(half, len(others))
		ids := func(es []routing.Entry) []id.ID {
			var out []id.ID
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		if !slices.Equal(ids(n.State().Leaves.Right()), cw[:k]) || !slices.Equal(ids(n.State().Leaves.Left()), ccw[:k]) {
			bad++
		}
	}
	return bad
}

// waitLeaves polls until every leaf set is exact or the deadline passes.
func (o *overlay) waitLeaves(within time.Duration) {
	o.t.Helper()
	deadline := time.Now().Add(within)
	for {
		bad := o.leafErrors()
		if bad == 0 {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("%d leaf sets still wrong after %v", bad, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lookupKey looks key up from n and checks it ends at the numerically
// closest live node.
func (o *overlay) lookupKey(n *Node, key id.ID) LookupResult {
	o.t.Helper()
	live := o.live()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Lookup(ctx, key)
	if err != nil {
		o.t.Fatalf("lookup %s: %v", key.Short(), err)
	}
	want := live[0]
	for _, x := range live[1:] {
		if id.Closer(key, x, want) {
			want = x
		}
	}
	if res.Root != want {
		o.t.Fatalf("lookup %s ended at %s, root is %s (path %v)", key.Short(), res.Root.Short(), want.Short(), res.Path)
	}
	for _, x := range o.nodes {
		if x.ID() == want && string(res.RootPeer) != x.Self().Addr {
			o.t.Fatalf("lookup %s: root peer %s, the root is %s", key.Short(), res.RootPeer, peer.ID(x.Self().Addr))
		}
	}
	return res
}

// lookups routes count random keys from random live nodes and checks each
// ends at the numerically closest live node.
func (o *overlay) lookups(count int, r *rand.Rand) (meanHops float64, lat []time.Duration) {
	o.t.Helper()
	var hops int
	for range count {
		i := r.IntN(len(o.nodes))
		for o.dead[i] {
			i = r.IntN(len(o.nodes))
		}
		res := o.lookupKey(o.nodes[i], id.Random(r))
		hops += res.Hops
		lat = append(lat, res.Latency)
	}
	return float64(hops) / float64(count), lat
}

func (o *overlay) close() {
	for i, n := range o.nodes {
		if !o.dead[i] {
			n.Close()
		}
	}
}

// newMemNode attaches a node with fastConfig (or what opts say) to hub;
// the test's cleanup closes it (before the hub, if the hub's cleanup was
// registered first).
func newMemNode(t testing.TB, r *rand.Rand, hub *transport.Hub, opts ...Option) *Node {
	t.Helper()
	self, _ := keyHandle(t, r)
	n, err := NewWithTransport(self, func(h transport.Handler) (transport.Transport, error) { return hub.Attach(self, h) },
		append([]Option{WithConfig(fastConfig())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// joinVia joins n through via, or starts an overlay when via is nil.
func joinVia(t testing.TB, n, via *Node) {
	t.Helper()
	var boot []peer.AddrInfo
	if via != nil {
		boot = []peer.AddrInfo{{ID: peer.ID(via.Self().Addr)}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Join(ctx, boot...); err != nil {
		t.Fatalf("join of %s: %v", n.ID().Short(), err)
	}
}

// memOverlay joins size nodes on hub, each through a random earlier one,
// and waits for every leaf set to be exact.
func memOverlay(t testing.TB, r *rand.Rand, hub *transport.Hub, size int, opts ...Option) *overlay {
	t.Helper()
	o := &overlay{t: t, dead: map[int]bool{}}
	for i := range size {
		n := newMemNode(t, r, hub, opts...)
		var via *Node
		if i > 0 {
			via = o.nodes[r.IntN(i)]
		}
		o.nodes = append(o.nodes, n)
		joinVia(t, n, via)
	}
	o.waitLeaves(10 * time.Second)
	return o
}

func TestMemOverlay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	hub := transport.NewHub(transport.HubLatency(func(a, b peer.ID) time.Duration { return 200 * time.Microsecond }))
	t.Cleanup(hub.Close)
	o := memOverlay(t, r, hub, 24)
	mh, _ := o.lookups(500, r)
	t.Logf("24 nodes in memory: mean hops %.2f", mh)
}

// newHostNode starts a libp2p host on loopback and a node on it; tweaks
// change the host's default configuration. The caller closes both.
func newHostNode(t testing.TB, r *rand.Rand, cfg core.Config, tweaks ...func(*transport.HostConfig)) (*Node, host.Host) {
	t.Helper()
	return hostNode(t, r, func(hc *transport.HostConfig) {
		for _, tw := range tweaks {
			tw(hc)
		}
	}, WithConfig(cfg))
}

// startHostNode is newHostNode with node options, closed when the test
// ends; tweak (or nil) changes the host's default configuration.
func startHostNode(t testing.TB, r *rand.Rand, tweak func(*transport.HostConfig), opts ...Option) (*Node, host.Host) {
	t.Helper()
	n, h := hostNode(t, r, tweak, opts...)
	t.Cleanup(func() { n.Close(); h.Close() })
	return n, h
}

func hostNode(t testing.TB, r *rand.Rand, tweak func(*transport.HostConfig), opts ...Option) (*Node, host.Host) {
	t.Helper()
	k, err := secure.GenerateKey(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	hc := transport.DefaultHostConfig(k)
	if tweak != nil {
		tweak(&hc)
	}
	h, err := transport.NewLoopbackHost(hc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(h, opts...)
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	return n, h
}

func addrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// startLibp2pOverlay starts size nodes on loopback hosts, each joining
// through the node boot(i) picks among those already joined; everything is
// closed when the test ends.
func startLibp2pOverlay(t *testing.T, r *rand.Rand, cfg core.Config, size int, boot func(i int) int, tweaks ...func(i int, hc *transport.HostConfig)) (*overlay, []host.Host) {
	t.Helper()
	return startOverlay(t, r, size, boot, tweaks, WithConfig(cfg))
}

// startLibp2pOverlayOpts is startLibp2pOverlay with node options.
func startLibp2pOverlayOpts(t *testing.T, r *rand.Rand, size int, boot func(i int) int, opts ...Option) (*overlay, []host.Host) {
	t.Helper()
	return startOverlay(t, r, size, boot, nil, opts...)
}

func startOverlay(t *testing.T, r *rand.Rand, size int, boot func(i int) int, tweaks []func(i int, hc *transport.HostConfig), opts ...Option) (*overlay, []host.Host) {
	t.Helper()
	o := &overlay{t: t, dead: map[int]bool{}}
	var hosts []host.Host
	t.Cleanup(func() {
		o.close()
		for _, h := range hosts {
			h.Close()
		}
	})
	for i := range size {
		n, h := hostNode(t, r, func(hc *transport.HostConfig) {
			for _, f := range tweaks {
				f(i, hc)
			}
		}, opts...)
		o.nodes, hosts = append(o.nodes, n), append(hosts, h)
		var via []peer.AddrInfo
		if i > 0 {
			via = []peer.AddrInfo{addrInfo(hosts[boot(i)])}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := n.Join(ctx, via...)
		cancel()
		if err != nil {
			t.Fatalf("node %d join: %v", i, err)
		}
	}
	return o, hosts
}

func testLibp2pOverlay(t *testing.T, size, kill int) {
	r := rand.New(rand.NewPCG(uint64(size), 7))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, size, func(i int) int { return r.IntN(i) })
	o.waitLeaves(15 * time.Second)
	for i, n := range o.nodes {
		inf := n.Info()
		if est := inf.NetworkSize; est < float64(size)/2 || est > float64(size)*2 {
			t.Errorf("node %d estimates %v nodes, there are %d", i, est, size)
		}
		if size <= 3 && inf.NetworkSize != float64(size) {
			t.Errorf("node %d: a leaf set covering the ring must count exactly: %v", i, inf.NetworkSize)
		}
		if inf.Status != core.StatusJoined || len(inf.Addrs) == 0 {
			t.Errorf("node %d info: %+v", i, inf)
		}
	}
	mh, lat := o.lookups(1000, r)
	// Proximity is measured in the background; once known, nodes must be
	// (re)admitted to the neighbourhood set (it was empty forever before).
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < len(o.nodes); {
		if len(o.nodes[i].Info().Neighbors) > 0 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: empty neighbourhood set after 1000 lookups", i)
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(lat)
	t.Logf("%d nodes over libp2p: 1000 lookups at the root, mean hops %.2f, round trip p50 %v p99 %v",
		size, mh, lat[len(lat)/2], lat[len(lat)*99/100])
	if kill == 0 {
		return
	}
	start := time.Now()
	for _, i := range r.Perm(size)[:kill] {
		o.nodes[i].Close()
		hosts[i].Close()
		o.dead[i] = true
	}
	o.waitLeaves(detection(cfg))
	t.Logf("%d nodes killed: leaf sets repaired in %v (bound %v)", kill, time.Since(start).Round(10*time.Millisecond), detection(cfg))
	o.lookups(200, r)
}

func TestLibp2pThreeNodes(t *testing.T) { testLibp2pOverlay(t, 3, 0) }

func TestLibp2pThirtyTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("32 libp2p hosts")
	}
	testLibp2pOverlay(t, 32, 3)
}

func TestRestartReusesIdentity(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/key"
	k1, created, err := secure.LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	k2, created, err := secure.LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("restart: created=%v err=%v", created, err)
	}
	p1, _ := peer.IDFromPrivateKey(k1)
	p2, _ := peer.IDFromPrivateKey(k2)
	if p1 != p2 {
		t.Fatalf("restart changed the peer ID: %s -> %s", p1, p2)
	}
	h, err := transport.NewHost(transport.DefaultHostConfig(k2))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n, err := New(h)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	want, _ := secure.NodeIDFromPeer(p1)
	if n.ID() != want {
		t.Fatalf("node id %s after restart, want %s", n.ID(), want)
	}
}

// payloadApp hands delivered payloads to a channel.
type payloadApp struct{ got chan []byte }

func (a payloadApp) Deliver(m *core.Message) {
	select {
	case a.got <- m.Payload:
	default:
	}
}
func (payloadApp) Forward(*core.Message, *id.Handle) bool { return true }
func (payloadApp) Update(id.Handle, bool)                 {}

// Route refuses before the join, returns once the message is queued, and
// copies the payload: the caller may reuse its buffer at once.
func TestRouteQueuesACopy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	hub := transport.NewHub()
	t.Cleanup(hub.Close)
	app := payloadApp{got: make(chan []byte, 1)}
	var nodes []*Node
	for i := range 2 {
		n := newMemNode(t, r, hub)
		if _, err := n.RegisterApplication(9, app); err != nil {
			t.Fatal(err)
		}
		if err := n.Route(context.Background(), id.Random(r), 9, []byte("x")); !errors.Is(err, core.ErrNotJoined) {
			t.Fatalf("route before the join: %v, want ErrNotJoined", err)
		}
		var via *Node
		if i > 0 {
			via = nodes[0]
		}
		nodes = append(nodes, n)
		joinVia(t, n, via)
	}
	buf := []byte("the original payload")
	if err := nodes[0].Route(context.Background(), nodes[1].ID(), 9, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "OVERWRITTEN BY CALLER")
	select {
	case got := <-app.got:
		if string(got) != "the original payload" {
			t.Fatalf("delivered %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	nodes[1].Close()
	if err := nodes[1].Route(context.Background(), nodes[0].ID(), 9, buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("route on a closed node: %v", err)
	}
}
