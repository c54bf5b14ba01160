package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// command runs name with args (and stdin, if not empty), returning an
// error that holds its output.
func command(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Shaping is the bandwidth limit of every node's link, each way.
type Shaping struct {
	Rate   string // tc rate, e.g. "100mbit"; empty: none
	Shaper string // "tbf" or "htb"
}

// netem, when not zero, is a uniform one-way delay netem adds to what a
// node sends (only where the kernel has netem).
type network struct {
	plan    Plan
	shaping Shaping
	netem   time.Duration

	mu        sync.Mutex
	bridge    bool
	oldThresh *[3]int  // the neighbour table's bounds before setup raised them
	spaces    []string // namespaces created
	blocked   map[string][]netip.Prefix
}

// setup creates the bridge, the namespaces and the veth pairs, addresses
// them and shapes the links. What it created is torn down by teardown,
// also after an error.
func (nw *network) setup(ctx context.Context) error {
	p := nw.plan
	if err := command(ctx, "", "ip", "link", "add", p.Bridge(), "type", "bridge"); err != nil {
		return err
	}
	nw.bridge = true
	if err := nw.raiseNeighbourLimits(p.N); err != nil {
		return err
	}
	gw := netip.PrefixFrom(p.Gateway(), 16).String()
	if err := command(ctx, "link set "+p.Bridge()+" up\naddr add "+gw+" dev "+p.Bridge()+"\n", "ip", "-batch", "-"); err != nil {
		return err
	}
	// Namespaces and links in one batch of the root namespace, then one
	// batch in each namespace: 1+N processes rather than 6N.
	const chunk = 64
	for lo := 0; lo < p.N; lo += chunk {
		var b strings.Builder
		hi := min(lo+chunk, p.N)
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&b, "netns add %s\n", p.Namespace(i))
		}
		err := command(ctx, b.String(), "ip", "-batch", "-")
		nw.mu.Lock()
		for i := lo; i < hi; i++ {
			nw.spaces = append(nw.spaces, p.Namespace(i)) // torn down even if some failed: del is forced
		}
		nw.mu.Unlock()
		if err != nil {
			return err
		}
		b.Reset()
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&b, "link add %s type veth peer name %s netns %s\n", p.HostVeth(i), p.NodeVeth(i), p.Namespace(i))
			fmt.Fprintf(&b, "link set %s master %s up\n", p.HostVeth(i), p.Bridge())
		}
		if err := command(ctx, b.String(), "ip", "-batch", "-"); err != nil {
			return err
		}
	}
	err := parallel(ctx, p.N, 8, func(i int) error {
		s := fmt.Sprintf("addr add %s/16 dev %s\nlink set %s up\nlink set lo up\n", p.Addr(i), p.NodeVeth(i), p.NodeVeth(i))
		return command(ctx, s, "ip", "-n", p.Namespace(i), "-batch", "-")
	})
	if err != nil {
		return err
	}
	return nw.shape(ctx)
}

// The kernel's IPv4 neighbour (ARP) table is one table for every
// network namespace, bounded by these (gc_thresh3 = 1024 by default).
// Nodes that each talk to every other fill n*(n-1) entries: past about 33
// nodes the table overflows ("neighbor table overflow!" in the kernel
// log), new neighbours are not resolved, and joins time out.
var gcThresh = []string{
	"/proc/sys/net/ipv4/neigh/default/gc_thresh1",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh2",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh3",
}

// neighbourLimits are the gc_thresh values room for n nodes' neighbours
// needs (each at least as large as it was).
func neighbourLimits(n int, old [3]int) [3]int {
	need := n*n + 1024
	return [3]int{old[0], max(old[1], need), max(old[2], 2*need)}
}

// raiseNeighbourLimits raises the neighbour table's bounds for n nodes;
// teardown puts back the values it found.
func (nw *network) raiseNeighbourLimits(n int) error {
	var old [3]int
	for i, f := range gcThresh {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("the neighbour table's bounds: %w", err)
		}
		if old[i], err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	want := neighbourLimits(n, old)
	if want == old {
		return nil
	}
	for i := 2; i >= 0; i-- { // from the top: each must stay at most the next
		if err := os.WriteFile(gcThresh[i], []byte(strconv.Itoa(want[i])), 0o644); err != nil {
			return fmt.Errorf("raise %s to %d: %w", gcThresh[i], want[i], err)
		}
	}
	nw.oldThresh = &old
	return nil
}

