package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/pastrynet/pastry/bench/report"
)

// The protocols.
const (
	Pastry = "pastry"
	Kad    = "kad-dht"
)

// The orders in which the protocols are set up.
const (
	OrderPastryFirst = "pastry-first"
	OrderKadFirst    = "kad-first"
)

// Config is one run's settings (the command's flags).
type Config struct {
	Nodes        int           `json:"nodes"`
	Transport    string        `json:"transport"`
	Order        string        `json:"order"`
	Lookups      int           `json:"lookups"`
	KadLookups   int           `json:"kad_lookups"`
	Records      int           `json:"records"`
	Publishes    int           `json:"publishes"`
	ValueSize    int           `json:"value_size"`
	Rounds       int           `json:"rounds"`
	Batch        int           `json:"batch"`
	Heartbeat    time.Duration `json:"heartbeat_ns"`
	ReadyTimeout time.Duration `json:"ready_timeout_ns"`
	Settle       time.Duration `json:"settle_ns"`
	Idle         time.Duration `json:"idle_ns"`
	Seed         uint64        `json:"seed"`

	render string // --render: the results.json to redraw
}

// DefaultConfig is the command's defaults.
func DefaultConfig() Config {
	return Config{
		Nodes: 200, Transport: "quic", Order: OrderPastryFirst,
		Lookups: 1000, KadLookups: 300, Records: 100, Publishes: 200, ValueSize: 100, Rounds: 5,
		Batch: 4, Heartbeat: 2 * time.Second, ReadyTimeout: 60 * time.Second,
		Settle: 5 * time.Second, Idle: 10 * time.Second, Seed: 1,
	}
}

// Footprint is the whole process's at one moment.
type Footprint struct {
	RSS        uint64 `json:"rss_bytes"`
	Heap       uint64 `json:"heap_inuse_bytes"`
	Goroutines int    `json:"goroutines"`
}

// PerNode is a difference of two footprints, divided by the node count.
type PerNode struct {
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
	Goroutines float64 `json:"goroutines"`
}

// ProtoResult is what one protocol cost to set up and keep.
type ProtoResult struct {
	Name   string `json:"name"`
	Config string `json:"config"`
	// Order is 1 for the protocol set up first on the bare hosts, 2 for
	// the one set up on hosts the first had already connected.
	Order int `json:"order"`
	// JoinedS is from the first node's start until every node joined;
	// ReadyS until ready (Ready says what that means and what was found).
	JoinedS float64 `json:"joined_s"`
	ReadyS  float64 `json:"ready_s"`
	Ready   string  `json:"ready"`
	// Messages and stream bytes sent from start to ready, all nodes.
	SetupMsgs         uint64  `json:"setup_messages"`
	SetupBytes        uint64  `json:"setup_bytes"`
	SetupMsgsPerNode  float64 `json:"setup_messages_per_node"`
	SetupBytesPerNode float64 `json:"setup_bytes_per_node"`
	// Added is the process once this protocol was ready (and Settle
	// later); AddedPerNode its growth over the footprint before, per node.
	Added        Footprint `json:"added"`
	AddedPerNode PerNode   `json:"added_per_node"`
	// RemovedPerNode is what closing the protocol on every host gave back
	// at the end (the hosts' connections stay), per node.
	RemovedPerNode PerNode `json:"removed_per_node"`
	// Traffic with nothing asked of the protocol.
	IdleMsgsPerNodeS  float64 `json:"idle_messages_per_node_s"`
	IdleBytesPerNodeS float64 `json:"idle_bytes_per_node_s"`
	// IdleByType is Pastry's idle messages per node per second by kind
	// (as OpResult.ByType).
	IdleByType map[string]float64 `json:"idle_messages_by_type,omitempty"`
}

func (p *ProtoResult) setup(msgs, byts uint64, n int) {
	p.SetupMsgs, p.SetupBytes = msgs, byts
	p.SetupMsgsPerNode, p.SetupBytesPerNode = float64(msgs)/float64(n), float64(byts)/float64(n)
}

