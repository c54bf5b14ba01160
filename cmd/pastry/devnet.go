package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/replication/pebblestore"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// devnetConfig is `pastry devnet`'s flags.
type devnetConfig struct {
	n          int
	apiBase    int // 0: random ports
	prefix     string
	exitAfter  time.Duration
	readyFile  string
	transport  string // tcp, quic or auto
	batch      int
	settle     time.Duration
	logLevel   slog.Level
	logLevelIn string
	cpuProfile string
	pprof      bool // node 0's API serves /debug/pprof/
	heartbeat  time.Duration
	secure     bool // certificate mode, with an authority in memory
	malicious  int  // the last malicious nodes are attackers
	attack     lookup.Attack
	attackIn   string
	dataDir    string // the nodes' record stores on disk, DIR/node-I; "": in memory
}

// Bounds and defaults of the devnet.
const (
	maxDevnetNodes = 1000
	// quicAbove: with transport auto, devnets larger than this use QUIC.
	// In one process every TCP connection costs two file descriptors and
	// each node keeps ~50-100 connections; QUIC needs one UDP socket per
	// node (docs/decisions/0014-devnet-transport-auto.md).
	quicAbove          = 100
	devnetJoinTimeout  = 60 * time.Second
	defaultDevnetBatch = 4
	// defaultDevnetHeartbeat: joins in quick succession can leave a leaf
	// set missing a node that joined a moment earlier; heartbeats repair
	// that. With the protocol's 30 s, a 16-node devnet was sometimes
	// exact only after 15-20 s; with 2 s, within a few seconds. Cost: two
	// small messages per node every 2 s.
	defaultDevnetHeartbeat = 2 * time.Second
)

// runDevnet is `pastry devnet`: N nodes in this process until SIGINT,
// SIGTERM or --exit-after.
func runDevnet(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	return devnetMain(ctx, args, stdout, stderr)
}