// qdiscs returns the tc commands (without "tc") that shape dev: a rate
// with tbf or htb, a delay with netem, or both.
func qdiscs(dev string, s Shaping, delay time.Duration) []string {
	var out []string
	parent := "root"
	if delay > 0 {
		out = append(out, fmt.Sprintf("qdisc add dev %s root handle 1: netem delay %dus limit 10000", dev, delay.Microseconds()))
		parent = "parent 1:1"
	}
	if s.Rate == "" {
		return out
	}
	switch s.Shaper {
	case "htb":
		h := "2:"
		out = append(out, fmt.Sprintf("qdisc add dev %s %s handle %s htb default 1", dev, parent, h),
			fmt.Sprintf("class add dev %s parent %s classid %s1 htb rate %s ceil %s", dev, h, h, s.Rate, s.Rate))
	default:
		out = append(out, fmt.Sprintf("qdisc add dev %s %s handle 2: tbf rate %s burst 64kb latency 100ms", dev, parent, s.Rate))
	}
	return out
}

// shape shapes both ends of every veth: the root end's egress is what a
// node receives, the node's end's what it sends; netem delays what it
// sends.
func (nw *network) shape(ctx context.Context) error {
	p := nw.plan
	if nw.shaping.Rate == "" && nw.netem == 0 {
		return nil
	}
	var root strings.Builder
	for i := range p.N {
		for _, c := range qdiscs(p.HostVeth(i), nw.shaping, 0) {
			root.WriteString(c + "\n")
		}
	}
	if root.Len() > 0 {
		if err := command(ctx, root.String(), "tc", "-batch", "-"); err != nil {
			return err
		}
	}
	return parallel(ctx, p.N, 8, func(i int) error {
		cs := qdiscs(p.NodeVeth(i), nw.shaping, nw.netem)
		return command(ctx, strings.Join(cs, "\n")+"\n", "tc", "-n", p.Namespace(i), "-batch", "-")
	})
}

// block makes node i drop what it sends to the prefixes (blackhole
// routes in its namespace); unblock removes them.
func (nw *network) block(ctx context.Context, i int, to []netip.Prefix) error {
	var b strings.Builder
	for _, pf := range to {
		fmt.Fprintf(&b, "route add blackhole %s\n", pf)
	}
	ns := nw.plan.Namespace(i)
	nw.mu.Lock()
	if nw.blocked == nil {
		nw.blocked = map[string][]netip.Prefix{}
	}
	nw.blocked[ns] = append(nw.blocked[ns], to...)
	nw.mu.Unlock()
	return command(ctx, b.String(), "ip", "-n", ns, "-batch", "-")
}

func (nw *network) unblock(ctx context.Context, i int) error {
	ns := nw.plan.Namespace(i)
	nw.mu.Lock()
	to := nw.blocked[ns]
	delete(nw.blocked, ns)
	nw.mu.Unlock()
	if len(to) == 0 {
		return nil
	}
	var b strings.Builder
	for _, pf := range to {
		fmt.Fprintf(&b, "route del blackhole %s\n", pf)
	}
	return command(ctx, b.String(), "ip", "-n", ns, "-batch", "-")
}

