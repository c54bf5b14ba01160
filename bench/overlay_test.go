package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

type seeded struct{ r *rand.Rand }

func (s seeded) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(s.r.Uint32())
	}
	return len(b), nil
}

func newHost(tb testing.TB, r *rand.Rand) host.Host {
	tb.Helper()
	k, err := secure.GenerateKey(seeded{r})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// floorProto is the floor's echo protocol. serveFloor registers it on every
// host before the overlay is built: registering a handler later makes
// libp2p's identify push the new protocol list to every connected peer,
// signing and verifying a peer record per connection, and in a 64-node
// process that stalls the overlay for about a second in the middle of the
// measurement.
const floorProto = "/pastry-bench/floor"

// serveFloor echoes 64-byte frames on floorProto streams.
func serveFloor(h host.Host) {
	h.SetStreamHandler(floorProto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	})
}

// floor measures the raw per-hop floor: count 64-byte request/response
// round trips on one long-lived libp2p stream between two hosts.
// openFloor opens the floor's long-lived stream from a to b.
func openFloor(tb testing.TB, a, b host.Host) network.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		tb.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), floorProto)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// floorRT times count 64-byte round trips on the floor's stream s.
func floorRT(tb testing.TB, s network.Stream, count int) []time.Duration {
	tb.Helper()
	buf := make([]byte, 64)
	lat := make([]time.Duration, 0, count)
	for range count {
		t0 := time.Now()
		if _, err := s.Write(buf); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			tb.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// coldFloor is floor over many pairs: count 64-byte round trips, each on
// one of 512 long-lived streams between random connected hosts, picked at
// random. A routed hop in a 64-node overlay crosses a different
// connection, with its goroutines and buffers out of the CPU caches, each
// time; floor's one stream between two hosts stays in them. This is the
// same raw round trip as floor, exercised the way the routes exercise it.
func coldFloor(tb testing.TB, hosts []host.Host, count int) []time.Duration {
	tb.Helper()
	r := rand.New(rand.NewPCG(7, 7)) // not the benchmark's generator: keys stay as they were
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ss []network.Stream
	defer func() {
		for _, s := range ss {
			s.Close()
		}
	}()
	for tries := 0; len(ss) < 512 && tries < 100000; tries++ {
		a, b := hosts[r.IntN(len(hosts))], hosts[r.IntN(len(hosts))]
		if a == b || len(a.Network().ConnsToPeer(b.ID())) == 0 {
			continue
		}
		s, err := a.NewStream(ctx, b.ID(), floorProto)
		if err != nil {
			tb.Fatal(err)
		}
		ss = append(ss, s)
	}
	buf := make([]byte, 64)
	lat := make([]time.Duration, 0, count)
	for i := range count + len(ss) { // the first len(ss) warm up
		s := ss[r.IntN(len(ss))]
		t0 := time.Now()
		if _, err := s.Write(buf); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			tb.Fatal(err)
		}
		if i >= len(ss) {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat
}

// relayProto carries the relay floor's frames between long-lived streams.
const relayProto = "/pastry-bench/relay"

// relay is the relay floor: a 64-byte frame forwarded along a path of
// hosts by a handler that only reads it and writes it on. Its latency is
// what the libp2p stack alone costs a route of the same hops over the
// overlay's connections, with none of the overlay's work (codec, identity
// checks, routing, acks, event loop). A frame is [hops left (255: an
// ack), the indexes of the hosts still to visit..., the previous host,
// the send time] (the last two in bytes 55 and 56-63).
type relay struct {
	// acks, if ackFirst or ackAfter, makes every node that receives a
	// frame send a 64-byte ack back to the previous host too, before or
	// after forwarding it, as the overlay acks each hop. Set between
	// runs; the handlers read it per frame.
	acks  atomic.Int32
	epoch time.Time
	hosts []host.Host
	done  chan time.Duration
	mu    sync.Mutex
	out   map[[2]int]network.Stream // by (from, to)
}

// The relay's ack modes.
const (
	ackNone int32 = iota
	ackFirst
	ackAfter
)

// serve registers the relay's handler on hosts[i] (before the overlay is
// built: see floorProto).
func (rl *relay) serve(i int, h host.Host) {
	h.SetStreamHandler(relayProto, func(s network.Stream) {
		defer s.Close()
		buf, ack := make([]byte, 64), make([]byte, 64)
		ack[0] = 255
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if buf[0] == 255 {
				continue
			}
			prev := int(buf[55])
			if buf[0] == 0 { // delivered: told at once, acked after, as the overlay does
				rl.done <- time.Since(rl.epoch) - time.Duration(binary.BigEndian.Uint64(buf[56:]))
				if rl.acks.Load() != ackNone {
					rl.send(i, prev, ack)
				}
				continue
			}
			next := int(buf[1])
			mode := rl.acks.Load()
			if mode == ackFirst {
				rl.send(i, prev, ack)
			}
			buf[0]--
			copy(buf[1:55], buf[2:56])
			buf[55] = byte(i)
			if err := rl.send(i, next, buf); err != nil {
				return
			}
			if mode == ackAfter {
				rl.send(i, prev, ack)
			}
		}
	})
}

// send writes buf on the long-lived stream from hosts[from] to hosts[to].
func (rl *relay) send(from, to int, buf []byte) error {
	rl.mu.Lock()
	s := rl.out[[2]int{from, to}]
	rl.mu.Unlock()
	if s == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if s, err = rl.hosts[from].NewStream(ctx, rl.hosts[to].ID(), relayProto); err != nil {
			return err
		}
		rl.mu.Lock()
		rl.out[[2]int{from, to}] = s
		rl.mu.Unlock()
	}
	_, err := s.Write(buf)
	return err
}

func (rl *relay) close() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, s := range rl.out {
		s.Close()
	}
}