func parseDevnetFlags(args []string, stderr io.Writer) (devnetConfig, error) {
	var c devnetConfig
	fs := flag.NewFlagSet("devnet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.n, "n", 16, "number of nodes, 1 to "+strconv.Itoa(maxDevnetNodes))
	fs.IntVar(&c.apiBase, "api-base", 7700, "node i's HTTP API listens on 127.0.0.1:(api-base+i); 0 picks free ports")
	fs.StringVar(&c.prefix, "protocol-prefix", "", "network prefix: the protocol becomes PREFIX/pastry/1.0.0")
	fs.DurationVar(&c.exitAfter, "exit-after", 0, "once ready, run this long, then exit 0 (for scripts and CI; 0: until interrupted)")
	fs.StringVar(&c.readyFile, "ready-file", "", "once every node has joined, write the nodes (JSON) to this file")
	fs.StringVar(&c.transport, "transport", "auto", "tcp, quic, or auto (TCP up to "+strconv.Itoa(quicAbove)+" nodes, QUIC above: fds)")
	fs.IntVar(&c.batch, "batch", defaultDevnetBatch, "nodes joining at once, each through an already joined node")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "after the joins, wait at most this long for every leaf set to be exact")
	fs.DurationVar(&c.heartbeat, "heartbeat", defaultDevnetHeartbeat, "leaf-set heartbeat interval (the protocol's default is 30s); short, so that leaf sets left\ninexact by joins in quick succession are repaired in seconds")
	fs.StringVar(&c.logLevelIn, "log-level", "warn", "log level of the nodes: debug, info, warn or error")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of start-up (until ready) to this file")
	fs.BoolVar(&c.pprof, "pprof", false, "serve the process's Go profiles on node 0's API under /debug/pprof/")
	fs.IntVar(&c.malicious, "malicious", 0, "the last K of the -n nodes are colluding attackers (lookup.Adversary): they attack the lookups routed through them as --attack says")
	fs.StringVar(&c.attackIn, "attack", "fake-root", "with --malicious: drop (drop lookups), misroute (to a colluder, which answers as root) or fake-root (answer as the root)")
	fs.StringVar(&c.dataDir, "data-dir", "", "keep node i's records on disk (Pebble) in DIR/node-i instead of in memory; the directory is created")
	fs.BoolVar(&c.secure, "secure", false, "certificate mode: an authority made in memory certifies every node for the network \"devnet\" (valid 24h); node ids are the certified ones")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry devnet [-n N] [flags]

Starts N libp2p nodes on 127.0.0.1 in this process, joins them in batches,
prints each node's id, peer ID and API address, then a line starting with
"ready" (and writes --ready-file), and runs until interrupted. Keys are
generated in memory; nothing is written to disk.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	switch {
	case c.n < 1 || c.n > maxDevnetNodes:
		return c, fmt.Errorf("-n %d: want 1 to %d", c.n, maxDevnetNodes)
	case c.apiBase < 0 || c.apiBase != 0 && (c.apiBase < 1024 || c.apiBase+c.n-1 > 65535):
		return c, fmt.Errorf("--api-base %d: want 0 (free ports) or 1024 to %d so that %d ports fit", c.apiBase, 65535-c.n+1, c.n)
	case c.exitAfter < 0:
		return c, fmt.Errorf("--exit-after %v: want a positive duration, or 0 to run until interrupted", c.exitAfter)
	case c.batch < 1 || c.batch > 64:
		return c, fmt.Errorf("--batch %d: want 1 to 64", c.batch)
	case c.heartbeat < 100*time.Millisecond || c.heartbeat > 10*time.Minute:
		return c, fmt.Errorf("--heartbeat %v: want 100ms to 10m", c.heartbeat)
	case c.settle < 0 || c.settle > 10*time.Minute:
		return c, fmt.Errorf("--settle %v: want 0 to 10m", c.settle)
	case c.malicious < 0 || c.malicious >= c.n:
		return c, fmt.Errorf("--malicious %d: want 0 to n-1 (%d): node 0 is honest", c.malicious, c.n-1)
	}
	var err error
	if c.attack, err = lookup.ParseAttack(c.attackIn); err != nil || c.attack == lookup.AttackSuppress {
		return c, fmt.Errorf("--attack %q: want drop, misroute or fake-root", c.attackIn)
	}
	switch c.transport {
	case "auto":
		c.transport = "tcp"
		if c.n > quicAbove {
			c.transport = "quic"
		}
	case "tcp", "quic":
	default:
		return c, fmt.Errorf("--transport %q: want tcp, quic or auto", c.transport)
	}
	if err := checkProtocolPrefix(c.prefix); err != nil {
		return c, fmt.Errorf("--protocol-prefix: %w", err)
	}
	lvl, err := parseLogLevel(c.logLevelIn)
	if err != nil {
		return c, fmt.Errorf("--log-level: %w", err)
	}
	c.logLevel = lvl
	return c, nil
}

// devNode is one node of the devnet.
type devNode struct {
	host  host.Host
	node  *pastry.Node
	api   *apiServer
	store *pebblestore.Store // --data-dir only; nil: in memory
}

// devnet is the running set of nodes.
type devnet struct {
	cfg      devnetConfig
	log      *slog.Logger
	progress io.Writer // join progress, one line per tenth
	nodes    []*devNode
}

// devnetMain runs the devnet until ctx ends or --exit-after passes.
func devnetMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseDevnetFlags(args, stderr)
	if err != nil {
		return err
	}
	dn := &devnet{cfg: cfg, log: newLogger(stderr, cfg.logLevel), progress: stderr}
	defer dn.close()
	stopProfile, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	defer stopProfile()
	start := time.Now()
	if err := dn.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	if err := dn.join(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	joined := time.Since(start)
	wrong := dn.settle(ctx)
	settled := time.Since(start)
	if ctx.Err() != nil {
		return nil
	}
	stopProfile()
	dn.print(stdout)
	if cfg.readyFile != "" {
		if err := dn.writeReadyFile(cfg.readyFile); err != nil {
			return fmt.Errorf("--ready-file: %w", err)
		}
	}
	leaves := "all leaf sets exact"
	if wrong > 0 {
		leaves = fmt.Sprintf("%d leaf sets not yet exact after --settle %v (repair goes on)", wrong, cfg.settle)
	}
	fmt.Fprintf(stdout, "ready: %d nodes joined in %v over %s, %s after %v; %s\n",
		cfg.n, joined.Round(time.Millisecond), cfg.transport, leaves, settled.Round(time.Millisecond), processFootprint(cfg.n))
	if cfg.exitAfter > 0 {
		fmt.Fprintf(stdout, "running for %v (--exit-after)\n", cfg.exitAfter)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.exitAfter)
		defer cancel()
	} else {
		fmt.Fprintf(stdout, "running until interrupted (Ctrl-C)\n")
	}
	<-ctx.Done()
	fmt.Fprintf(stdout, "stopping %d nodes\n", cfg.n)
	nodesIn, hostsIn := dn.close()
	fmt.Fprintf(stdout, "stopped: nodes closed in %v, hosts in %v\n", nodesIn.Round(time.Millisecond), hostsIn.Round(time.Millisecond))
	return nil
}