// teardown deletes the namespaces (their veths go with them) and the
// bridge. Processes must be gone first: a namespace a process still
// runs in outlives its name.
func (nw *network) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if len(nw.spaces) > 0 {
		var b strings.Builder
		for _, ns := range nw.spaces {
			fmt.Fprintf(&b, "netns del %s\n", ns)
		}
		if err := command(ctx, b.String(), "ip", "-force", "-batch", "-"); err != nil {
			errs = append(errs, err)
		}
		nw.spaces = nil
	}
	if nw.bridge {
		if err := command(ctx, "", "ip", "link", "del", nw.plan.Bridge()); err != nil {
			errs = append(errs, err)
		}
		nw.bridge = false
	}
	if old := nw.oldThresh; old != nil && !otherRuns(ctx, nw.plan.Run) {
		// Put back only when no other run has namespaces: it may need them.
		for i := range gcThresh {
			if err := os.WriteFile(gcThresh[i], []byte(strconv.Itoa(old[i])), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		nw.oldThresh = nil
	}
	return errors.Join(errs...)
}

// otherRuns reports whether a run other than run has namespaces.
func otherRuns(ctx context.Context, run string) bool {
	lo, err := FindLeftovers(ctx)
	if err != nil {
		return true
	}
	for r, l := range lo {
		if r != run && len(l.Namespaces) > 0 {
			return true
		}
	}
	return false
}

// parallel runs f(0..n-1) with at most width at once, returning the
// first error.
func parallel(ctx context.Context, n, width int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// HasNetem reports whether this kernel has tc's netem qdisc, trying it
// on a dummy link named after run.
func HasNetem(ctx context.Context, run string) bool {
	dev := LinkPrefix + run + "t"
	if command(ctx, "", "ip", "link", "add", dev, "type", "dummy") != nil {
		return false
	}
	defer command(context.Background(), "", "ip", "link", "del", dev)
	return command(ctx, "", "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms") == nil
}

// FreeSubnet returns the first 10.X.0.0/16, X from 77 to 126, that no
// address of this namespace's interfaces is in (another run, or the
// machine's own network, holds those).
func FreeSubnet() (netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	for x := 77; x <= 126; x++ {
		pf := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(x), 0, 0}), 16)
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && pf.Contains(ip.Unmap()) {
					used = true
				}
			}
		}
		if !used {
			return pf, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.X.0.0/16 (X from 77 to 126): give --subnet")
}

// WorkDir is a run's directory of data dirs, logs and the controller's
// pid file.
func WorkDir(run string) string { return filepath.Join(os.TempDir(), "pastry-bench-"+run) }

// Leftovers are what runs left: namespaces, links and work directories,
// by run id.
type Leftovers map[string]*Leftover

// Leftover is one run's.
type Leftover struct {
	Namespaces, Links []string
	Dir               string
	Alive             bool // its controller is still running
}

// FindLeftovers lists every namespace, link and work directory a run of
// the harness created and has not removed.
func FindLeftovers(ctx context.Context) (Leftovers, error) {
	lo := Leftovers{}
	get := func(run string) *Leftover {
		if lo[run] == nil {
			lo[run] = &Leftover{}
		}
		return lo[run]
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], NSPrefix) {
			if run, _, ok := strings.Cut(strings.TrimPrefix(f[0], NSPrefix), "-"); ok && runRE.MatchString(run) {
				get(run).Namespaces = append(get(run).Namespaces, f[0])
			}
		}
	}
	out, err = exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip link show: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, LinkPrefix) && len(name) > len(LinkPrefix)+4 && runRE.MatchString(name[len(LinkPrefix):len(LinkPrefix)+4]) {
			run := name[len(LinkPrefix) : len(LinkPrefix)+4]
			get(run).Links = append(get(run).Links, name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pastry-bench-*"))
	for _, d := range dirs {
		if run := strings.TrimPrefix(filepath.Base(d), "pastry-bench-"); runRE.MatchString(run) {
			get(run).Dir = d
		}
	}
	for run, l := range lo {
		l.Alive = controllerAlive(run)
	}
	return lo, nil
}

// controllerAlive reports whether run's controller (its pid file) is a
// running process.
func controllerAlive(run string) bool {
	b, err := os.ReadFile(filepath.Join(WorkDir(run), "controller.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// Cleanup removes the leftovers of every run whose controller is gone:
// it kills the processes in their namespaces, deletes the namespaces and
// links, and removes their directories. It returns what it removed.
func Cleanup(ctx context.Context) (removed Leftovers, err error) {
	lo, err := FindLeftovers(ctx)
	if err != nil {
		return nil, err
	}
	removed = Leftovers{}
	var errs []error
	for run, l := range lo {
		if l.Alive {
			continue
		}
		for _, ns := range l.Namespaces {
			if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
				for _, s := range strings.Fields(string(out)) {
					if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // the killed release their namespaces
		for _, ns := range l.Namespaces {
			if err := command(ctx, "", "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
		for _, link := range l.Links {
			// A veth went with its namespace's end; what is left is the bridge and dummies.
			if err := command(ctx, "", "ip", "link", "del", link); err != nil && linkExists(ctx, link) {
				errs = append(errs, err)
			}
		}
		if l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		removed[run] = l
	}
	return removed, errors.Join(errs...)
}

func linkExists(ctx context.Context, name string) bool {
	return exec.CommandContext(ctx, "ip", "link", "show", name).Run() == nil
}
