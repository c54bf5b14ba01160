package cluster

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
)

func testPlan(t *testing.T, n int) Plan {
	t.Helper()
	p, err := NewPlan("0a1b", netip.MustParsePrefix("10.77.0.0/16"), n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlan(t *testing.T) {
	p := testPlan(t, MaxNodes)
	if got := p.Addr(0).String(); got != "10.77.1.0" {
		t.Errorf("Addr(0) = %s", got)
	}
	if got := p.Addr(MaxNodes - 1).String(); got != "10.77.255.254" {
		t.Errorf("last address %s, want 10.77.255.254 (not the broadcast address)", got)
	}
	if p.Gateway().String() != "10.77.0.1" || p.API(3) != "10.77.1.3:7700" || p.Listen(3) != "/ip4/10.77.1.3/tcp/7701" {
		t.Errorf("gateway %s, api %s, listen %s", p.Gateway(), p.API(3), p.Listen(3))
	}
	for _, name := range []string{p.HostVeth(MaxNodes - 1), p.NodeVeth(MaxNodes - 1), p.Bridge()} {
		if len(name) > 15 {
			t.Errorf("link name %s longer than Linux's 15", name)
		}
	}
	if ns := p.Namespace(7); ns != "pbc-0a1b-7" {
		t.Errorf("namespace %s", ns)
	}
	for _, bad := range []struct {
		run    string
		subnet string
		n      int
	}{{"0A1B", "10.77.0.0/16", 4}, {"0a1", "10.77.0.0/16", 4}, {"0a1b", "10.77.0.0/24", 4}, {"0a1b", "10.77.1.0/16", 4},
		{"0a1b", "fd00::/16", 4}, {"0a1b", "10.77.0.0/16", 0}, {"0a1b", "10.77.0.0/16", MaxNodes + 1}} {
		if _, err := NewPlan(bad.run, netip.MustParsePrefix(bad.subnet), bad.n); err == nil {
			t.Errorf("NewPlan(%q, %s, %d) accepted", bad.run, bad.subnet, bad.n)
		}
	}
	if !runRE.MatchString(NewRunID()) {
		t.Error("NewRunID makes an id NewPlan refuses")
	}
}

// Cover holds exactly the range's addresses, in few prefixes.
func TestCover(t *testing.T) {
	p := testPlan(t, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		lo := rng.IntN(1000)
		hi := lo + 1 + rng.IntN(1000-lo)
		cover := p.Cover(lo, hi)
		if len(cover) > 2*16 {
			t.Fatalf("[%d,%d): %d prefixes", lo, hi, len(cover))
		}
		for i := max(0, lo-3); i < min(1000, hi+3); i++ {
			in := slices.ContainsFunc(cover, func(pf netip.Prefix) bool { return pf.Contains(p.Addr(i)) })
			if in != (i >= lo && i < hi) {
				t.Fatalf("[%d,%d): node %d (%s) covered %v by %v", lo, hi, i, p.Addr(i), in, cover)
			}
		}
		if slices.ContainsFunc(cover, func(pf netip.Prefix) bool { return pf.Contains(p.Gateway()) }) {
			t.Fatalf("[%d,%d): %v covers the gateway", lo, hi, cover)
		}
	}
	if got := p.Cover(0, 256); len(got) != 1 || got[0].String() != "10.77.1.0/24" {
		t.Errorf("Cover(0, 256) = %v, want [10.77.1.0/24]", got)
	}
}

func randomIDs(rng *rand.Rand, n int) []id.ID {
	ids := make([]id.ID, n)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(rng.Uint32())
		}
	}
	return ids
}

// Root is the closest id by brute force.
func TestTruthRoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 64, 500} {
		ids := randomIDs(rng, n)
		tr := NewTruth(ids)
		for range 300 {
			key := randomIDs(rng, 1)[0]
			if rng.IntN(10) == 0 {
				key = ids[rng.IntN(n)] // a node's own id
			}
			best := ids[0]
			for _, x := range ids[1:] {
				if id.Closer(key, x, best) {
					best = x
				}
			}
			if got := tr.Root(key); got != best {
				t.Fatalf("n=%d key %s: root %s, brute force %s", n, key, got, best)
			}
		}
	}
	if (Truth{}).Root(id.ID{}) != (id.ID{}) {
		t.Error("root of no nodes")
	}
}

func TestLeafSetExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ids := randomIDs(rng, 20)
	tr := NewTruth(ids)
	s := tr.ids // sorted
	self := s[0]
	left := []id.ID{s[19], s[18], s[17]} // closest first, wrapping
	right := []id.ID{s[1], s[2], s[3]}
	if !tr.LeafSetExact(self, left, right, 3) {
		t.Fatal("the true leaf set is not exact")
	}
	if tr.LeafSetExact(self, right, left, 3) || tr.LeafSetExact(self, left[:2], right, 3) ||
		tr.LeafSetExact(self, []id.ID{s[19], s[17], s[18]}, right, 3) {
		t.Fatal("a wrong leaf set is exact")
	}
	if tr.LeafSetExact(randomIDs(rng, 1)[0], left, right, 3) {
		t.Fatal("a stranger's leaf set is exact")
	}
	small := NewTruth(ids[:3])
	ss := small.ids
	if !small.LeafSetExact(ss[0], []id.ID{ss[2], ss[1]}, []id.ID{ss[1], ss[2]}, 8) {
		t.Fatal("in 3 nodes, each side holds both others")
	}
}

func TestParseMatrix(t *testing.T) {
	m, err := ParseMatrix([]byte(`[[0, 10, 20.5], [11, 0, 5], [1, 2, 99]]`), 3)
	if err != nil {
		t.Fatal(err)
	}
	if m[0][2] != 20500*time.Microsecond || m[1][0] != 11*time.Millisecond || m[2][2] != 0 {
		t.Fatalf("matrix %v", m)
	}
	mean, mx := m.Stats()
	if mx != 20500*time.Microsecond || mean != 8250*time.Microsecond {
		t.Fatalf("stats %v %v", mean, mx)
	}
	for _, bad := range []string{``, `{}`, `[]`, `[[0]] [[0]]`, `[[0, 1], [1]]`, `[[0, -1], [1, 0]]`, `[[0, 1e9], [1, 0]]`, `[[0, "1"], [1, 0]]`} {
		if _, err := ParseMatrix([]byte(bad), 0); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseMatrix([]byte(`[[0, 1], [1, 0]]`), 3); err == nil {
		t.Error("a 2x2 matrix accepted for 3 nodes")
	}
}

func TestModelMatrix(t *testing.T) {
	a, err := ModelMatrix("sphere", 7, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ModelMatrix("sphere", 7, 10)
	c, _ := ModelMatrix("sphere", 8, 10)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("the same seed gave another matrix")
	}
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("another seed gave the same matrix")
	}
	for i := range a {
		if a[i][i] != 0 {
			t.Fatal("diagonal not zero")
		}
		for j := range a {
			if a[i][j] != a[j][i] || a[i][j] < 0 || a[i][j] > 150*time.Millisecond {
				t.Fatalf("sphere [%d][%d] = %v, [%d][%d] = %v", i, j, a[i][j], j, i, a[j][i])
			}
		}
	}
	if _, err := ModelMatrix("torus", 1, 3); err == nil {
		t.Error("unknown model accepted")
	}
	// The per-node file names every other peer with its delay, as pastry
	// node --inject-latency reads it.
	peers := []string{"p0", "p1", "p2"}
	m := Matrix{{0, time.Millisecond, 2 * time.Millisecond}, {3 * time.Millisecond, 0, 0}, {0, 0, 0}}
	data, err := m.latencyFile(0, peers)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Default string
		Peers   map[string]string
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Default != "0s" || len(f.Peers) != 2 || f.Peers["p1"] != "1ms" || f.Peers["p2"] != "2ms" {
		t.Fatalf("latency file %s", data)
	}
}

