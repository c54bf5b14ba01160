package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/replication/pebblestore"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// runNode is `pastry node`: one node until SIGINT or SIGTERM.
func runNode(args []string, stdout, stderr io.Writer) error {
	cfg, err := loadNodeConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(stderr, cfg.level)
	d, err := startDaemon(cfg, log)
	if err != nil {
		return err
	}
	return d.run(ctx, stop)
}

// Timings of the daemon.
const (
	connectTimeout  = 5 * time.Second  // per bootstrap candidate, before joining through it
	joinRetryMin    = 5 * time.Second  // wait after a round of failed joins, doubling...
	joinRetryMax    = 60 * time.Second // ...up to this
	shutdownTimeout = 5 * time.Second  // leave, save and close
	firstSaveEvery  = time.Second      // until a peer is saved (run)
)

// daemon is a running `pastry node`.
type daemon struct {
	cfg    nodeConfig
	log    *slog.Logger
	host   host.Host
	node   *pastry.Node
	store  *pebblestore.Store // DATA_DIR/store: the records this node holds
	api    *apiServer         // nil with --api off
	saved  []peer.AddrInfo
	joined chan struct{} // closed once the node has joined
}

// startDaemon prepares the data directory, loads or creates the identity,
// starts the host, the node and the API. It does not join: run does.
func startDaemon(cfg nodeConfig, log *slog.Logger) (_ *daemon, err error) {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.from("data_dir"), err)
	}
	keyPath := filepath.Join(cfg.DataDir, "key")
	key, created, err := loadNodeKey(cfg, keyPath, log)
	if err != nil {
		return nil, err
	}
	var cert *secure.Certificate
	if cfg.Cert != "" {
		if cert, err = checkNodeCert(cfg, key, time.Now()); err != nil {
			return nil, err
		}
	}
	d := &daemon{cfg: cfg, log: log, joined: make(chan struct{})}
	defer func() {
		if err != nil {
			d.close(context.Background())
		}
	}()
	if err := checkListenPorts(cfg.Listen); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.from("listen"), err)
	}
	hc := transport.DefaultHostConfig(key)
	hc.ListenAddrs = cfg.Listen
	hc.AnnounceAddrs = cfg.Announce
	hc.ProtocolPrefix = protocol.ID(cfg.ProtocolPrefix)
	hc.ConnsLow, hc.ConnsHigh = cfg.ConnsLow, cfg.ConnsHigh
	hc.AddrPolicy = cfg.policy
	d.host, err = transport.NewHost(hc)
	if err != nil {
		return nil, listenError(cfg, err)
	}
	storePath := filepath.Join(cfg.DataDir, "store")
	d.store, err = pebblestore.Open(storePath, pebblestore.Config{Options: replication.Options{Capacity: cfg.StoreCapacity, OwnerQuota: cfg.OwnerQuota}, Logf: func(format string, args ...any) {
		log.Error("store: " + fmt.Sprintf(format, args...))
	}})
	if err != nil {
		return nil, fmt.Errorf("the record store %s: %w", storePath, err)
	}
	log.Info("record store", "dir", storePath, "records", d.store.Stats().Records)
	opts := []pastry.Option{pastry.WithProtocolPrefix(protocol.ID(cfg.ProtocolPrefix)),
		pastry.WithLogger(log), pastry.WithAddrPolicy(cfg.policy), pastry.WithStore(d.store),
		pastry.WithReplication(replication.PastOptions{CacheBytes: cfg.RouteCache})}
	if cfg.delays != nil {
		log.Warn("injecting one-way delays into every frame sent (--inject-delay, --inject-latency): for test networks only",
			"default", cfg.delays.def, "peers", len(cfg.delays.peers))
		opts = append(opts, pastry.WithTransportOptions(transport.InjectDelay(cfg.delays.of)))
	}
	if cfg.Secure {
		sec, err := certSecurity(cfg, cert)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pastry.WithSecurity(sec))
	}
	if cfg.PuzzleBits > 0 {
		opts = append(opts, pastry.WithSecurity(transport.Security{PuzzleBits: cfg.PuzzleBits}))
		log.Info("open mode with the identity puzzle: peers whose keys do not solve it are refused", "puzzle_bits", cfg.PuzzleBits)
	}
	d.node, err = pastry.New(d.host, opts...)
	if err != nil {
		return nil, err
	}
	self := d.node.Self()
	log.Info("pastry", "version", readVersion().Short(), "go", runtime.Version())
	log.Info("identity", "node_id", self.ID.String(), "peer_id", peer.ID(self.Addr).String(), "key", keyPath, "new", created)
	if cert != nil && cfg.Secure {
		_, until := cert.Validity()
		log.Info("certificate mode: node_id above is the certified one; only peers with valid certificates are admitted",
			"network", cert.Network, "valid_until", until.UTC().Format(time.RFC3339), "cert", cfg.Cert)
	} else if cert != nil {
		_, until := cert.Validity()
		log.Info("certificate checked, not enforced (no --secure): the overlay uses node_id above",
			"certified_node_id", cert.NodeID().String(), "network", cert.Network, "valid_until", until.UTC().Format(time.RFC3339), "cert", cfg.Cert)
	}
	if cfg.policy != transport.AddrsAll {
		log.Info("address policy: dialling and learning only "+cfg.policy.String()+" addresses", "policy", cfg.policy.String())
	}
	what := "listening"
	if len(cfg.Announce) > 0 {
		what = "announcing" // instead of the listen addresses
		for _, a := range d.host.Network().ListenAddresses() {
			log.Info("listening", "addr", a.String())
		}
	}
	for _, a := range d.host.Addrs() {
		log.Info(what, "addr", a.String()+"/p2p/"+d.host.ID().String())
	}
	if cfg.API != apiOff {
		d.api, err = newAPIServer(d.node, apiConfig{
			Token: cfg.Token, Protocol: string(transport.ProtocolID(protocol.ID(cfg.ProtocolPrefix))), Logger: log, Pprof: cfg.Pprof,
		})
		if err != nil {
			return nil, err
		}
		if err := d.api.Listen(cfg.API); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.from("api"), err)
		}
		log.Info("HTTP API", "addr", "http://"+d.api.Addr(), "token", cfg.Token != "", "pprof", cfg.Pprof)
	}
	saved, bad, err := loadPeers(cfg.DataDir)
	if err != nil {
		log.Warn("saved peers ignored", "err", err)
	} else if bad > 0 {
		log.Warn("saved peers: entries skipped", "bad", bad, "kept", len(saved))
	}
	if kept, refused := keepAllowed(saved, cfg.policy); refused > 0 {
		log.Warn("saved peers: addresses refused by the address policy skipped", "policy", cfg.policy.String(), "addrs", refused, "peers_kept", len(kept))
		saved = kept
	}
	d.saved = saved
	return d, nil
}