// start creates the hosts, nodes and APIs, none joined yet.
func (dn *devnet) start(ctx context.Context) error {
	listen := "/ip4/127.0.0.1/tcp/0"
	if dn.cfg.transport == "quic" {
		listen = "/ip4/127.0.0.1/udp/0/quic-v1"
	}
	prefix := protocol.ID(dn.cfg.prefix)
	proto := string(transport.ProtocolID(prefix))
	var ca *secure.Authority
	if dn.cfg.secure {
		var err error
		if ca, err = secure.NewAuthority(nil); err != nil {
			return err
		}
	}
	// Keys and certificates first: the attackers know each other from the
	// start (their Colluders).
	keys := make([]crypto.PrivKey, dn.cfg.n)
	secs := make([]transport.Security, dn.cfg.n)
	colluders := new(lookup.Colluders)
	for i := range keys {
		var err error
		if keys[i], err = secure.GenerateKey(nil); err != nil {
			return err
		}
		p, err := peer.IDFromPrivateKey(keys[i])
		if err != nil {
			return err
		}
		h, err := secure.HandleFromPeer(p)
		if err != nil {
			return err
		}
		if ca != nil {
			if secs[i], err = devnetSecurity(ca, keys[i]); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
			h.ID = secs[i].Own.NodeID()
		}
		if dn.attacker(i) {
			colluders.Add(h)
		}
	}
	colluders.Contains(id.ID{}) // sorted now, before the nodes read it
	for i := range dn.cfg.n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		key := keys[i]
		hc := transport.DefaultHostConfig(key)
		hc.ListenAddrs = []string{listen}
		hc.ProtocolPrefix = prefix
		h, err := transport.NewLoopbackHost(hc)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		dnode := &devNode{host: h}
		dn.nodes = append(dn.nodes, dnode)
		log := dn.log.With("devnet_node", i)
		opts := []pastry.Option{pastry.WithConfig(dn.coreConfig()), pastry.WithProtocolPrefix(prefix), pastry.WithLogger(log),
			pastry.WithTransportOptions(transport.KeepHandlerOnClose())} // the devnet closes the hosts right after
		if ca != nil {
			opts = append(opts, pastry.WithSecurity(secs[i]))
		}
		if dn.attacker(i) {
			opts = append(opts, pastry.WithAdversary(lookup.AdversaryOptions{Attack: dn.cfg.attack, Colluders: colluders}))
		}
		if dn.cfg.dataDir != "" {
			dir := filepath.Join(dn.cfg.dataDir, fmt.Sprintf("node-%d", i))
			if dnode.store, err = pebblestore.Open(dir, pebblestore.Config{Logf: func(format string, args ...any) {
				log.Error("store: " + fmt.Sprintf(format, args...))
			}}); err != nil {
				return fmt.Errorf("node %d: the record store %s: %w", i, dir, err)
			}
			opts = append(opts, pastry.WithStore(dnode.store))
		}
		dnode.node, err = pastry.New(h, opts...)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		dnode.api, err = newAPIServer(dnode.node, apiConfig{Protocol: proto, Logger: log, Pprof: dn.cfg.pprof && i == 0})
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		addr := "127.0.0.1:0"
		if dn.cfg.apiBase != 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(dn.cfg.apiBase+i))
		}
		if err := dnode.api.Listen(addr); err != nil {
			return fmt.Errorf("--api-base %d: node %d: %w", dn.cfg.apiBase, i, err)
		}
	}
	return nil
}

// coreConfig is the protocol's DefaultConfig with the devnet's heartbeat
// (and the silence before probing kept at 2.5 heartbeats, as by default).
func (dn *devnet) coreConfig() core.Config {
	c := core.DefaultConfig()
	c.HeartbeatInterval = dn.cfg.heartbeat
	c.NeighborSilence = dn.cfg.heartbeat * 5 / 2
	return c
}