// OpResult is one operation of one protocol.
type OpResult struct {
	Op       string `json:"op"` // lookup, find peer, put, get
	Protocol string `json:"protocol"`
	Call     string `json:"call"`
	Count    int    `json:"count"`
	Failed   int    `json:"failed"`
	// Wrong counts answers that were not right: a lookup whose root is
	// not the numerically closest node; a GetClosestPeers without the
	// XOR-closest peer; a FindPeer of another peer; a get of another value.
	Wrong     int       `json:"wrong"`
	LatencyMs []float64 `json:"latency_ms"` // every operation's, in order
	P50Ms     float64   `json:"p50_ms"`
	P90Ms     float64   `json:"p90_ms"`
	P99Ms     float64   `json:"p99_ms"`
	MeanMs    float64   `json:"mean_ms"`
	// Per is, per operation: Pastry's overlay hops (lookups), kad-dht's
	// RPCs started (from its query events); PerP50 its median.
	Per    []int   `json:"per,omitempty"`
	PerP50 float64 `json:"per_p50"`
	// MsgsPerOp and BytesPerOp are the protocol's messages and stream
	// bytes, all nodes, while this operation ran, less the protocol's
	// idle rate over that time, per operation; Raw before that.
	MsgsPerOp     float64  `json:"messages_per_op"`
	BytesPerOp    float64  `json:"bytes_per_op"`
	MsgsPerOpRaw  float64  `json:"messages_per_op_raw"`
	BytesPerOpRaw float64  `json:"bytes_per_op_raw"`
	Seconds       float64  `json:"seconds"`
	Errors        []string `json:"errors,omitempty"` // the first few
	// Publish only: the topic's subscribers, the deliveries expected
	// (each successful publish at every subscriber) and made, and the
	// messages and stream bytes per delivery, net of idle traffic.
	Subscribers      int     `json:"subscribers,omitempty"`
	Expected         int     `json:"expected,omitempty"`
	Delivered        int     `json:"delivered,omitempty"`
	MsgsPerDelivery  float64 `json:"messages_per_delivery,omitempty"`
	BytesPerDelivery float64 `json:"bytes_per_delivery,omitempty"`
	// AnswersStraight counts Pastry lookups whose answer came straight
	// back from the root (or was the origin's own), not routed.
	AnswersStraight int `json:"answers_straight,omitempty"`
	// Disconnected counts FindPeers for which the origin's connection to
	// the target was closed first (no unconnected pair was found).
	Disconnected int `json:"disconnected,omitempty"`
	// ByType is Pastry's messages per operation by kind (the transport's
	// frame types, and "ping"/"pong"), less each kind's idle rate over
	// the operation's time: where MsgsPerOp goes.
	ByType map[string]float64 `json:"messages_by_type,omitempty"`

	msgs, bytes, seconds float64
	byType               map[string]uint64
}

func (o *OpResult) add(d time.Duration, err error, wrong bool, per int) {
	o.Count++
	if err != nil {
		o.Failed++
		if len(o.Errors) < 5 {
			o.Errors = append(o.Errors, err.Error())
		}
		return
	}
	if wrong {
		o.Wrong++
	}
	o.LatencyMs = append(o.LatencyMs, float64(d.Microseconds())/1000)
	o.Per = append(o.Per, per)
}