// listenError explains a host that could not start, usually a listen
// address in use or not on this machine.
func listenError(cfg nodeConfig, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "address already in use"):
		return fmt.Errorf("%s: a listen port is in use (another node running?): %w", cfg.from("listen"), err)
	case strings.Contains(msg, "assign requested address"):
		return fmt.Errorf("%s: an address is not on this machine: %w", cfg.from("listen"), err)
	}
	return fmt.Errorf("%s: start libp2p host: %w", cfg.from("listen"), err)
}

// checkListenPorts binds each listen address with a fixed port for a
// moment, without SO_REUSEPORT, to find ports already in use: libp2p
// binds with SO_REUSEPORT, so a second node on the same port would start
// and silently share the port's connections with the first.
func checkListenPorts(addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		network, hostport, err := manet.DialArgs(a)
		if err != nil {
			continue // not an IP address (checked by libp2p)
		}
		if _, port, err := net.SplitHostPort(hostport); err != nil || port == "0" {
			continue
		}
		var closer io.Closer
		switch {
		case strings.HasPrefix(network, "tcp"):
			closer, err = net.Listen(network, hostport)
		case strings.HasPrefix(network, "udp"):
			closer, err = net.ListenPacket(network, hostport)
		default:
			continue
		}
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("%s: the port is in use (another node running?): choose another port", s)
			}
			return fmt.Errorf("cannot listen on %s: %w", s, err)
		}
		closer.Close()
	}
	return nil
}

// prepareDataDir creates dir (mode 0700) if needed and checks that files
// can be created in it.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// run joins (in the background, retrying), saves peers every
// SaveInterval, and on ctx's end shuts down gracefully: save peers, leave,
// close. stop, if not nil, is called once ctx ends so that a second signal
// kills the process at once.
func (d *daemon) run(ctx context.Context, stop func()) error {
	joinCtx, cancelJoin := context.WithCancel(ctx)
	joinDone := make(chan struct{})
	go func() {
		defer close(joinDone)
		d.joinLoop(joinCtx)
	}()
	tick := time.NewTicker(d.cfg.SaveInterval)
	defer tick.Stop()
	// Until the file holds a peer, peers are saved as soon as there are
	// any (looked at every firstSaveEvery): a node killed before its
	// first save would otherwise restart alone, as a new overlay, until
	// a neighbour's heartbeat found it.
	first := time.NewTicker(firstSaveEvery)
	defer first.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			d.save()
		case <-first.C:
			if n, err := d.savePeers(true); n > 0 || err != nil { // an error is logged once, not every second
				first.Stop()
			}
		}
	}
	if stop != nil {
		stop()
	}
	d.log.Info("shutting down")
	cancelJoin()
	<-joinDone
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	d.save()
	err := d.close(sctx)
	d.log.Info("stopped", "err", err)
	return err
}