func TestParseTargets(t *testing.T) {
	ts, err := ParseTargets([]byte(`{"token": "filetok", "nodes": [
		{"api": "http://10.0.0.1:7700"}, {"api": "https://node2.example:7700/", "token": "own"}]}`), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0] != (Target{"http://10.0.0.1:7700", "filetok"}) || ts[1] != (Target{"https://node2.example:7700", "own"}) {
		t.Fatalf("targets %+v", ts)
	}
	ts, err = ParseTargets([]byte(`{"nodes": [{"api": "http://[fd00::1]:7700"}]}`), "default")
	if err != nil || ts[0].Token != "default" {
		t.Fatalf("default token: %+v %v", ts, err)
	}
	for _, bad := range []string{
		``, `[]`, `{"nodes": []}`, `{"nodes": [{"api": "10.0.0.1:7700"}]}`, `{"nodes": [{"api": "http://10.0.0.1"}]}`,
		`{"nodes": [{"api": "ftp://h:1"}]}`, `{"nodes": [{"api": "http://h:1/v1"}]}`, `{"nodes": [{"api": "http://u:p@h:1"}]}`,
		`{"nodes": [{"api": "http://h:1"}, {"api": "http://h:1/"}]}`, `{"nodes": [{"api": "http://h:1", "tok": "x"}]}`,
		`{"nodes": [{"api": "http://h:1", "token": "a b"}]}`, `{"nodes": [{"api": "http://h:1"}]} {}`,
	} {
		if _, err := ParseTargets([]byte(bad), ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP x
# TYPE pastry_messages_sent_total counter
pastry_messages_sent_total{type="route",otel_scope_name="pastry"} 12
pastry_messages_sent_total{type="ack"} 3.5
go_goroutines 42
process_resident_memory_bytes 1.048576e+07
weird{a="}"} 1
broken{ 7
`
	m := ParseMetrics(text)
	if m["pastry_messages_sent_total"] != 15.5 || m["go_goroutines"] != 42 || m["process_resident_memory_bytes"] != 10485760 || m["weird"] != 1 {
		t.Fatalf("metrics %v", m)
	}
	if _, ok := m["broken"]; ok {
		t.Fatal("a broken line counted")
	}
}

func TestSummarize(t *testing.T) {
	var s []LookupSample
	for i := range 100 {
		s = append(s, LookupSample{Hops: i % 3, LatencyMS: float64(50 * (i%3 + 1)), Correct: i != 5})
	}
	// Routed answers: 2 hops there, 2 back, 4 legs of 50 ms.
	for range 10 {
		s = append(s, LookupSample{Hops: 2, AnswerHops: 2, LatencyMS: 200, Correct: true})
	}
	s = append(s, LookupSample{Err: "timeout"})
	sum := summarize(s, 50*time.Millisecond)
	if sum.Count != 111 || sum.Correct != 109 || sum.Wrong != 1 || sum.Failed != 1 {
		t.Fatalf("counts %+v", sum)
	}
	if len(sum.ByHops) != 4 {
		t.Fatalf("by hops %+v", sum.ByHops)
	}
	for i, r := range sum.ByHops {
		if r.Hops == 0 {
			if r.ExpectedMS != 0 || i != 0 {
				t.Errorf("0 hops: expected %v ms at row %d, want none at row 0", r.ExpectedMS, i)
			}
			continue
		}
		legs := r.Hops + max(r.AnswerHops, 1)
		if r.ExpectedMS != float64(50*legs) || r.StraightMS != float64(50*(r.Hops+1)) || r.Ratio != 1 {
			t.Errorf("hops %d, answer %d: expected %v, straight %v, ratio %v; want %d ms, %d ms and 1", r.Hops, r.AnswerHops, r.ExpectedMS, r.StraightMS, r.Ratio, 50*legs, 50*(r.Hops+1))
		}
	}
	if last := sum.ByHops[3]; last.Hops != 2 || last.AnswerHops != 2 || last.Count != 10 {
		t.Errorf("last row %+v, want the 10 routed answers", last)
	}
	if q := quantile([]float64{5, 1, 4, 2, 3}, 0.5); q != 3 {
		t.Errorf("median %v", q)
	}
	if q := quantile([]float64{5, 1, 4, 2, 3}, 0.99); q != 5 {
		t.Errorf("p99 %v", q)
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

// The report writes every figure it measured, and the JSON holds the raw
// samples.
func TestReport(t *testing.T) {
	r := &Report{Mode: "local", Command: "pastry bench cluster -n 2", Commit: "abc", Nodes: 2, InjectDelayMS: 50,
		LookupSamples: []LookupSample{{Hops: 1, LatencyMS: 101, Correct: true, Key: "k"}}}
	r.Lookups = summarize(r.LookupSamples, 50*time.Millisecond)
	r.Faults = []*Fault{{Kind: "kill -9", Percent: 10, Nodes: []int{1}, RecoveredS: 2.5, Rounds: []Round{{AtS: 0, Lookups: 4, Correct: 3}, {AtS: 2.5, Lookups: 4, Correct: 4}}}}
	dir := t.TempDir()
	if err := r.WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	var md, js bytes.Buffer
	if err := r.WriteMarkdown(&md, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pastry bench cluster -n 2", "| 1 | 0 | 1 | 101.00 | 101.00 | 100 | 100 | 1.010 |", "**2.5 s**", "abc"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.LookupSamples) != 1 || back.Faults[0].RecoveredS != 2.5 {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
}

func TestNeighbourLimits(t *testing.T) {
	got := neighbourLimits(64, [3]int{128, 512, 1024})
	if got[0] != 128 || got[1] < 64*63 || got[2] < got[1] {
		t.Fatalf("limits for 64 nodes %v", got)
	}
	if got := neighbourLimits(4, [3]int{128, 100000, 200000}); got != [3]int{128, 100000, 200000} {
		t.Fatalf("lowered the limits: %v", got)
	}
}

func TestQdiscs(t *testing.T) {
	if q := qdiscs("v", Shaping{}, 0); len(q) != 0 {
		t.Fatalf("nothing to shape: %v", q)
	}
	tbf := strings.Join(qdiscs("v", Shaping{Rate: "10mbit"}, 0), "\n")
	if !strings.Contains(tbf, "dev v root handle 2: tbf rate 10mbit") {
		t.Fatalf("tbf: %s", tbf)
	}
	htb := strings.Join(qdiscs("v", Shaping{Rate: "10mbit", Shaper: "htb"}, 0), "\n")
	if !strings.Contains(htb, "htb default 1") || !strings.Contains(htb, "htb rate 10mbit ceil 10mbit") {
		t.Fatalf("htb: %s", htb)
	}
	both := qdiscs("v", Shaping{Rate: "10mbit"}, 50*time.Millisecond)
	if len(both) != 2 || !strings.Contains(both[0], "root handle 1: netem delay 50000us") || !strings.Contains(both[1], "parent 1:1") {
		t.Fatalf("netem and tbf: %v", both)
	}
}

func FuzzParseMatrix(f *testing.F) {
	f.Add([]byte(`[[0, 10], [10, 0]]`))
	f.Add([]byte(`[[0]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMatrix(data, 0)
		if err != nil {
			return
		}
		for i := range m {
			if len(m[i]) != len(m) || m[i][i] != 0 {
				t.Fatalf("row %d: %v", i, m[i])
			}
			for _, d := range m[i] {
				if d < 0 || d > maxDelayMS*time.Millisecond {
					t.Fatalf("delay %v", d)
				}
			}
		}
	})
}

func FuzzParseTargets(f *testing.F) {
	f.Add([]byte(`{"nodes": [{"api": "http://10.0.0.1:7700", "token": "t"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTargets(data, "d")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, x := range ts {
			if seen[x.API] || !strings.HasPrefix(x.API, "http") || strings.ContainsAny(x.Token, " \n") {
				t.Fatalf("target %+v", x)
			}
			seen[x.API] = true
		}
	})
}
