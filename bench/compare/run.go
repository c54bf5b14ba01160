package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// kadPrefix is the DHT's protocol prefix: not /ipfs, so that the DHT is a
// private one (kad-dht enforces the Amino network's settings under /ipfs).
const kadPrefix = "/pastry-bench"

// acceptAll is the DHT's validator for the "v" namespace: every value is
// valid and the first of several is kept. Both protocols store signed
// records of the same size; only Pastry checks the signature (kad-dht's
// cost of a validator is local CPU, not messages).
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

// bench is one run: the hosts, and each protocol on all of them.
type bench struct {
	cfg   Config
	out   io.Writer
	r     *mrand.Rand
	ctr   *byteCounters
	raw   []host.Host // the hosts as libp2p built them (to close)
	hosts []host.Host // the same, counting stream bytes
	nodes []*pastry.Node
	dhts  []*dht.IpfsDHT
	// GossipSub's RPC counter, and what stops its routers.
	gossipRPCs  *rpcCounter
	closeGossip context.CancelFunc
	ids         []id.ID // the nodes' ids, sorted
	res         *Result
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// run carries out one comparison as cfg says.
func run(ctx context.Context, cfg Config, out io.Writer) (_ *Result, err error) {
	installKadMetrics()
	b := &bench{cfg: cfg, out: out, r: mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), ctr: &byteCounters{}}
	b.res = newResult(cfg)
	defer func() {
		if err != nil {
			b.logf("failed: %v; closing", err)
		}
		b.close()
	}()
	b.res.Baseline = footprint()
	if err := b.makeHosts(); err != nil {
		return nil, err
	}
	b.res.Hosts = footprint()
	b.logf("%d hosts over %s: RSS %.1f MiB, %d goroutines", cfg.Nodes, cfg.Transport, mib(b.res.Hosts.RSS), b.res.Hosts.Goroutines)
	prev := b.res.Hosts
	for i, p := range b.order() {
		var err error
		var pr *ProtoResult
		switch p {
		case Pastry:
			pr, err = b.setupPastry(ctx)
		case Kad:
			pr, err = b.setupKad(ctx)
		}
		if err != nil {
			return nil, err
		}
		pr.Order = i + 1
		time.Sleep(cfg.Settle)
		pr.Added = footprint()
		pr.AddedPerNode = perNode(pr.Added, prev, cfg.Nodes)
		prev = pr.Added
		b.logf("%s ready in %.2f s; %.0f messages, %.0f bytes per node to get there; +%.2f MiB RSS, +%.0f goroutines per node",
			p, pr.ReadyS, pr.SetupMsgsPerNode, pr.SetupBytesPerNode, pr.AddedPerNode.RSSMiB, pr.AddedPerNode.Goroutines)
	}
	b.res.Both = footprint()
	if err := b.idle(ctx); err != nil {
		return nil, err
	}
	if err := b.operations(ctx); err != nil {
		return nil, err
	}
	if cfg.Publishes > 0 {
		if err := b.publishSubscribe(ctx); err != nil {
			return nil, err
		}
	}
	for _, op := range b.res.Ops {
		pr := b.res.proto(op.Protocol)
		idleTypes := map[string]float64{}
		for k, v := range pr.IdleByType {
			idleTypes[k] = v * float64(cfg.Nodes)
		}
		op.finish(pr.IdleMsgsPerNodeS*float64(cfg.Nodes), pr.IdleBytesPerNodeS*float64(cfg.Nodes), idleTypes)
		b.logf("%-9s %-22s n=%d failed=%d wrong=%d p50 %.2f ms p99 %.2f ms, %.1f messages/op", op.Protocol, op.Call, op.Count, op.Failed, op.Wrong, op.P50Ms, op.P99Ms, op.MsgsPerOp)
		if len(op.ByType) > 0 {
			b.logf("%-9s %-22s messages/op by type (net of idle): %s", op.Protocol, op.Call, byTypeString(op.ByType))
		}
	}
	b.res.AfterOps = footprint()
	if b.closeGossip != nil {
		before := footprint()
		b.closeGossip()
		b.closeGossip = nil
		time.Sleep(2 * time.Second)
		b.res.GossipSub.RemovedPerNode = perNode(before, footprint(), cfg.Nodes)
	}
	// Take the protocols off in the reverse order, and measure what
	// each one's going gives back (connections stay: they are the
	// host's).
	ord := b.order()
	for i := len(ord) - 1; i >= 0; i-- {
		before := footprint()
		// Close every instance at once, within a budget: a node's
		// transport waits for its writers, and at 200 nodes one after
		// the other did not finish in 5 minutes.
		var wg sync.WaitGroup
		switch ord[i] {
		case Pastry:
			for _, n := range b.nodes {
				wg.Go(func() { n.Close() })
			}
			b.nodes = nil
		case Kad:
			for _, d := range b.dhts {
				wg.Go(func() { d.Close() })
			}
			b.dhts = nil
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.logf("%s still closing after 30 s: not measuring what closing it gives back", ord[i])
			continue
		}
		time.Sleep(2 * time.Second)
		after := footprint()
		b.res.proto(ord[i]).RemovedPerNode = perNode(before, after, cfg.Nodes)
	}
	b.res.Finished = time.Now().UTC().Format(time.RFC3339)
	return b.res, nil
}

