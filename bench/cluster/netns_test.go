package cluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The namespace integration test starts real node processes in network
// namespaces: it needs root and a minute or two, so it runs only when
// asked:
//
//	go build -o /tmp/pastry ./cmd/pastry   # or let the test build it
//	sudo PASTRY_NETNS_TEST=1 go test -run TestNamespaces -v ./bench/cluster/
func netnsTest(t *testing.T) string {
	t.Helper()
	if os.Getenv("PASTRY_NETNS_TEST") == "" {
		t.Skip("set PASTRY_NETNS_TEST=1 (as root; 1-2 minutes) to run node processes in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if testing.Short() {
		t.Skip("not with -short")
	}
	bin := filepath.Join(t.TempDir(), "pastry")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pastrynet/pastry/cmd/pastry").CombinedOutput()
	if err != nil {
		t.Fatalf("build pastry: %v\n%s", err, out)
	}
	return bin
}

// logWriter passes progress lines to t.Log and to watch.
type logWriter struct {
	t     *testing.T
	mu    sync.Mutex
	watch func(line string)
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimSpace(string(p)))
	if w.watch != nil {
		w.watch(string(p))
	}
	return len(p), nil
}

func noLeftovers(t *testing.T, run string) {
	t.Helper()
	lo, err := FindLeftovers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if l := lo[run]; l != nil {
		t.Fatalf("run %s left namespaces %v, links %v, dir %q", run, l.Namespaces, l.Links, l.Dir)
	}
	if out, _ := exec.Command("pgrep", "-f", WorkDir(run)).Output(); len(out) > 0 {
		t.Fatalf("run %s left processes: %s", run, out)
	}
}

// Four nodes in namespaces, with injected delay and shaped links: ready,
// every lookup at the right root and no faster than its links allow,
// records read back, a kill and a partition recovered from, and nothing
// left behind.
func TestNamespaces(t *testing.T) {
	bin := netnsTest(t)
	const delay = 20 * time.Millisecond
	cfg := Config{N: 4, Binary: bin, Run: NewRunID(), Lookups: 40, Records: 5, Seed: 1,
		KillPercent: 25, PartitionPct: 50, PartitionFor: 5 * time.Second, RecoveryTimeout: 2 * time.Minute,
		InjectDelay: delay, DelayMode: "inject", Shaping: Shaping{Rate: "50mbit", Shaper: "htb"}, Log: &logWriter{t: t}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Local(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, cfg.Run)
	if !rep.Ready || rep.DelayMode != "inject" || !strings.HasPrefix(rep.Teardown, "clean") {
		t.Fatalf("ready %v, delay mode %s, teardown %q", rep.Ready, rep.DelayMode, rep.Teardown)
	}
	if l := rep.Lookups; l.Correct != cfg.Lookups {
		t.Fatalf("lookups: %d correct of %d (%d wrong, %d failed)", l.Correct, l.Count, l.Wrong, l.Failed)
	}
	for _, s := range rep.LookupSamples {
		if min := float64(s.Hops+1) * 0.95 * float64(delay.Milliseconds()); s.Hops > 0 && s.LatencyMS < min {
			t.Fatalf("a %d-hop lookup took %.1f ms, less than its %d links of %v", s.Hops, s.LatencyMS, s.Hops+1, delay)
		}
	}
	if r := rep.Records; r == nil || r.GetOK != cfg.Records {
		t.Fatalf("records %+v", r)
	}
	if len(rep.Faults) != 2 {
		t.Fatalf("faults %+v", rep.Faults)
	}
	for _, f := range rep.Faults {
		if f.RecoveredS < 0 {
			t.Errorf("%s: lookups not correct again within %v", f.Kind, cfg.RecoveryTimeout)
		}
	}
	if fp := rep.Footprints; len(fp) == 0 || fp[0].RSSMeanMiB <= 0 || fp[0].MessagesSent <= 0 {
		t.Errorf("footprint %+v", fp)
	}
}

// Canceled mid-run (as SIGINT or SIGTERM cancel the command's context),
// the harness still removes everything.
func TestNamespacesCanceled(t *testing.T) {
	bin := netnsTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := &logWriter{t: t, watch: func(line string) {
		if strings.Contains(line, "lookups,") { // the workload has started
			cancel()
		}
	}}
	cfg := Config{N: 3, Binary: bin, Run: NewRunID(), Lookups: 100000, Log: w}
	rep, err := Local(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	noLeftovers(t, cfg.Run)
	if !strings.HasPrefix(rep.Teardown, "clean") {
		t.Fatalf("teardown %q", rep.Teardown)
	}
}