// join starts the overlay at node 0 and joins the others in batches of
// --batch concurrent joins, each through a random node that has already
// joined; a failed join is retried through up to two other nodes.
func (dn *devnet) join(ctx context.Context) error {
	if err := dn.nodes[0].node.Join(ctx); err != nil {
		return fmt.Errorf("node 0: start overlay: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	joined, start, tenth := 1, time.Now(), 0
	for joined < len(dn.nodes) {
		if t := 10 * joined / len(dn.nodes); t > tenth && len(dn.nodes) >= 50 {
			tenth = t
			fmt.Fprintf(dn.progress, "devnet: %d/%d nodes joined (%.1fs)\n", joined, len(dn.nodes), time.Since(start).Seconds())
		}
		end := min(joined+dn.cfg.batch, len(dn.nodes))
		errs := make([]error, end-joined)
		var wg sync.WaitGroup
		for i := joined; i < end; i++ {
			via := rng.Perm(joined)[:min(joined, 3)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i-joined] = dn.joinOne(ctx, i, via)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		joined = end
	}
	return nil
}

func (dn *devnet) joinOne(ctx context.Context, i int, via []int) error {
	var last error
	for _, v := range via {
		b := dn.nodes[v].host
		jctx, cancel := context.WithTimeout(ctx, devnetJoinTimeout)
		err := joinThrough(jctx, dn.nodes[i].node, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		if dn.nodes[i].node.Status() != core.StatusIdle {
			break // still joining: it cannot start another join
		}
		dn.log.Warn("join failed, trying another node", "node", i, "err", err)
	}
	return fmt.Errorf("node %d: join: %w", i, last)
}

// settle waits up to --settle for every leaf set to be exact (the devnet
// knows every id, so it can check) and returns how many are not.
func (dn *devnet) settle(ctx context.Context) int {
	deadline := time.Now().Add(dn.cfg.settle)
	for {
		wrong := dn.wrongLeafSets()
		if wrong == 0 || time.Now().After(deadline) {
			return wrong
		}
		select {
		case <-ctx.Done():
			return wrong
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wrongLeafSets counts nodes whose leaf set differs from the true one.
func (dn *devnet) wrongLeafSets() int {
	ids := make([]id.ID, len(dn.nodes))
	for i, d := range dn.nodes {
		ids[i] = d.node.ID()
	}
	slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })
	wrong := 0
	for _, d := range dn.nodes {
		half := d.node.Config().LeafSetSize / 2
		inf := d.node.Info()
		if !leafSetExact(ids, inf, half) {
			wrong++
		}
	}
	return wrong
}

// leafSetExact reports whether inf's leaf set is the true one among the
// sorted ids (which include inf's own).
func leafSetExact(sorted []id.ID, inf pastry.Info, half int) bool {
	n := len(sorted)
	at, _ := slices.BinarySearchFunc(sorted, inf.NodeID, func(a, b id.ID) int { return a.Cmp(b) })
	k := min(half, n-1)
	if len(inf.Left) != k || len(inf.Right) != k {
		return false
	}
	for j := range k {
		if inf.Right[j].ID != sorted[(at+1+j)%n] || inf.Left[j].ID != sorted[(at-1-j+n)%n] {
			return false
		}
	}
	return true
}

// print lists the nodes: index, node id, peer ID, API address.
func (dn *devnet) print(w io.Writer) {
	fmt.Fprintf(w, "%-5s %-32s %-52s %s\n", "node", "node id", "peer id", "api")
	for i, d := range dn.nodes {
		if dn.attacker(i) {
			fmt.Fprintf(w, "%-5d %-32s %-52s %s attacker (%s)\n", i, d.node.ID(), d.host.ID(), d.api.Addr(), dn.cfg.attack)
			continue
		}
		fmt.Fprintf(w, "%-5d %-32s %-52s %s\n", i, d.node.ID(), d.host.ID(), d.api.Addr())
	}
}

// attacker reports whether node i is one of --malicious's.
func (dn *devnet) attacker(i int) bool { return i >= dn.cfg.n-dn.cfg.malicious }

// readyNode is one entry of the --ready-file.
type readyNode struct {
	Index  int      `json:"index"`
	NodeID string   `json:"node_id"`
	PeerID string   `json:"peer_id"`
	API    string   `json:"api"`
	Addrs  []string `json:"addrs"`
}

type readyFile struct {
	Protocol string      `json:"protocol"`
	Nodes    []readyNode `json:"nodes"`
}

func (dn *devnet) writeReadyFile(path string) error {
	rf := readyFile{Protocol: string(transport.ProtocolID(protocol.ID(dn.cfg.prefix)))}
	for i, d := range dn.nodes {
		rn := readyNode{Index: i, NodeID: d.node.ID().String(), PeerID: d.host.ID().String(), API: d.api.Addr()}
		for _, a := range d.host.Addrs() {
			rn.Addrs = append(rn.Addrs, a.String()+"/p2p/"+d.host.ID().String())
		}
		rf.Nodes = append(rf.Nodes, rn)
	}
	data, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return writeFileAtomic(path, append(data, '\n'), 0o644)
}

// close stops every API and node, then every host, each phase in
// parallel; the hosts' phase is bounded by devnetCloseTimeout from its
// own start (the nodes' phase once took 14 s at 200 nodes on two cores,
// which left the hosts no time at all). Nodes go first, and leave their
// protocol handlers in place (transport.KeepHandlerOnClose): removing
// one makes its host push an identify update to every peer, 9 of those
// 14 s, and pushes still in flight when the hosts close are what
// go-libp2p's close-time deadlock needs (see transport.CloseHost).
// It returns how long each phase took; once closed, it does nothing.
func (dn *devnet) close() (nodesIn, hostsIn time.Duration) {
	start := time.Now()
	parallel := func(f func(d *devNode)) {
		var wg sync.WaitGroup
		for _, d := range dn.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(d)
			}()
		}
		wg.Wait()
	}
	apiCtx, apiCancel := context.WithTimeout(context.Background(), devnetCloseTimeout)
	defer apiCancel()
	parallel(func(d *devNode) {
		if d.api != nil {
			d.api.Close(apiCtx)
		}
		if d.node != nil {
			d.node.Close()
		}
		if d.store != nil {
			if err := d.store.Close(); err != nil {
				dn.log.Warn("closing a record store", "err", err)
			}
		}
	})
	nodesDone := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), devnetCloseTimeout)
	defer cancel()
	stuck := 0
	var mu sync.Mutex
	parallel(func(d *devNode) {
		if err := transport.CloseHost(ctx, d.host); err != nil {
			mu.Lock()
			stuck++
			mu.Unlock()
		}
	})
	if stuck > 0 {
		dn.log.Warn("hosts did not close in time; leaving them", "hosts", stuck, "timeout", devnetCloseTimeout)
	}
	dn.nodes = nil
	return nodesDone.Sub(start), time.Since(nodesDone)
}

// devnetCloseTimeout bounds the devnet's shutdown.
const devnetCloseTimeout = 10 * time.Second

// processFootprint describes this process's resident memory, goroutines
// and open file descriptors, in total and per node (Linux; elsewhere only
// goroutines).
func processFootprint(n int) string {
	g := runtime.NumGoroutine()
	s := fmt.Sprintf("%d goroutines (%.0f/node)", g, float64(g)/float64(n))
	if rss := readRSS(); rss > 0 {
		s = fmt.Sprintf("RSS %.0f MiB (%.2f MiB/node), %s", float64(rss)/(1<<20), float64(rss)/(1<<20)/float64(n), s)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s += fmt.Sprintf(", %d fds", len(fds))
	}
	return s
}

// readRSS returns VmRSS from /proc/self/status in bytes, or 0.
func readRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// startCPUProfile starts a CPU profile to path ("" does nothing); the
// returned stop may be called more than once.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// devnetNetwork is the network name a --secure devnet certifies.
const devnetNetwork = "devnet"

// devnetSecurity certifies key with the devnet's authority: certificate
// mode for one of its nodes.
func devnetSecurity(ca *secure.Authority, key crypto.PrivKey) (transport.Security, error) {
	cert, err := ca.Issue(key.GetPublic(), devnetNetwork, time.Now(), 24*time.Hour, nil)
	if err != nil {
		return transport.Security{}, err
	}
	v, err := secure.NewVerifier(ca.Public(), devnetNetwork, 0, nil)
	if err != nil {
		return transport.Security{}, err
	}
	return transport.Security{Verifier: v, Own: cert}, nil
}