func (b *bench) order() []string {
	if b.cfg.Order == OrderKadFirst {
		return []string{Kad, Pastry}
	}
	return []string{Pastry, Kad}
}

// close stops everything within a budget: the protocols on every host
// at once (a node's transport waits for its writers, which a loaded or
// wedged peer can hold up), then the hosts, which reset what is left.
func (b *bench) close() {
	if b.closeGossip != nil {
		b.closeGossip()
	}
	var wg sync.WaitGroup
	for _, n := range b.nodes {
		wg.Go(func() { n.Close() })
	}
	for _, d := range b.dhts {
		wg.Go(func() { d.Close() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.logf("protocols still closing after 10 s; closing the hosts under them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var hw sync.WaitGroup
	for _, h := range b.raw {
		hw.Go(func() { transport.CloseHost(ctx, h) })
	}
	hw.Wait()
}

// seeded adapts the run's generator for key generation.
type seeded struct{ r *mrand.Rand }

func (s seeded) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

// makeHosts builds the run's hosts: the product's loopback hosts
// (transport.NewLoopbackHost: no relays, no NAT services, no mDNS, on
// 127.0.0.1), each wrapped to count stream bytes.
func (b *bench) makeHosts() error {
	listen := "/ip4/127.0.0.1/udp/0/quic-v1"
	if b.cfg.Transport == "tcp" {
		listen = "/ip4/127.0.0.1/tcp/0"
	}
	for range b.cfg.Nodes {
		k, err := secure.GenerateKey(seeded{b.r})
		if err != nil {
			return err
		}
		hc := transport.DefaultHostConfig(k)
		hc.ListenAddrs = []string{listen}
		h, err := transport.NewLoopbackHost(hc)
		if err != nil {
			return err
		}
		b.raw = append(b.raw, h)
		b.hosts = append(b.hosts, &countingHost{Host: h, c: b.ctr})
	}
	return nil
}

func addrInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// pastryMsgs sums the messages and frame bytes every node's transport
// sent: protocol messages (acks among them), pings and pongs (counted as
// the pongs that reached their pinger).
func (b *bench) pastryMsgs() (msgs, frameBytes uint64) {
	for _, n := range b.nodes {
		st := n.Transport().Stats()
		for i := range st.SentMsgs {
			msgs += st.SentMsgs[i]
			frameBytes += st.SentBytes[i]
		}
		msgs += st.PingsSent + st.PongsReceived + st.PongsLate
	}
	return msgs, frameBytes
}

// coreStats sums the Pastry nodes' protocol counters.
func (b *bench) coreStats(ctx context.Context) core.Stats {
	var sum core.Stats
	for _, n := range b.nodes {
		if st, err := n.Stats(ctx); err == nil {
			sum.Add(st.Core)
		}
	}
	return sum
}

// byTypeString lists m's kinds, largest first.
func byTypeString(m map[string]float64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// inBatches starts nodes 1 to n-1 in batches of cfg.Batch at once, each
// batch after the one before has finished (node 0 is started by the
// caller): step(i, done) is called on this goroutine, with done the nodes
// started so far, and returns the work that starts node i. It logs
// progress (format: done, n, seconds since start) each tenth of the way,
// and stops at a batch with an error.
func (b *bench) inBatches(n int, start time.Time, format string, step func(i, done int) func() error) error {
	tenth := 0
	for done := 1; done < n; {
		if t := 10 * done / n; t > tenth {
			tenth = t
			b.logf(format, done, n, time.Since(start).Seconds())
		}
		end := min(done+b.cfg.Batch, n)
		errs := make([]error, end-done)
		var wg sync.WaitGroup
		for i := done; i < end; i++ {
			work := step(i, done)
			wg.Go(func() { errs[i-done] = work() })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		done = end
	}
	return nil
}

// pastryByType is pastryMsgs by kind: frames by their message type's
// name, and pings and pongs.
func (b *bench) pastryByType() map[string]uint64 {
	m := map[string]uint64{}
	for _, n := range b.nodes {
		st := n.Transport().Stats()
		for i, v := range st.SentMsgs {
			if v > 0 {
				m[core.MsgType(i).String()] += v
			}
		}
		m["ping"] += st.PingsSent
		m["pong"] += st.PongsReceived + st.PongsLate
	}
	return m
}

// counts returns protocol p's messages and stream bytes so far.
func (b *bench) counts(p string) (msgs, byts uint64) {
	by, _ := b.ctr.snapshot()
	switch p {
	case Pastry:
		m, _ := b.pastryMsgs()
		return m, by[protoPastry]
	case GossipSub:
		return b.gossipMsgs(), by[protoGossip]
	default:
		return readKadCounts().Wire(), by[protoKad]
	}
}

// setupPastry starts a node on every host and joins them as the devnet
// does (node 0 starts the overlay; the others join in batches of
// cfg.Batch concurrent joins, each through a random node that has
// joined), then waits until every leaf set is exact.
func (b *bench) setupPastry(ctx context.Context) (*ProtoResult, error) {
	pr := b.res.proto(Pastry)
	m0, by0 := b.counts(Pastry)
	start := time.Now()
	cc := core.DefaultConfig()
	if b.cfg.Heartbeat > 0 {
		cc.HeartbeatInterval = b.cfg.Heartbeat
		cc.NeighborSilence = b.cfg.Heartbeat * 5 / 2
	}
	pr.Config = fmt.Sprintf("b=%d, L=%d, heartbeat %v, joins in batches of %d", cc.B, cc.LeafSetSize, cc.HeartbeatInterval, b.cfg.Batch)
	for i, h := range b.hosts {
		n, err := pastry.New(h, pastry.WithConfig(cc), pastry.WithTransportOptions(transport.KeepHandlerOnClose()))
		if err != nil {
			return nil, fmt.Errorf("pastry node %d: %w", i, err)
		}
		b.nodes = append(b.nodes, n)
		b.ids = append(b.ids, n.ID())
	}
	slices.SortFunc(b.ids, func(x, y id.ID) int { return x.Cmp(y) })
	if err := b.nodes[0].Join(ctx); err != nil {
		return nil, err
	}
	if err := b.inBatches(len(b.nodes), start, "pastry: %d of %d joined (%.1f s)", func(i, joined int) func() error {
		via := b.r.Perm(joined)[:min(joined, 6)]
		return func() error { return b.joinPastry(ctx, i, via) }
	}); err != nil {
		return nil, err
	}
	pr.JoinedS = time.Since(start).Seconds()
	deadline := time.Now().Add(b.cfg.ReadyTimeout)
	wrong := b.wrongLeafSets()
	for wrong > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		wrong = b.wrongLeafSets()
	}
	pr.ReadyS = time.Since(start).Seconds()
	pr.Ready = fmt.Sprintf("%d of %d leaf sets exact", len(b.nodes)-wrong, len(b.nodes))
	if wrong > 0 {
		return nil, fmt.Errorf("pastry: %d leaf sets not exact %v after the joins", wrong, b.cfg.ReadyTimeout)
	}
	m1, by1 := b.counts(Pastry)
	pr.setup(m1-m0, by1-by0, len(b.nodes))
	return pr, nil
}

// joinPastry joins node i through the nodes via, in turn, as the devnet
// does: Node.Join may give up waiting ("no answer to the join") while
// the core is still joining (on a loaded machine), so then it waits for
// the core's own verdict before trying another node.
func (b *bench) joinPastry(ctx context.Context, i int, via []int) error {
	var last error
	n := b.nodes[i]
	for _, v := range via {
		jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := n.Join(jctx, addrInfo(b.hosts[v]))
		cancel()
		if err == nil {
			return nil
		}
		// Wait for the core's verdict (it retries on its own), up to 2
		// minutes on a loaded machine.
		for t := time.Now(); n.Status() == core.StatusJoining && time.Since(t) < 2*time.Minute && ctx.Err() == nil; {
			time.Sleep(50 * time.Millisecond)
		}
		if n.Status() == core.StatusJoined {
			return nil
		}
		last = err
		if ctx.Err() != nil || n.Status() != core.StatusIdle {
			break
		}
		b.logf("pastry node %d: join through %d failed (%v); trying another node", i, v, err)
	}
	return fmt.Errorf("pastry node %d: join: %w", i, last)
}

// wrongLeafSets counts nodes whose leaf set is not the true one.
func (b *bench) wrongLeafSets() int {
	wrong := 0
	n := len(b.ids)
	for _, nd := range b.nodes {
		inf := nd.Info()
		half := nd.Config().LeafSetSize / 2
		at, _ := slices.BinarySearchFunc(b.ids, inf.NodeID, func(x, y id.ID) int { return x.Cmp(y) })
		k := min(half, n-1)
		ok := len(inf.Left) == k && len(inf.Right) == k
		for j := 0; ok && j < k; j++ {
			ok = inf.Right[j].ID == b.ids[(at+1+j)%n] && inf.Left[j].ID == b.ids[(at-1-j+n)%n]
		}
		if !ok {
			wrong++
		}
	}
	return wrong
}

// trueRoot is the id numerically closest to key.
func (b *bench) trueRoot(key id.ID) id.ID {
	best := b.ids[0]
	for _, x := range b.ids[1:] {
		if id.Closer(key, x, best) {
			best = x
		}
	}
	return best
}

// setupKad starts a DHT server on every host, in batches of cfg.Batch:
// each connects to a random host whose DHT has started and refreshes its
// routing table (kad-dht's bootstrap). Ready is when every DHT has
// finished its first refresh.
func (b *bench) setupKad(ctx context.Context) (*ProtoResult, error) {
	pr := b.res.proto(Kad)
	pr.Config = fmt.Sprintf("go-libp2p-kad-dht %s, server mode, k=20, alpha=10, prefix %s, bootstrap: connect to a random started node, then RefreshRoutingTable; batches of %d", kadVersion(), kadPrefix, b.cfg.Batch)
	m0, by0 := b.counts(Kad)
	start := time.Now()
	for i, h := range b.hosts {
		d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(kadPrefix),
			dht.NamespacedValidator("v", acceptAll{}), dht.DisableProviders())
		if err != nil {
			return nil, fmt.Errorf("kad-dht %d: %w", i, err)
		}
		b.dhts = append(b.dhts, d)
	}
	if err := b.inBatches(len(b.dhts), start, "kad-dht: %d of %d bootstrapped (%.1f s)", func(i, started int) func() error {
		via := b.r.IntN(started)
		return func() error { return b.bootstrapKad(ctx, i, via) }
	}); err != nil {
		return nil, err
	}
	// Node 0 bootstrapped nobody: refresh it too, now that others know it.
	if err := b.refreshKad(ctx, 0); err != nil {
		return nil, err
	}
	pr.ReadyS = time.Since(start).Seconds()
	pr.JoinedS = pr.ReadyS
	m1, by1 := b.counts(Kad)
	pr.setup(m1-m0, by1-by0, len(b.dhts))
	// How good the routing tables are at that moment: does each hold its
	// node's 20 XOR-closest peers?
	var have, size int
	for i, d := range b.dhts {
		want := b.kadClosest(kb.ConvertPeerID(b.hosts[i].ID()), 21)[1:] // [0] is the node itself
		rt := d.RoutingTable()
		size += rt.Size()
		for _, p := range want {
			if rt.Find(p) != "" {
				have++
			}
		}
	}
	pr.Ready = fmt.Sprintf("every DHT refreshed once; routing tables hold %.1f peers on average and %.1f%% of each node's 20 XOR-closest peers",
		float64(size)/float64(len(b.dhts)), 100*float64(have)/float64(20*len(b.dhts)))
	return pr, nil
}

func (b *bench) bootstrapKad(ctx context.Context, i, via int) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := b.hosts[i].Connect(cctx, addrInfo(b.hosts[via]))
	cancel()
	if err != nil {
		return fmt.Errorf("kad-dht %d: connect to %d: %w", i, via, err)
	}
	return b.refreshKad(ctx, i)
}

// refreshKad waits for node i's routing table to hold a peer, then
// refreshes it, up to 5 times (a refresh fails when the table emptied
// meanwhile, which kad-dht's own checks of new peers can do on a loaded
// machine).
func (b *bench) refreshKad(ctx context.Context, i int) error {
	d := b.dhts[i]
	var err error
	for range 5 {
		for t := time.Now(); d.RoutingTable().Size() == 0; {
			if time.Since(t) > time.Minute {
				return fmt.Errorf("kad-dht %d: routing table still empty a minute after connecting", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case err = <-d.RefreshRoutingTable():
		case <-ctx.Done():
			return ctx.Err()
		}
		if err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("kad-dht %d: refresh: %w", i, err)
}

// kadClosest returns the count peers XOR-closest to target in kad-dht's
// key space.
func (b *bench) kadClosest(target kb.ID, count int) []peer.ID {
	ps := make([]peer.ID, len(b.hosts))
	for i, h := range b.hosts {
		ps[i] = h.ID()
	}
	return kb.SortClosestPeers(ps, target)[:min(count, len(ps))]
}

// idle measures each protocol's traffic while nothing is asked of it.
func (b *bench) idle(ctx context.Context) error {
	pm0, pb0 := b.counts(Pastry)
	pt0 := b.pastryByType()
	km0, kb0 := b.counts(Kad)
	t0 := time.Now()
	select {
	case <-time.After(b.cfg.Idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	s := time.Since(t0).Seconds()
	pm1, pb1 := b.counts(Pastry)
	pt1 := b.pastryByType()
	km1, kb1 := b.counts(Kad)
	n := float64(b.cfg.Nodes)
	p, k := b.res.proto(Pastry), b.res.proto(Kad)
	p.IdleByType = map[string]float64{}
	for t, v := range pt1 {
		if d := v - pt0[t]; d > 0 {
			p.IdleByType[t] = round3(float64(d) / s / n)
		}
	}
	p.IdleMsgsPerNodeS, p.IdleBytesPerNodeS = float64(pm1-pm0)/s/n, float64(pb1-pb0)/s/n
	k.IdleMsgsPerNodeS, k.IdleBytesPerNodeS = float64(km1-km0)/s/n, float64(kb1-kb0)/s/n
	b.logf("idle %.0f s: pastry %.2f messages/node/s, kad-dht %.2f", s, p.IdleMsgsPerNodeS, k.IdleMsgsPerNodeS)
	b.logf("pastry idle messages/node/s by type: %s", byTypeString(p.IdleByType))
	return nil
}

// segment accumulates one operation's traffic over the stretches of time
// in which it alone ran (less its protocol's idle rate).
type segment struct {
	b      *bench
	op     *OpResult
	m0, b0 uint64
	types0 map[string]uint64
	t0     time.Time
}

func (b *bench) begin(op *OpResult) *segment {
	m, by := b.counts(op.Protocol)
	s := &segment{b: b, op: op, m0: m, b0: by, t0: time.Now()}
	if op.Protocol == Pastry {
		s.types0 = b.pastryByType()
	}
	return s
}

// end closes the stretch and returns the messages sent in it.
func (s *segment) end() uint64 {
	m, by := s.b.counts(s.op.Protocol)
	s.op.msgs += float64(m - s.m0)
	s.op.bytes += float64(by - s.b0)
	s.op.seconds += time.Since(s.t0).Seconds()
	if s.types0 != nil {
		if s.op.byType == nil {
			s.op.byType = map[string]uint64{}
		}
		for k, v := range s.b.pastryByType() {
			if d := v - s.types0[k]; d > 0 {
				s.op.byType[k] += d
			}
		}
	}
	return m - s.m0
}

// operations runs the lookups and the record operations of both
// protocols, interleaved in cfg.Rounds rounds so that the machine's
// drift weighs on both alike.
func (b *bench) operations(ctx context.Context) error {
	res := b.res
	lk := res.op("lookup", Pastry, "Node.Lookup")
	gcp := res.op("lookup", Kad, "GetClosestPeers")
	fp := res.op("find peer", Kad, "FindPeer")
	put := res.op("put", Pastry, "Node.Put")
	get := res.op("get", Pastry, "Node.GetRecord")
	kput := res.op("put", Kad, "PutValue")
	kget := res.op("get", Kad, "GetValue")
	value := make([]byte, b.cfg.ValueSize)
	type stored struct {
		node int
		key  id.ID
		val  []byte
	}
	var mine []stored
	type kstored struct {
		key string
		val []byte
	}
	var kmine []kstored
	n := len(b.hosts)
	rec := 0
	for round := range b.cfg.Rounds {
		share := func(total int) int { return total/b.cfg.Rounds + btoi(round < total%b.cfg.Rounds) }
		b.logf("round %d of %d", round+1, b.cfg.Rounds)
		cs0 := b.coreStats(ctx)
		seg := b.begin(lk)
		straight, count := 0, share(b.cfg.Lookups)
		for range count {
			key := id.Random(b.r)
			from := b.r.IntN(n)
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			t := time.Now()
			r, err := b.nodes[from].Lookup(cctx, key)
			d := time.Since(t)
			cancel()
			lk.add(d, err, err == nil && r.Root != b.trueRoot(key), r.Hops)
			if err == nil && r.AnswerHops <= 1 {
				straight++
			}
			lk.AnswersStraight += btoi(err == nil && r.AnswerHops <= 1)
		}
		if sent := seg.end(); count > 0 {
			cs := b.coreStats(ctx)
			b.logf("pastry lookups, round %d: %.1f messages per lookup (raw), %d of %d answers straight back; hop timeouts %d (spurious %d), reroutes %d, suspected %d, candidate probes %d",
				round+1, float64(sent)/float64(count), straight, count, cs.HopTimeouts-cs0.HopTimeouts, cs.SpuriousTimeouts-cs0.SpuriousTimeouts,
				cs.Reroutes-cs0.Reroutes, cs.Suspected-cs0.Suspected, cs.CandidateProbes-cs0.CandidateProbes)
		}
		seg = b.begin(gcp)
		for range share(b.cfg.KadLookups) {
			key := make([]byte, 32)
			rand.Read(key)
			from := b.r.IntN(n)
			var got []peer.ID
			var err error
			d, rpcs := b.kadOp(ctx, func(c context.Context) error { got, err = b.dhts[from].GetClosestPeers(c, string(key)); return err })
			// Right: the XOR-closest peer is among those returned (or
			// is the origin itself, which kad-dht leaves out).
			best := b.kadClosest(kb.ConvertKey(string(key)), 1)[0]
			wrong := err == nil && !slices.Contains(got, best) && best != b.hosts[from].ID()
			gcp.add(d, err, wrong, rpcs)
		}
		seg.end()
		seg = b.begin(fp)
		for range share(b.cfg.KadLookups) {
			from, target := b.farPair(fp)
			var ai peer.AddrInfo
			var err error
			d, rpcs := b.kadOp(ctx, func(c context.Context) error { ai, err = b.dhts[from].FindPeer(c, b.hosts[target].ID()); return err })
			fp.add(d, err, err == nil && ai.ID != b.hosts[target].ID(), rpcs)
		}
		seg.end()
		seg = b.begin(put)
		for range share(b.cfg.Records) {
			from := b.r.IntN(n)
			name := "rec-" + strconv.Itoa(rec)
			rec++
			rand.Read(value)
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			t := time.Now()
			_, err := b.nodes[from].Put(cctx, name, value, 0)
			d := time.Since(t)
			cancel()
			put.add(d, err, false, 0)
			if err == nil {
				key, _ := b.nodes[from].RecordKey(name)
				mine = append(mine, stored{from, key, slices.Clone(value)})
			}
		}
		seg.end()
		seg = b.begin(kput)
		for range share(b.cfg.Records) {
			from := b.r.IntN(n)
			key := "/v/rec-" + strconv.Itoa(rec)
			rec++
			rand.Read(value)
			var err error
			d, rpcs := b.kadOp(ctx, func(c context.Context) error { err = b.dhts[from].PutValue(c, key, value); return err })
			kput.add(d, err, false, rpcs)
			if err == nil {
				kmine = append(kmine, kstored{key, slices.Clone(value)})
			}
		}
		seg.end()
		seg = b.begin(get)
		for _, s := range mine {
			from := (s.node + 1 + b.r.IntN(n-1)) % n // another node
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			t := time.Now()
			r, err := b.nodes[from].GetRecord(cctx, s.key)
			d := time.Since(t)
			cancel()
			get.add(d, err, err == nil && !bytes.Equal(r.Record.Value, s.val), 0)
		}
		mine = mine[:0]
		seg.end()
		seg = b.begin(kget)
		for _, s := range kmine {
			from := b.r.IntN(n)
			var v []byte
			var err error
			d, rpcs := b.kadOp(ctx, func(c context.Context) error { v, err = b.dhts[from].GetValue(c, s.key); return err })
			kget.add(d, err, err == nil && !bytes.Equal(v, s.val), rpcs)
		}
		kmine = kmine[:0]
		seg.end()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// kadOp runs a kad-dht call and counts the RPCs it starts, from kad-dht's
// query events (a query to a peer publishes SendingQuery; a PUT_VALUE to a
// peer publishes Value).
func (b *bench) kadOp(ctx context.Context, f func(context.Context) error) (time.Duration, int) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ectx, events := routing.RegisterForQueryEvents(cctx)
	counted := make(chan int)
	go func() {
		c := 0
		for e := range events {
			if e.Type == routing.SendingQuery || e.Type == routing.Value {
				c++
			}
		}
		counted <- c
	}()
	t := time.Now()
	err := f(ectx)
	d := time.Since(t)
	cancel()
	rpcs := <-counted
	_ = err
	return d, rpcs
}

// farPair picks an origin and a target the origin is not connected to
// (FindPeer answers at once, with no RPC, for a connected peer), trying
// 100 random pairs. Failing that (the protocol set up first may have
// connected every pair), it closes a random pair's connections first and
// counts it in the operation's Disconnected.
func (b *bench) farPair(op *OpResult) (int, int) {
	n := len(b.hosts)
	for range 100 {
		from, to := b.r.IntN(n), b.r.IntN(n)
		if from != to && b.hosts[from].Network().Connectedness(b.hosts[to].ID()) != network.Connected {
			return from, to
		}
	}
	from := b.r.IntN(n)
	to := (from + 1 + b.r.IntN(n-1)) % n
	b.raw[from].Network().ClosePeer(b.raw[to].ID())
	op.Disconnected++
	return from, to
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// footprint is the process's RSS and goroutines after two collections and
// debug.FreeOSMemory (so RSS holds live memory, not heap awaiting the
// scavenger).
func footprint() Footprint {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Footprint{RSS: readRSS(), Heap: ms.HeapInuse, Goroutines: runtime.NumGoroutine()}
}

// readRSS reads VmRSS from /proc/self/status (0 where there is none).
func readRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kib, _ := strconv.ParseUint(f[0], 10, 64)
				return kib << 10
			}
		}
	}
	return 0
}

func perNode(now, before Footprint, n int) PerNode {
	return PerNode{
		RSSMiB:     (float64(now.RSS) - float64(before.RSS)) / float64(n) / (1 << 20),
		HeapMiB:    (float64(now.Heap) - float64(before.Heap)) / float64(n) / (1 << 20),
		Goroutines: float64(now.Goroutines-before.Goroutines) / float64(n),
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// kadVersion is the go-libp2p-kad-dht version this binary was built with.
func kadVersion() string { return depVersion("github.com/libp2p/go-libp2p-kad-dht") }
