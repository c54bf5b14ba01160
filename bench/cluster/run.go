package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Config is a run's configuration. Zero values take the defaults noted.
type Config struct {
	N       int          // nodes (local mode); default 16
	Subnet  netip.Prefix // default: FreeSubnet
	Run     string       // default: NewRunID
	Binary  string       // the pastry binary; default: this executable
	Nice    int          // the nodes' niceness; default 10 (-1: none)
	Batch   int          // nodes started at once while joining; default 8
	Seed    uint64       // the workload's keys and choices; default: the clock
	Keep    bool         // keep the work directory (data dirs, logs)
	LogLvl  string       // the nodes' --log-level; default warn
	Targets []Target     // targets mode: the nodes, instead of starting them

	Lookups      int           // lookups of the main workload; default 1000
	Records      int           // records put, then read from another node; default 100, -1 none
	Concurrency  int           // requests in flight; default 8
	RoundLookups int           // lookups per round while measuring recovery; default 64
	RoundEvery   time.Duration // rounds start at least this far apart; default 1s
	LookupWait   time.Duration // each lookup's timeout; default 5s
	ReadyTimeout time.Duration // until every leaf set is exact; default 3m

	KillPercent     float64       // kill -9 this share of the nodes after the workload; 0: none
	PartitionPct    float64       // cut this share of the nodes off the rest; 0: none
	PartitionFor    time.Duration // how long the partition lasts; default 30s
	RecoveryTimeout time.Duration // the longest wait for lookups to be correct again; default 3m

	InjectDelay time.Duration // uniform one-way delay between every pair
	Matrix      Matrix        // per-pair one-way delays (overrides InjectDelay)
	MatrixName  string        // where Matrix came from, for the report
	DelayMode   string        // "auto" (netem if the kernel has it and the delay is uniform), "inject", "netem"
	Shaping     Shaping

	Command string    // for the report
	Log     io.Writer // progress; default io.Discard
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.N, 16)
	def(&c.Nice, 10)
	def(&c.Batch, 8)
	def(&c.Lookups, 1000)
	def(&c.Records, 100)
	def(&c.Concurrency, 8)
	def(&c.RoundLookups, 64)
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.LookupWait, 5*time.Second)
	dur(&c.RoundEvery, time.Second)
	dur(&c.ReadyTimeout, 3*time.Minute)
	dur(&c.PartitionFor, 30*time.Second)
	dur(&c.RecoveryTimeout, 3*time.Minute)
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.LogLvl == "" {
		c.LogLvl = "warn"
	}
	if c.DelayMode == "" {
		c.DelayMode = "auto"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// member is one node the harness drives.
type member struct {
	idx    int
	client *Client
	peer   string
	id     id.ID
	alive  bool
	proc   *proc // local mode
}

// proc is a node process of local mode.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
	kill bool  // killed by the harness
}

// harness is one run.
type harness struct {
	cfg     Config
	rep     *Report
	rng     *mrand.Rand
	members []*member
	net     *network
	dir     string
	start   time.Time

	lastRound time.Time // of recovery rounds

	mu    sync.Mutex
	truth func(from int) Truth // the ground truth for lookups from a member
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Log, "bench cluster: %6.1fs "+format+"\n", append([]any{time.Since(h.start).Seconds()}, args...)...)
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   40 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, DisableCompression: true},
	}
}