// finish computes the summary figures; idleMsgs and idleBytes are the
// protocol's idle rates, all nodes, per second.
func (o *OpResult) finish(idleMsgs, idleBytes float64, idleByType map[string]float64) {
	s := slices.Sorted(slices.Values(o.LatencyMs))
	o.P50Ms, o.P90Ms, o.P99Ms = quantile(s, 0.5), quantile(s, 0.9), quantile(s, 0.99)
	var sum float64
	for _, v := range s {
		sum += v
	}
	if len(s) > 0 {
		o.MeanMs = round3(sum / float64(len(s)))
	}
	ps := make([]float64, len(o.Per))
	for i, v := range o.Per {
		ps[i] = float64(v)
	}
	slices.Sort(ps)
	o.PerP50 = quantile(ps, 0.5)
	o.Seconds = round3(o.seconds)
	if o.Count > 0 {
		c := float64(o.Count)
		o.MsgsPerOpRaw, o.BytesPerOpRaw = round3(o.msgs/c), round3(o.bytes/c)
		o.MsgsPerOp = round3(math.Max(0, o.msgs-idleMsgs*o.seconds) / c)
		o.BytesPerOp = round3(math.Max(0, o.bytes-idleBytes*o.seconds) / c)
		for k, v := range o.byType {
			if o.ByType == nil {
				o.ByType = map[string]float64{}
			}
			o.ByType[k] = round3(math.Max(0, float64(v)-idleByType[k]*o.seconds) / c)
		}
	}
	if o.Delivered > 0 {
		d := float64(o.Delivered)
		o.MsgsPerDelivery = round3(math.Max(0, o.msgs-idleMsgs*o.seconds) / d)
		o.BytesPerDelivery = round3(math.Max(0, o.bytes-idleBytes*o.seconds) / d)
	}
}

// quantile is the q-quantile of sorted s (nearest rank).
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Result is a run's raw figures, written as results.json.
type Result struct {
	Command  string `json:"command"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemTotal string `json:"mem_total"`
	Load     string `json:"load_at_start"`
	Revision string `json:"revision"`
	Kad      string `json:"kad_dht_version"`
	Libp2p   string `json:"go_libp2p_version"`
	Config   Config `json:"config"`
	// Baseline is the process before any host; Hosts once the bare hosts
	// exist; Both once both protocols are ready; AfterOps after the
	// operations.
	Baseline  Footprint      `json:"baseline"`
	Hosts     Footprint      `json:"hosts"`
	Both      Footprint      `json:"both"`
	AfterOps  Footprint      `json:"after_ops"`
	Protocols []*ProtoResult `json:"protocols"`
	// GossipSub is set up third, when there are publishes, and its idle
	// traffic measured with its topic joined.
	GossipSub *ProtoResult `json:"gossipsub,omitempty"`
	Ops       []*OpResult  `json:"ops"`
}

func newResult(cfg Config) *Result {
	return &Result{
		Command: commandLine(), Started: time.Now().UTC().Format(time.RFC3339),
		Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel(), Cores: runtime.NumCPU(),
		MemTotal: procField("/proc/meminfo", "MemTotal:"), Load: loadAvg(),
		Revision: report.Revision(), Kad: kadVersion(), Libp2p: depVersion("github.com/libp2p/go-libp2p"), Config: cfg,
		Protocols: []*ProtoResult{{Name: Pastry}, {Name: Kad}},
	}
}

func (r *Result) proto(name string) *ProtoResult {
	for _, p := range r.Protocols {
		if p.Name == name {
			return p
		}
	}
	if name == GossipSub && r.GossipSub != nil {
		return r.GossipSub
	}
	return &ProtoResult{Name: name}
}

func (r *Result) op(op, proto, call string) *OpResult {
	o := &OpResult{Op: op, Protocol: proto, Call: call}
	r.Ops = append(r.Ops, o)
	return o
}

// findOp returns the operation of proto with the call named, or nil.
func (r *Result) findOp(proto, call string) *OpResult {
	for _, o := range r.Ops {
		if o.Protocol == proto && o.Call == call {
			return o
		}
	}
	return nil
}

func commandLine() string {
	args := []string{"cd bench/compare && go run ."}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + a + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func cpuModel() string { return procField("/proc/cpuinfo", "model name") }

// procField returns the value after the first line of file starting with
// key, trimmed of the separator.
func procField(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(strings.TrimLeft(rest, " \t:"))
		}
	}
	return ""
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return ""
}