// relayFloor sends counts[h] frames along random paths of h hops between
// connected hosts, one in flight, in random order, and returns their
// one-way latencies (each path is sent once untimed first, to open its
// streams). A path may be a hop longer than 2 hosts can connect: paths
// are drawn until they fit.
func relayFloor(tb testing.TB, rl *relay, counts map[int]int, seed uint64) (byHops map[int][]time.Duration, cpu time.Duration) {
	tb.Helper()
	r := rand.New(rand.NewPCG(9, seed))
	connected := func(a, b int) bool {
		return a != b && len(rl.hosts[a].Network().ConnsToPeer(rl.hosts[b].ID())) > 0
	}
	var paths [][]int
	for _, h := range slices.Sorted(maps.Keys(counts)) {
		for range counts[h] {
			p := []int{r.IntN(len(rl.hosts))}
			for len(p) <= h {
				next := r.IntN(len(rl.hosts))
				if !connected(p[len(p)-1], next) || slices.Contains(p, next) {
					continue
				}
				p = append(p, next)
			}
			paths = append(paths, p)
		}
	}
	r.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	buf := make([]byte, 64)
	run := func(p []int) time.Duration {
		clear(buf)
		buf[0] = byte(len(p) - 2)
		for k, x := range p[2:] {
			buf[1+k] = byte(x)
		}
		buf[55] = byte(p[0])
		binary.BigEndian.PutUint64(buf[56:], uint64(time.Since(rl.epoch)))
		if err := rl.send(p[0], p[1], buf); err != nil {
			tb.Fatal(err)
		}
		select {
		case d := <-rl.done:
			return d
		case <-time.After(5 * time.Second):
			tb.Fatalf("relay frame along %v not delivered", p)
			return 0
		}
	}
	for _, p := range paths {
		run(p) // opens the path's streams
	}
	byHops = map[int][]time.Duration{}
	cpu0 := cpuTime(tb)
	for _, p := range paths {
		byHops[len(p)-1] = append(byHops[len(p)-1], run(p))
	}
	return byHops, cpuTime(tb) - cpu0
}

// byHopsPhase collects one measured phase's latencies, by hop count, over
// the benchmark's rounds, and the CPU time the phase took.
type byHopsPhase struct {
	name  string
	byHop map[int][]time.Duration
	cpu   time.Duration
}

func (ph *byHopsPhase) add(byHop map[int][]time.Duration, cpu time.Duration) {
	if ph.byHop == nil {
		ph.byHop = map[int][]time.Duration{}
	}
	for h, d := range byHop {
		ph.byHop[h] = append(ph.byHop[h], d...)
	}
	ph.cpu += cpu
}

func (ph *byHopsPhase) all() []time.Duration {
	var out []time.Duration
	for _, h := range slices.Sorted(maps.Keys(ph.byHop)) {
		out = append(out, ph.byHop[h]...)
	}
	return out
}