// Local runs the harness over cfg.N node processes in network namespaces
// on this machine (it needs root), and tears everything down before it
// returns, whatever happened. The report is returned even with an error,
// as far as the run got.
func Local(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg.defaults()
	if len(cfg.Targets) > 0 {
		return nil, errors.New("Local with targets: use Targets")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("local mode creates network namespaces: run as root (or use --targets)")
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if cfg.Run == "" {
		cfg.Run = NewRunID()
	}
	if !cfg.Subnet.IsValid() {
		if cfg.Subnet, err = FreeSubnet(); err != nil {
			return nil, err
		}
	}
	plan, err := NewPlan(cfg.Run, cfg.Subnet, cfg.N)
	if err != nil {
		return nil, err
	}
	if cfg.Matrix != nil && len(cfg.Matrix) != cfg.N {
		return nil, fmt.Errorf("the latency matrix has %d rows for %d nodes", len(cfg.Matrix), cfg.N)
	}
	h := &harness{cfg: cfg, rng: mrand.New(mrand.NewPCG(cfg.Seed, 1)), start: time.Now(), dir: WorkDir(cfg.Run)}
	h.rep = newReport(cfg, "local")
	h.rep.Run, h.rep.Subnet = cfg.Run, cfg.Subnet.String()
	rep = h.rep
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return rep, err
	}
	pidFile := filepath.Join(h.dir, "controller.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		os.RemoveAll(h.dir)
		return rep, err
	}
	h.net = &network{plan: plan, shaping: cfg.Shaping}
	defer func() {
		terr := h.teardown()
		err = errors.Join(err, terr)
	}()

	// Delays: netem where asked for or (auto) where the kernel has it and
	// the delay is the same for every pair; otherwise in the nodes.
	netem := HasNetem(ctx, cfg.Run)
	rep.NetemAvailable = netem
	switch {
	case cfg.InjectDelay == 0 && cfg.Matrix == nil:
		rep.DelayMode = "none"
	case cfg.DelayMode == "netem" && !netem:
		return rep, errors.New("--delay-mode netem: this kernel has no netem qdisc (tc qdisc add ... netem fails); use --delay-mode inject")
	case cfg.DelayMode == "netem" && cfg.Matrix != nil:
		return rep, errors.New("--delay-mode netem takes a uniform delay only (one netem per link); a matrix needs --delay-mode inject")
	case cfg.Matrix == nil && netem && cfg.DelayMode != "inject":
		rep.DelayMode = "netem"
		h.net.netem = cfg.InjectDelay
	default:
		rep.DelayMode = "inject"
	}
	h.logf("run %s: %d nodes on %s, namespaces %s0..%d, delays %s (netem available: %v)",
		cfg.Run, cfg.N, cfg.Subnet, NSPrefix+cfg.Run+"-", cfg.N-1, rep.DelayMode, netem)
	if err := h.net.setup(ctx); err != nil {
		return rep, fmt.Errorf("network: %w", err)
	}
	h.logf("network up: bridge %s, %d namespaces", plan.Bridge(), cfg.N)

	token := randomToken()
	hc := newHTTPClient()
	for i := range cfg.N {
		dir := filepath.Join(h.dir, "node-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return rep, err
		}
		key, _, err := secure.LoadOrCreateKey(filepath.Join(dir, "key"))
		if err != nil {
			return rep, err
		}
		p, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return rep, err
		}
		nid, err := secure.NodeIDFromPeer(p)
		if err != nil {
			return rep, err
		}
		h.members = append(h.members, &member{idx: i, peer: p.String(), id: nid,
			client: &Client{Base: "http://" + plan.API(i), Token: token, HTTP: hc}})
	}
	if cfg.Matrix != nil {
		peers := make([]string, cfg.N)
		for i, m := range h.members {
			peers[i] = m.peer
		}
		for i := range cfg.N {
			b, err := cfg.Matrix.latencyFile(i, peers)
			if err != nil {
				return rep, err
			}
			if err := os.WriteFile(filepath.Join(h.dir, "node-"+strconv.Itoa(i), "latency.json"), b, 0o600); err != nil {
				return rep, err
			}
		}
	}
	h.setTruth(h.globalTruth())
	if err := h.startAll(ctx, plan, token); err != nil {
		return rep, err
	}
	if err := h.workload(ctx); err != nil {
		return rep, err
	}
	if cfg.KillPercent > 0 {
		if err := h.killSome(ctx); err != nil {
			return rep, err
		}
	}
	if cfg.PartitionPct > 0 {
		if err := h.partition(ctx); err != nil {
			return rep, err
		}
	}
	h.footprint(ctx, "end")
	return rep, ctx.Err()
}