// close leaves the overlay if joined, and closes the API, node and host.
func (d *daemon) close(ctx context.Context) error {
	var errs []error
	if d.api != nil {
		errs = append(errs, d.api.Close(ctx))
	}
	if d.node != nil {
		if d.node.Status() == core.StatusJoined {
			if err := d.node.Leave(ctx); err != nil {
				d.log.Warn("leave", "err", err)
			}
		}
		errs = append(errs, d.node.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.host != nil {
		errs = append(errs, transport.CloseHost(ctx, d.host))
	}
	return errors.Join(errs...)
}

// save writes the known peers to DATA_DIR/peers.json.
func (d *daemon) save() { _, _ = d.savePeers(false) }

// savePeers is save, which it skips when onlyAny and the node knows no
// peer; it returns how many peers it wrote. Only a joined node saves: one
// that never joined knows nothing better than the file. An error is
// logged.
func (d *daemon) savePeers(onlyAny bool) (int, error) {
	if d.node.Status() != core.StatusJoined {
		return 0, nil
	}
	inf := d.node.Info()
	peers := knownPeers(inf, d.host, maxSavedPeers)
	if onlyAny && len(peers) == 0 {
		return 0, nil
	}
	if err := savePeers(d.cfg.DataDir, inf.NodeID.String(), peers, time.Now()); err != nil {
		d.log.Error("save peers", "dir", d.cfg.DataDir, "err", err)
		return 0, err
	}
	d.log.Debug("peers saved", "peers", len(peers))
	return len(peers), nil
}

// candidates are the nodes to join through: --bootstrap first, then the
// saved peers, without this node and without duplicates.
func (d *daemon) candidates() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, ai := range append(append([]peer.AddrInfo(nil), d.cfg.bootstrap...), d.saved...) {
		if ai.ID != d.host.ID() {
			out = mergeAddrInfo(out, ai)
		}
	}
	return out
}

// joinLoop joins through the first candidate that connects and accepts
// the join, retrying rounds with back-off until it succeeds or ctx ends.
// With no candidates at all it starts a new overlay.
func (d *daemon) joinLoop(ctx context.Context) {
	cands := d.candidates()
	if len(cands) == 0 {
		d.log.Info("no --bootstrap and no saved peers: starting a new overlay")
		if err := d.node.Join(ctx); err != nil {
			d.log.Error("start overlay", "err", err)
			return
		}
		d.log.Info("joined: this node is the overlay's first", "node_id", d.node.ID().String())
		close(d.joined)
		return
	}
	d.log.Info("joining", "bootstrap", len(d.cfg.bootstrap), "saved_peers", len(d.saved))
	wait := joinRetryMin
	for {
		for _, ai := range cands {
			if err := d.joinVia(ctx, ai); err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("join attempt failed", "via", ai.ID.String(), "err", err)
				continue
			}
			inf := d.node.Info()
			d.log.Info("joined", "via", ai.ID.String(), "leaf_set", len(inf.Left)+len(inf.Right),
				"table_entries", inf.TableEntries, "network_size_estimate", inf.NetworkSize)
			close(d.joined)
			d.save()
			return
		}
		d.log.Error("could not join through any bootstrap or saved peer; retrying", "candidates", len(cands), "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, joinRetryMax)
	}
}

// joinVia connects to ai first, so that an unreachable candidate costs a
// few seconds rather than the core's join timeouts.
func (d *daemon) joinVia(ctx context.Context, ai peer.AddrInfo) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err := d.host.Connect(cctx, ai)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return joinThrough(ctx, d.node, ai)
}

// keepAllowed drops from peers the addresses pol refuses, and the peers
// left with none; it returns how many addresses it dropped.
func keepAllowed(peers []peer.AddrInfo, pol transport.AddrPolicy) (_ []peer.AddrInfo, refused int) {
	if pol == transport.AddrsAll {
		return peers, 0
	}
	var out []peer.AddrInfo
	for _, ai := range peers {
		var as []ma.Multiaddr
		for _, a := range ai.Addrs {
			if pol.Allows(a) {
				as = append(as, a)
			} else {
				refused++
			}
		}
		if len(as) > 0 {
			out = append(out, peer.AddrInfo{ID: ai.ID, Addrs: as})
		}
	}
	return out, refused
}

// loadNodeKey loads DATA_DIR/key, or creates it: with --puzzle-bits, a key
// that solves the puzzle. An existing key that does not solve it is an
// error saying what to do.
func loadNodeKey(cfg nodeConfig, keyPath string, log *slog.Logger) (crypto.PrivKey, bool, error) {
	if cfg.PuzzleBits == 0 {
		return secure.LoadOrCreateKey(keyPath)
	}
	key, created, err := secure.LoadOrCreateKeyWith(keyPath, func() (crypto.PrivKey, error) {
		log.Info("solving the identity puzzle for a new key", "puzzle_bits", cfg.PuzzleBits, "expected_keys", uint64(1)<<cfg.PuzzleBits)
		k, _, err := secure.SolvePuzzle(context.Background(), cfg.PuzzleBits, 0, nil)
		return k, err
	})
	if err != nil {
		return nil, false, err
	}
	if err := secure.CheckPuzzle(key.GetPublic(), cfg.PuzzleBits); err != nil {
		return nil, false, fmt.Errorf("%s: %s: %w; move it aside and start again to make a key that solves it (its peer ID and node id change)", cfg.from("puzzle_bits"), keyPath, err)
	}
	return key, created, nil
}