// cpuPer is the phase's CPU time per path measured.
func (ph *byHopsPhase) cpuPer() time.Duration {
	return ph.cpu / time.Duration(max(len(ph.all()), 1))
}

func (ph *byHopsPhase) log(tb testing.TB) {
	for _, h := range slices.Sorted(maps.Keys(ph.byHop)) {
		tb.Logf("%s, %d hops: %d paths, p50 %v", ph.name, h, len(ph.byHop[h]), pct(ph.byHop[h], 0.5))
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probeApp records the one-way latency of routed probes: the payload
// carries the send time (all nodes share this process's clock).
type probeApp struct {
	epoch time.Time
	mu    *sync.Mutex
	lat   *[]time.Duration
	hops  *[]int
	got   *atomic.Int64
	// signal, if set, is told of every delivery (non-blocking).
	signal chan struct{}
	// credit[i] gets a token back for every delivered message whose
	// payload names sender i in its ninth byte.
	credit []chan struct{}
}

func (p probeApp) Deliver(m *core.Message) {
	if len(m.Payload) < 8 {
		return
	}
	sent := time.Duration(binary.BigEndian.Uint64(m.Payload))
	d := time.Since(p.epoch) - sent
	p.mu.Lock()
	*p.lat = append(*p.lat, d)
	*p.hops = append(*p.hops, int(m.Hops))
	p.mu.Unlock()
	p.got.Add(1)
	if len(m.Payload) > 8 && int(m.Payload[8]) < len(p.credit) {
		select {
		case p.credit[m.Payload[8]] <- struct{}{}:
		default:
		}
	}
	if p.signal != nil {
		select {
		case p.signal <- struct{}{}:
		default:
		}
	}
}
func (probeApp) Forward(*core.Message, *id.Handle) bool { return true }
func (probeApp) Update(id.Handle, bool)                 {}

const probeAppID core.AppID = 7

// totals are the nodes' counters that tell a healthy run from one where
// messages were lost or duplicated: hop timeouts, re-routes, routed
// messages given up, deliveries, and messages dropped by inboxes and
// transports.
type totals struct {
	core  core.Stats
	inbox uint64
	drops [transport.NumDrops]uint64
}

func sumStats(tb testing.TB, nodes []*pastry.Node) totals {
	tb.Helper()
	var t totals
	eachStats(tb, nodes, func(s pastry.Stats) {
		t.core.Add(s.Core)
		t.inbox += s.InboxDrops
		for d, v := range s.Transport.Dropped {
			t.drops[d] += v
		}
	})
	return t
}

// eachStats calls f with every node's Stats.
func eachStats(tb testing.TB, nodes []*pastry.Node, f func(pastry.Stats)) {
	tb.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := n.Stats(ctx)
		cancel()
		if err != nil {
			tb.Fatal(err)
		}
		f(s)
	}
}

func (t totals) String() string {
	c := t.core
	var all uint64
	var why []string
	for d, v := range t.drops {
		all += v
		if v > 0 {
			why = append(why, fmt.Sprintf("%s %d", transport.Drop(d), v))
		}
	}
	return fmt.Sprintf("delivered %d, hop timeouts %d (%d spurious), hops unsent %d, held by joiners %d, reroutes %d, duplicates dropped %d, given up %d, inbox drops %d, transport drops %d %v",
		c.Delivered, c.HopTimeouts, c.SpuriousTimeouts, c.HopsUnsent, c.Held, c.Reroutes, c.Duplicates, c.Dropped, t.inbox, all, why)
}

// counts is sumStats as a line for the log.
func counts(tb testing.TB, nodes []*pastry.Node) string { return sumStats(tb, nodes).String() }

// awaitDeliveries waits until got has counted 99% of sent deliveries since
// it stood at start, or 30 s.
func awaitDeliveries(got *atomic.Int64, start, sent int64) {
	deadline := time.Now().Add(30 * time.Second)
	for got.Load()-start < sent*99/100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// profile writes a CPU profile to file until the returned function (or
// pprof.StopCPUProfile) is called.
func profile(tb testing.TB, file string) func() {
	tb.Helper()
	f, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// heapProfile writes the allocations so far to file: two of them, taken
// before and after a phase, give the phase's (go tool pprof -base).
func heapProfile(tb testing.TB, file string) {
	tb.Helper()
	f, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	runtime.GC() // the profile is as of the last collection
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkOverlay64 builds 64 nodes on loopback in one process and
// measures, in the same run: the per-hop floor (p50/p99 of a 64-byte
// ping-pong on one long-lived stream), routed-message one-way latency
// (p50/p99) with one message in flight, and throughput with 64 concurrent
// senders. The target: route p50 <= (mean hops + 1) x floor p50. Beside
// the floor it reports the same round trip over 512 random pairs of the
// overlay (floor_cold): a route's hops cross a different connection each
// time, the floor's ping-pong one connection that stays in the CPU caches.
// Beside them it reports the relay floor: the same hop counts along random
// paths of hosts whose handler only reads a frame and writes it on, the
// stack's own cost of a route, without acks (relay_floor_*) and with an
// ack per hop as the overlay sends (relay_acked_*; the ack written after
// the forward, or before it with PASTRY_BENCH_RELAY_ACK=first), and the
// CPU each costs per route (route_cpu_us, relay_*_cpu_us). The floor,
// the routes and the relay floors are measured in six interleaved rounds,
// so that the host's drift weighs on all of them alike.
// PASTRY_BENCH_CPUPROFILE=FILE writes a CPU profile of the routes,
// PASTRY_BENCH_MEMPROFILE=FILE allocation profiles around them (either
// makes the benchmark measure in one round). PASTRY_BENCH_WINDOW=N sets
// the nodes' route window (pastry.WithRouteWindow; 0 turns it off).
func BenchmarkOverlay64(b *testing.B) {
	const (
		size     = 64
		window   = 1  // throughput: messages in flight per sender
		burstPer = 78 // burst: messages queued at once per sender (about 5,000 in all)
	)
	r := rand.New(rand.NewPCG(64, 64))
	var hosts []host.Host
	var nodes []*pastry.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, h := range hosts {
			if err := transport.CloseHost(ctx, h); err != nil {
				b.Log(err)
			}
		}
	}()
	var mu sync.Mutex
	var lat []time.Duration
	var hops []int
	var got atomic.Int64
	epoch := time.Now()
	app := probeApp{epoch: epoch, mu: &mu, lat: &lat, hops: &hops, got: &got, signal: make(chan struct{}, 1)}
	for range size {
		app.credit = append(app.credit, make(chan struct{}, window))
	}
	rl := &relay{epoch: epoch, done: make(chan time.Duration, 1), out: map[[2]int]network.Stream{}}
	ackMode := ackAfter
	switch v := os.Getenv("PASTRY_BENCH_RELAY_ACK"); v {
	case "", "after":
	case "first":
		ackMode = ackFirst
	default:
		b.Fatalf("PASTRY_BENCH_RELAY_ACK=%q: want first or after (the default)", v)
	}
	defer rl.close()
	for i := range size {
		h := newHost(b, r)
		serveFloor(h)
		rl.serve(i, h)
		hosts = append(hosts, h)
		rl.hosts = hosts
		n, err := pastry.New(h, benchOpts()...)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		if _, err := n.RegisterApplication(probeAppID, app); err != nil {
			b.Fatal(err)
		}
		var boot []peer.AddrInfo
		if i > 0 {
			j := r.IntN(i)
			boot = []peer.AddrInfo{{ID: hosts[j].ID(), Addrs: hosts[j].Addrs()}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := n.Join(ctx, boot...); err != nil {
			b.Fatalf("join %d: %v", i, err)
		}
		cancel()
	}
	// Let announcements, RTT measurements and leaf sets settle, and warm
	// every stream with lookups.
	time.Sleep(2 * time.Second)
	for range 2000 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := nodes[r.IntN(size)].Lookup(ctx, id.Random(r)); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.Logf("after joins and lookups: %s", counts(b, nodes))
	cold := coldFloor(b, hosts, 5000)

	send := func(from int) {
		p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
		if err := nodes[from].Route(context.Background(), id.Random(r), probeAppID, p); err != nil {
			b.Fatal(err)
		}
	}
	// Warm every stream the measurement can use: from each node, a probe
	// to every routing-table and leaf-set entry (their ids as keys), so
	// the measurement below never pays for opening a stream.
	for i, n := range nodes {
		inf := n.Info()
		var targets []id.Handle
		for _, row := range inf.Rows {
			targets = append(targets, row...)
		}
		targets = append(append(targets, inf.Left...), inf.Right...)
		for _, h := range targets {
			p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
			if err := nodes[i].Route(context.Background(), h.ID, probeAppID, p); err != nil {
				b.Fatal(err)
			}
			select {
			case <-app.signal:
			case <-time.After(5 * time.Second):
				b.Fatalf("warm-up probe from node %d to %s not delivered", i, h.ID.Short())
			}
		}
	}
	b.Logf("after warm-up: %s", counts(b, nodes))

	// The floor, the routes (one message in flight at a time) and the
	// relay floor over the routes' hop counts, without and with acks, in
	// rounds, so that the host's drift during the run (its speed moves by
	// 20% over minutes) weighs on all of them alike.
	const (
		sequential  = 3000 // routes in all
		floorCount  = 5000 // floor round trips in all
		floorWarmup = 200  // floor round trips before the first round, not measured
	)
	rounds := 6
	profFile, memFile := os.Getenv("PASTRY_BENCH_CPUPROFILE"), os.Getenv("PASTRY_BENCH_MEMPROFILE")
	if profFile != "" || memFile != "" {
		rounds = 1 // one profile of all the routes alone
	}
	fs := openFloor(b, hosts[0], hosts[1])
	defer fs.Close()
	floorRT(b, fs, floorWarmup)
	var fl []time.Duration
	route := byHopsPhase{name: "route"}
	relayed := byHopsPhase{name: "relay floor"}
	acked := byHopsPhase{name: "relay floor with acks"}
	for round := range rounds {
		fl = append(fl, floorRT(b, fs, floorCount/rounds)...)
		mu.Lock()
		lat, hops = lat[:0], hops[:0]
		mu.Unlock()
		if profFile != "" {
			stop := profile(b, profFile)
			defer stop()
		}
		if memFile != "" {
			heapProfile(b, memFile+".before")
		}
		cpu0 := cpuTime(b)
		for i := range sequential / rounds {
			send(i % size)
			select { // wait parked, as the floor's ping-pong does
			case <-app.signal:
			case <-time.After(5 * time.Second):
				b.Fatalf("probe %d of round %d not delivered", i, round)
			}
		}
		cpu := cpuTime(b) - cpu0
		pprof.StopCPUProfile() // if profiling: the routes only
		if memFile != "" {
			heapProfile(b, memFile+".after")
		}
		mu.Lock()
		byHops := map[int][]time.Duration{}
		for i, h := range hops {
			byHops[h] = append(byHops[h], lat[i])
		}
		mu.Unlock()
		route.add(byHops, cpu)
		// The relay floor over the same hop counts (a route of 0 hops
		// never leaves its node; the relay has none).
		relayCounts := map[int]int{}
		for h, d := range byHops {
			if h > 0 {
				relayCounts[h] = len(d)
			}
		}
		relayed.add(relayFloor(b, rl, relayCounts, uint64(2*round)))
		rl.acks.Store(ackMode)
		acked.add(relayFloor(b, rl, relayCounts, uint64(2*round+1)))
		rl.acks.Store(ackNone)
	}
	b.Logf("after latency: %s", counts(b, nodes))
	routeLat := route.all()
	var hsum int
	for h, d := range route.byHop {
		hsum += h * len(d)
	}
	meanHops := float64(hsum) / float64(max(len(routeLat), 1))
	routeCPU, relayCPU, ackedCPU := route.cpuPer(), relayed.cpuPer(), acked.cpuPer()
	relayed.log(b)
	acked.log(b)
	route.log(b)

	// Throughput: one message per b.Loop iteration, routed by 64
	// concurrent senders (one per node), each with at most window
	// messages in flight: a sender waits for one of its messages to be
	// delivered before it sends the next (or 1 s, for a message lost).
	// With b.Loop the function runs once, rather than once with b.N = 1
	// and again: the overlay is built once, and the log printed is the
	// one the figures come from.
	for _, c := range app.credit {
		for range window {
			c <- struct{}{}
		}
	}
	work := make(chan struct{}, 1024)
	start := got.Load()
	var stalls atomic.Int64
	var wg sync.WaitGroup
	for s := range size {
		wg.Go(func() {
			rr := rand.New(rand.NewPCG(uint64(s), 1))
			for range work {
				select {
				case <-app.credit[s]:
				case <-time.After(time.Second):
					stalls.Add(1)
				}
				p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
				_ = nodes[s].Route(context.Background(), id.Random(rr), probeAppID, append(p, byte(s)))
			}
		})
	}
	t0 := time.Now()
	sent := 0
	for b.Loop() {
		work <- struct{}{}
		sent++
	}
	close(work)
	wg.Wait()
	awaitDeliveries(&got, start, int64(sent))
	elapsed := time.Since(t0)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(max(sent, 1)), "ns/op")
	if n := stalls.Load(); n > 0 {
		b.Logf("throughput: %d sends waited 1 s for a credit (a message lost)", n)
	}
	thr := float64(got.Load()-start) / elapsed.Seconds()
	b.Logf("after throughput: %s", counts(b, nodes))

	// Burst: every sender queues burstPer messages at once, with no
	// window. The overlay is overloaded for a moment; the hop timeouts
	// and duplicates it causes are reported (see docs/measurements/2026-12-02-throughput-and-bursts.md).
	before := sumStats(b, nodes)
	bstart := got.Load()
	bt0 := time.Now()
	for s := range size {
		wg.Go(func() {
			rr := rand.New(rand.NewPCG(uint64(s), 2))
			for range burstPer {
				p := binary.BigEndian.AppendUint64(nil, uint64(time.Since(epoch)))
				_ = nodes[s].Route(context.Background(), id.Random(rr), probeAppID, p)
			}
		})
	}
	wg.Wait()
	awaitDeliveries(&got, bstart, size*burstPer)
	burstTime := time.Since(bt0)
	after := sumStats(b, nodes)
	b.ReportMetric(float64(after.core.HopTimeouts-before.core.HopTimeouts), "burst_hop_timeouts")
	b.Logf("burst of %d messages: delivered %d (99%% in %v), hop timeouts %d, duplicates dropped %d, given up %d",
		size*burstPer, got.Load()-bstart, burstTime.Round(time.Millisecond), after.core.HopTimeouts-before.core.HopTimeouts,
		after.core.Duplicates-before.core.Duplicates, after.core.Dropped-before.core.Dropped)

	f50, f99 := pct(fl, 0.5), pct(fl, 0.99)
	r50, r99 := pct(routeLat, 0.5), pct(routeLat, 0.99)
	b.ReportMetric(float64(f50.Microseconds()), "floor_p50_us")
	b.ReportMetric(float64(f99.Microseconds()), "floor_p99_us")
	c50, c99 := pct(cold, 0.5), pct(cold, 0.99)
	b.ReportMetric(float64(c50.Microseconds()), "floor_cold_p50_us")
	b.ReportMetric(float64(c99.Microseconds()), "floor_cold_p99_us")
	rf50 := pct(relayed.all(), 0.5)
	b.ReportMetric(float64(rf50.Microseconds()), "relay_floor_p50_us")
	b.ReportMetric(float64(r50.Microseconds()), "route_p50_us")
	b.ReportMetric(float64(r99.Microseconds()), "route_p99_us")
	b.ReportMetric(float64(routeCPU.Microseconds()), "route_cpu_us")
	b.ReportMetric(float64(relayCPU.Microseconds()), "relay_floor_cpu_us")
	ra50 := pct(acked.all(), 0.5)
	b.ReportMetric(float64(ra50.Microseconds()), "relay_acked_p50_us")
	b.ReportMetric(float64(ackedCPU.Microseconds()), "relay_acked_cpu_us")
	b.ReportMetric(meanHops, "mean_hops")
	b.ReportMetric(thr, "routed_msgs/s")
	b.ReportMetric((meanHops+1)*float64(f50.Microseconds()), "target_p50_us")
	b.Logf("64 nodes: floor p50 %v p99 %v (cold, over 512 pairs: p50 %v p99 %v); route p50 %v p99 %v over %.2f hops (target p50 <= %v; relay floor over the same hops p50 %v, with an ack per hop %v: the route costs %.2fx that); %.0f msgs/s delivered with %d in flight per sender",
		f50, f99, c50, c99, r50, r99, meanHops, time.Duration((meanHops+1)*float64(f50)), rf50, ra50, float64(r50)/float64(max(ra50, 1)), thr, window)
}

// benchOpts are the nodes' options: PASTRY_BENCH_WINDOW's route window.
func benchOpts() []pastry.Option {
	if v := os.Getenv("PASTRY_BENCH_WINDOW"); v != "" {
		w, err := strconv.Atoi(v)
		if err != nil {
			panic(fmt.Sprintf("PASTRY_BENCH_WINDOW=%q: %v", v, err))
		}
		return []pastry.Option{pastry.WithRouteWindow(w)}
	}
	return nil
}