// Targets runs the workload over nodes someone else started, given their
// API addresses and tokens. It does not kill or partition them.
func Targets(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	if cfg.KillPercent > 0 || cfg.PartitionPct > 0 || cfg.InjectDelay > 0 || cfg.Matrix != nil || cfg.Shaping.Rate != "" {
		return nil, errors.New("targets mode drives nodes it did not start: faults, delays and shaping need local mode (or the cluster's own tools)")
	}
	h := &harness{cfg: cfg, rng: mrand.New(mrand.NewPCG(cfg.Seed, 1)), start: time.Now()}
	h.rep = newReport(cfg, "targets")
	h.rep.DelayMode = "none"
	hc := newHTTPClient()
	for i, t := range cfg.Targets {
		h.members = append(h.members, &member{idx: i, alive: true, client: &Client{Base: t.API, Token: t.Token, HTTP: hc}})
	}
	h.rep.Nodes = len(h.members)
	// The ids come from the nodes themselves, once they answer.
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for {
		missing := 0
		err := parallel(ctx, len(h.members), cfg.Concurrency, func(i int) error {
			m := h.members[i]
			if m.peer != "" {
				return nil
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			st, err := m.client.Status(sctx)
			if err != nil {
				return nil
			}
			nid, err := id.Parse(st.NodeID)
			if err != nil {
				return fmt.Errorf("node %s: bad node id %q", m.client.Base, st.NodeID)
			}
			h.mu.Lock()
			m.id, m.peer = nid, st.PeerID
			h.mu.Unlock()
			return nil
		})
		if err != nil {
			return h.rep, err
		}
		for _, m := range h.members {
			if m.peer == "" {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return h.rep, fmt.Errorf("%d of %d targets never answered /v1/status", missing, len(h.members))
		}
		if err := sleep(ctx, time.Second); err != nil {
			return h.rep, err
		}
	}
	h.setTruth(h.globalTruth())
	if err := h.waitReady(ctx, h.start); err != nil {
		return h.rep, err
	}
	if err := h.workload(ctx); err != nil {
		return h.rep, err
	}
	h.footprint(ctx, "end")
	return h.rep, nil
}

func randomToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// alive returns the live members.
func (h *harness) alive() []*member {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*member
	for _, m := range h.members {
		if m.alive {
			out = append(out, m)
		}
	}
	return out
}

// globalTruth is the truth of all live members, for a lookup from any.
func (h *harness) globalTruth() func(int) Truth {
	var ids []id.ID
	for _, m := range h.alive() {
		ids = append(ids, m.id)
	}
	t := NewTruth(ids)
	return func(int) Truth { return t }
}

// startAll starts node 0, then the others in batches, each through two
// random nodes that have joined and then node 0 (one node to join
// through made it a hot spot: on a loaded machine its dials took more
// than the node's 5 s connect timeout, and the joiners backed off for
// up to a minute), and waits until every leaf set is exact.
func (h *harness) startAll(ctx context.Context, plan Plan, token string) error {
	t0 := time.Now()
	addr := func(i int) string { return plan.Listen(i) + "/p2p/" + h.members[i].peer }
	if err := h.startNode(plan, 0, token, nil); err != nil {
		return err
	}
	if err := h.waitJoined(ctx, h.members[:1], 60*time.Second); err != nil {
		return err
	}
	for lo := 1; lo < len(h.members); lo += h.cfg.Batch {
		hi := min(lo+h.cfg.Batch, len(h.members))
		for i := lo; i < hi; i++ {
			var boot []string
			if lo > 1 {
				for _, j := range h.rng.Perm(lo - 1)[:min(2, lo-1)] {
					boot = append(boot, addr(j+1))
				}
			}
			if err := h.startNode(plan, i, token, append(boot, addr(0))); err != nil {
				return err
			}
		}
		if err := h.waitJoined(ctx, h.members[lo:hi], 3*time.Minute); err != nil {
			return err
		}
		if hi%32 < h.cfg.Batch || hi == len(h.members) {
			h.logf("%d/%d nodes joined", hi, len(h.members))
		}
	}
	h.rep.JoinedS = time.Since(t0).Seconds()
	h.setTruth(h.globalTruth())
	return h.waitReady(ctx, t0)
}

// startNode starts node i in its namespace, joining through boot.
func (h *harness) startNode(plan Plan, i int, token string, boot []string) error {
	dir := filepath.Join(h.dir, "node-"+strconv.Itoa(i))
	args := []string{"node", "--listen", plan.Listen(i), "--api", plan.API(i), "--token", token,
		"--data-dir", dir, "--log-level", h.cfg.LogLvl}
	if len(boot) > 0 {
		args = append(args, "--bootstrap", strings.Join(boot, ","))
	}
	if h.rep.DelayMode == "inject" {
		if h.cfg.Matrix != nil {
			args = append(args, "--inject-latency", filepath.Join(dir, "latency.json"))
		} else {
			args = append(args, "--inject-delay", h.cfg.InjectDelay.String())
		}
	}
	argv := []string{"netns", "exec", plan.Namespace(i)}
	if h.cfg.Nice >= 0 {
		argv = append(argv, "nice", "-n", strconv.Itoa(h.cfg.Nice))
	}
	argv = append(argv, h.cfg.Binary)
	cmd := exec.Command("ip", append(argv, args...)...)
	logf, err := os.OpenFile(filepath.Join(h.dir, "node-"+strconv.Itoa(i)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// ip and nice exec the node, which keeps this: if the controller
	// dies, so do its nodes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("node %d: %w", i, err)
	}
	logf.Close()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	m := h.members[i]
	h.mu.Lock()
	m.proc, m.alive = p, true
	h.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		h.mu.Lock()
		if !p.kill && m.alive {
			m.alive = false
			h.rep.Errors = append(h.rep.Errors, fmt.Sprintf("node %d exited by itself: %v (log %s)", i, p.err, filepath.Join(h.dir, "node-"+strconv.Itoa(i)+".log")))
		}
		h.mu.Unlock()
		close(p.done)
	}()
	return nil
}

// waitJoined waits until every member of ms says it is joined.
func (h *harness) waitJoined(ctx context.Context, ms []*member, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var pending int
		var last error
		var mu sync.Mutex
		_ = parallel(ctx, len(ms), h.cfg.Concurrency, func(i int) error {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := ms[i].client.Status(sctx)
			if err != nil || st.Status != "joined" {
				mu.Lock()
				pending++
				if err != nil {
					last = fmt.Errorf("node %d: %w", ms[i].idx, err)
				} else {
					last = fmt.Errorf("node %d is %s", ms[i].idx, st.Status)
				}
				mu.Unlock()
			}
			return nil
		})
		if pending == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, m := range ms {
			if m.proc != nil {
				select {
				case <-m.proc.done:
					return fmt.Errorf("node %d exited while joining: %v (its log is in %s)", m.idx, m.proc.err, h.dir)
				default:
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d nodes not joined after %v; last: %v", pending, limit, last)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitReady waits until every live member's leaf set is exact, and
// records when (from t0).
func (h *harness) waitReady(ctx context.Context, t0 time.Time) error {
	half := core.DefaultConfig().LeafSetSize / 2
	deadline := time.Now().Add(h.cfg.ReadyTimeout)
	h.mu.Lock()
	truth := h.truth(0)
	h.mu.Unlock()
	lastLog := time.Now()
	for {
		ms := h.alive()
		var wrong, joined int
		var mu sync.Mutex
		_ = parallel(ctx, len(ms), h.cfg.Concurrency, func(i int) error {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := ms[i].client.Status(sctx)
			ok := err == nil && st.Status == "joined"
			if ok {
				mu.Lock()
				joined++
				mu.Unlock()
				left, err1 := parseIDs(st.LeafSet.Left)
				right, err2 := parseIDs(st.LeafSet.Right)
				ok = err1 == nil && err2 == nil && truth.LeafSetExact(ms[i].id, left, right, half)
			}
			if !ok {
				mu.Lock()
				wrong++
				mu.Unlock()
			}
			return nil
		})
		if joined == len(ms) && h.rep.JoinedS == 0 {
			h.rep.JoinedS = time.Since(t0).Seconds()
		}
		if wrong == 0 {
			h.rep.ReadyS = time.Since(t0).Seconds()
			h.rep.Ready = true
			h.logf("ready: every leaf set exact, %.1fs after the first node started", h.rep.ReadyS)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			h.rep.ReadyS = time.Since(t0).Seconds()
			h.rep.Errors = append(h.rep.Errors, fmt.Sprintf("not ready after %v: %d leaf sets not exact; the workload ran anyway", h.cfg.ReadyTimeout, wrong))
			h.logf("NOT ready after %v: %d of %d leaf sets not exact", h.cfg.ReadyTimeout, wrong, len(ms))
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			h.logf("waiting for exact leaf sets: %d of %d joined, %d not exact", joined, len(ms), wrong)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

func parseIDs(hs []Handle) ([]id.ID, error) {
	out := make([]id.ID, len(hs))
	for i, x := range hs {
		v, err := id.Parse(x.NodeID)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// teardown stops every node (SIGTERM, then SIGKILL after 8 s), removes
// the network and the work directory, and checks that nothing of this
// run is left.
func (h *harness) teardown() error {
	var errs []error
	var procs []*proc
	for _, m := range h.members {
		if m.proc != nil {
			procs = append(procs, m.proc)
			h.mu.Lock()
			m.proc.kill = true
			h.mu.Unlock()
			m.proc.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(8 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if h.net != nil {
		errs = append(errs, h.net.teardown())
	}
	if h.dir != "" && !h.cfg.Keep {
		errs = append(errs, os.RemoveAll(h.dir))
	} else if h.dir != "" {
		os.Remove(filepath.Join(h.dir, "controller.pid"))
	}
	if h.net != nil {
		// A veth goes with its namespace, a moment after the namespace's
		// name: look again for up to 5 s.
		var l *Leftover
		for try := 0; try < 50; try++ {
			lo, err := FindLeftovers(context.Background())
			if err != nil {
				errs = append(errs, err)
				break
			}
			if l = lo[h.cfg.Run]; l == nil || (len(l.Namespaces) == 0 && len(l.Links) == 0 && (l.Dir == "" || h.cfg.Keep)) {
				l = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if l != nil {
			h.rep.Teardown = fmt.Sprintf("LEFT BEHIND: namespaces %v, links %v, dir %q", l.Namespaces, l.Links, l.Dir)
			errs = append(errs, errors.New("teardown: "+h.rep.Teardown))
		} else {
			h.rep.Teardown = fmt.Sprintf("clean: %d processes stopped; no namespace, link or file of run %s left", len(procs), h.cfg.Run)
		}
	}
	return errors.Join(errs...)
}

// pct is p percent of n, at least 1 when p > 0.
func pct(n int, p float64) int {
	k := int(math.Round(float64(n) * p / 100))
	if p > 0 && k == 0 {
		k = 1
	}
	return min(k, n)
}
