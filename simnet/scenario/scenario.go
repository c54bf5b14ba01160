package scenario

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// Walk runs the scripts in dir/*.txt against a simnet network, in the
// style of etcd raft's interaction tests (rafttest). Regenerate the golden
// output with
//
//	go test ./PKG -run TEST -rewrite
//
// and read the diff before committing it. Each "net" command starts a new
// network and, when extend is not nil, calls it for that network's
// extensions: applications attached to every node as it is added, and
// the commands they add to the language (put/get, subscribe/publish).
//
// The command language (one network per file; node arguments are indices
// in the order nodes were added; lists are "3,5", "(3,5)" or "3-7", and
// "dead" names every crashed node):
//
//	net seed=1 [b=4] [leaf=16] [m=32] [drop=0.01] [topology=plane|constant] [config=sim|default]
//	add n=10 | add id=8               ids are hex, right-padded with zeros
//	bootstrap i=0
//	join i=3[,4...] via=0 [gap=1s]    starts the joins, running gap after each
//	grow n=20 [gap=1s]                add nodes one at a time, each joining
//	                                  through the nearest joined node
//	run for=30s
//	status                            nodes grouped by life-cycle state
//	route from=2 key=HEX|nK [trace] [wait=2s]
//	nexthop i=2 key=HEX|nK            which rule of the routing procedure applies
//	lookups n=500 [wait=30s]          random keys from random live nodes
//	crash i=3,5 | hop=1 | entry=(2,0,3) | root=HEX
//	                                  by index, by position on the last traced
//	                                  route, as node 2's table entry at row 0
//	                                  column 3, or as the live root of a key
//	leave i=4
//	partition 0,1,2 | 3,4             unnamed nodes form one more group
//	heal
//	leafset i=2 | table i=2 | neighbors i=2
//	whoknows i=4                      live nodes holding node 4, by structure
//	check                             leaf sets vs truth, table invariant
//	stats                             counters summed over nodes, since the last stats
//	updates [about=4] [clear]         Update upcalls since the last updates
//
// Nodes print as index:first four hex digits of the id.
func Walk(t *testing.T, dir string, extend func(s *Scenario) []Extension) {
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			t.Skip("not a script")
		}
		s := &Scenario{extend: extend}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return s.run(t, td)
		})
	})
}

// Extension adds an application and its commands to the language. A new
// set is made for every network (Walk's extend), so an extension may keep
// per-network state.
type Extension interface {
	// Attach registers the extension's application on n, as n is added.
	Attach(n *simnet.Host) error
	// Command runs td.Cmd, writing its output to out, if the command is
	// the extension's; it reports whether it was.
	Command(t *testing.T, td *datadriven.TestData, out *strings.Builder) bool
}

// scenarioApp is the application id the harness routes and records under.
const scenarioApp core.AppID = 7

// Scenario is one script's state: its network, and the harness's own
// applications on every node. Extensions use its exported helpers to
// parse arguments the way the built-in commands do.
type Scenario struct {
	extend  func(s *Scenario) []Extension
	exts    []Extension
	nw      *simnet.Network
	cfg     core.Config
	lk      *simnet.Lookups
	apps    []*recorder
	nextMsg uint64
	// deliveries of harness-routed messages, by message number.
	delivered map[uint64][]delivery
	updates   []update
	lastStats totals
	lastLk    lookupTotals
	// lastPath is the last traced route's path, by node index.
	lastPath []int
}

type delivery struct {
	at   int
	msg  core.Message
	root bool
}

type update struct {
	at     int
	h      id.Handle
	joined bool
}

// recorder is the harness's application on one node.
type recorder struct {
	s   *Scenario
	idx int
}

func (r *recorder) Deliver(m *core.Message) {
	s := r.s
	if len(m.Payload) != 8 {
		return
	}
	k := uint64(0)
	for _, b := range m.Payload {
		k = k<<8 | uint64(b)
	}
	root, ok := s.nw.Root(m.Key)
	s.delivered[k] = append(s.delivered[k], delivery{at: r.idx, msg: *m, root: ok && root.Index == r.idx})
}

func (r *recorder) Forward(*core.Message, *id.Handle) bool { return true }

func (r *recorder) Update(h id.Handle, joined bool) {
	r.s.updates = append(r.s.updates, update{at: r.idx, h: h, joined: joined})
}

func (s *Scenario) run(t *testing.T, td *datadriven.TestData) string {
	if td.Cmd != "net" && s.nw == nil {
		td.Fatalf(t, "%s before net", td.Cmd)
	}
	var b strings.Builder
	switch td.Cmd {
	case "net":
		s.cmdNet(t, td)
		fmt.Fprintf(&b, "b=%d L=%d M=%d", s.cfg.B, s.cfg.LeafSetSize, s.cfg.NeighborhoodSize)
	case "add":
		s.cmdAdd(t, td, &b)
	case "bootstrap":
		for _, i := range s.Nodes(t, td, "i") {
			s.writeErr(&b, s.nw.Bootstrap(i))
		}
	case "join":
		var via int
		td.ScanArgs(t, "via", &via)
		gap := s.Duration(t, td, "gap", 0)
		for _, i := range s.Nodes(t, td, "i") {
			s.writeErr(&b, s.nw.Join(i, via))
			if gap > 0 {
				s.nw.RunFor(gap)
			}
		}
	case "grow":
		s.cmdGrow(t, td, &b)
	case "run":
		s.nw.RunFor(s.Duration(t, td, "for", 0))
		fmt.Fprintf(&b, "t=%s", s.nw.Now())
	case "status":
		s.cmdStatus(&b)
	case "route":
		s.cmdRoute(t, td, &b)
	case "nexthop":
		s.cmdNextHop(t, td, &b)
	case "lookups":
		s.cmdLookups(t, td, &b)
	case "crash":
		s.cmdCrash(t, td, &b)
	case "leave":
		for _, i := range s.Nodes(t, td, "i") {
			s.writeErr(&b, s.nw.Leave(i))
		}
	case "partition":
		s.cmdPartition(t, td, &b)
	case "heal":
		s.nw.Heal()
		b.WriteString("ok")
	case "leafset":
		for _, i := range s.Nodes(t, td, "i") {
			ls := s.nw.Node(i).State().Leaves
			fmt.Fprintf(&b, "%s left [%s] right [%s]\n", s.Name(i), s.entries(ls.Left()), s.entries(ls.Right()))
		}
	case "table":
		for _, i := range s.Nodes(t, td, "i") {
			s.cmdTable(i, &b)
		}
	case "neighbors":
		for _, i := range s.Nodes(t, td, "i") {
			fmt.Fprintf(&b, "%s [%s]\n", s.Name(i), s.entries(s.nw.Node(i).State().Neighbors.Members()))
		}
	case "whoknows":
		for _, i := range s.Nodes(t, td, "i") {
			s.cmdWhoKnows(i, &b)
		}
	case "check":
		s.cmdCheck(&b)
	case "stats":
		s.cmdStats(&b)
	case "updates":
		s.cmdUpdates(t, td, &b)
	default:
		known := false
		for _, e := range s.exts {
			if known = e.Command(t, td, &b); known {
				break
			}
		}
		if !known {
			td.Fatalf(t, "unknown command %q", td.Cmd)
		}
	}
	out := strings.TrimRight(b.String(), "\n")
	if out == "" {
		return "ok\n"
	}
	return out + "\n"
}

func (s *Scenario) writeErr(b *strings.Builder, err error) {
	if err != nil {
		fmt.Fprintf(b, "error: %v\n", err)
	}
}

func (s *Scenario) cmdNet(t *testing.T, td *datadriven.TestData) {
	seed := uint64(1)
	td.MaybeScanArgs(t, "seed", &seed)
	cfg := core.SimConfig()
	if td.HasArg("config") {
		var c string
		td.ScanArgs(t, "config", &c)
		switch c {
		case "sim":
		case "default":
			cfg = core.DefaultConfig()
		default:
			td.Fatalf(t, "unknown config %q", c)
		}
	}
	td.MaybeScanArgs(t, "b", &cfg.B)
	td.MaybeScanArgs(t, "leaf", &cfg.LeafSetSize)
	td.MaybeScanArgs(t, "m", &cfg.NeighborhoodSize)
	var drop float64
	td.MaybeScanArgs(t, "drop", &drop)
	topo := "plane"
	td.MaybeScanArgs(t, "topology", &topo)
	var tp simnet.Topology
	switch topo {
	case "plane":
		tp = simnet.NewPlane()
	case "constant":
		tp = simnet.Constant(10 * time.Millisecond)
	default:
		td.Fatalf(t, "unknown topology %q", topo)
	}
	nw, err := simnet.New(simnet.Options{Seed: seed, Node: cfg, Topology: tp, DropRate: drop})
	if err != nil {
		td.Fatalf(t, "net: %v", err)
	}
	*s = Scenario{extend: s.extend, nw: nw, cfg: cfg, lk: simnet.NewLookups(nw), delivered: map[uint64][]delivery{}}
	if s.extend != nil {
		s.exts = s.extend(s)
	}
}

// attach registers the harness's applications on a new node.
func (s *Scenario) attach(t *testing.T, n *simnet.Host) {
	r := &recorder{s: s, idx: n.Index}
	s.apps = append(s.apps, r)
	if _, err := n.RegisterApplication(scenarioApp, r); err != nil {
		t.Fatal(err)
	}
	if err := s.lk.Attach(n); err != nil {
		t.Fatal(err)
	}
	for _, e := range s.exts {
		if err := e.Attach(n); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *Scenario) cmdAdd(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	if td.HasArg("id") {
		var x string
		td.ScanArgs(t, "id", &x)
		n := s.nw.AddNodeWithID(parseHex(t, td, x))
		s.attach(t, n)
		fmt.Fprintf(b, "%d %s\n", n.Index, n.Self().ID)
		return
	}
	var count int
	td.ScanArgs(t, "n", &count)
	for range count {
		n := s.nw.AddNode()
		s.attach(t, n)
		fmt.Fprintf(b, "%d %s\n", n.Index, n.Self().ID)
	}
}

func (s *Scenario) cmdGrow(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	var count int
	td.ScanArgs(t, "n", &count)
	gap := s.Duration(t, td, "gap", time.Second)
	first := len(s.nw.Nodes())
	for range count {
		n := s.nw.AddNode()
		s.attach(t, n)
		if via := s.nw.Nearest(n.Index); via < 0 {
			s.writeErr(b, s.nw.Bootstrap(n.Index))
		} else if err := s.nw.Join(n.Index, via); err != nil {
			fmt.Fprintf(b, "error: join %d via %d: %v\n", n.Index, via, err)
		}
		s.nw.RunFor(gap)
	}
	joined := 0
	for _, n := range s.nw.Nodes()[first:] {
		if n.Status() == core.StatusJoined {
			joined++
		}
	}
	fmt.Fprintf(b, "nodes %d-%d added, %d joined; t=%s", first, len(s.nw.Nodes())-1, joined, s.nw.Now())
}

func (s *Scenario) cmdStatus(b *strings.Builder) {
	groups := map[string][]string{}
	order := []string{"joined", "joining", "idle", "left", "crashed"}
	for _, n := range s.nw.Nodes() {
		st := n.Status().String()
		if !n.Alive() && n.Status() != core.StatusLeft {
			st = "crashed"
		}
		groups[st] = append(groups[st], strconv.Itoa(n.Index))
	}
	for _, st := range order {
		if len(groups[st]) > 0 {
			fmt.Fprintf(b, "%s (%d): %s\n", st, len(groups[st]), strings.Join(groups[st], " "))
		}
	}
}

func (s *Scenario) cmdRoute(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	var from int
	td.ScanArgs(t, "from", &from)
	key := s.Key(t, td)
	m := core.Message{Key: key, App: scenarioApp}
	if td.HasArg("trace") {
		m.Flags = core.FlagTrace
	}
	s.nextMsg++
	k := s.nextMsg
	m.Payload = []byte{byte(k >> 56), byte(k >> 48), byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
	if err := s.nw.RouteFrom(from, m); err != nil {
		fmt.Fprintf(b, "error: %v", err)
		return
	}
	s.nw.RunFor(s.Duration(t, td, "wait", 2*time.Second))
	ds := s.delivered[k]
	delete(s.delivered, k)
	if len(ds) == 0 {
		root, _ := s.nw.Root(key)
		fmt.Fprintf(b, "not delivered (root %s)", s.Name(root.Index))
		return
	}
	for k, d := range ds {
		fmt.Fprintf(b, "delivered at %s hops=%d root=%t\n", s.Name(d.at), d.msg.Hops, d.root)
		if len(d.msg.Path) > 0 {
			names := make([]string, len(d.msg.Path))
			var idx []int
			for i, h := range d.msg.Path {
				names[i] = s.handle(h)
				if n, ok := s.nw.Lookup(h.ID); ok {
					idx = append(idx, n.Index)
				}
			}
			if k == 0 {
				s.lastPath = idx
			}
			fmt.Fprintf(b, "path %s\n", strings.Join(names, " -> "))
		}
	}
}

func (s *Scenario) cmdNextHop(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	var i int
	td.ScanArgs(t, "i", &i)
	key := s.Key(t, td)
	st := s.nw.Node(i).State()
	next, ok := st.NextHop(key, nil)
	l := id.SharedPrefixLen(st.Self.ID, key, st.B())
	var rule string
	switch {
	case st.Leaves.Covers(key):
		rule = "leaf set covers key"
	case func() bool { _, ok := st.Table.Get(l, key.Digit(l, st.B())); return ok }():
		rule = fmt.Sprintf("routing table row %d column %x", l, key.Digit(l, st.B()))
	default:
		rule = fmt.Sprintf("rare case: row %d column %x empty", l, key.Digit(l, st.B()))
	}
	if !ok {
		fmt.Fprintf(b, "%s: deliver here", rule)
		return
	}
	fmt.Fprintf(b, "%s: forward to %s", rule, s.handle(next))
}

type lookupTotals struct {
	issued, delivered, correct, dups int
	hops                             []int
}

func (s *Scenario) cmdLookups(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	var count int
	td.ScanArgs(t, "n", &count)
	var live []int
	for _, n := range s.nw.Nodes() {
		if n.Alive() && n.Status() == core.StatusJoined {
			live = append(live, n.Index)
		}
	}
	if len(live) == 0 {
		b.WriteString("no live nodes")
		return
	}
	rng := s.nw.Rand()
	for range count {
		if _, err := s.lk.Lookup(live[rng.IntN(len(live))], id.Random(rng)); err != nil {
			td.Fatalf(t, "lookup: %v", err)
		}
	}
	s.nw.RunFor(s.Duration(t, td, "wait", 30*time.Second))
	cur := lookupTotals{issued: s.lk.Issued, delivered: s.lk.Delivered, correct: s.lk.Correct, dups: s.lk.Dups, hops: slices.Clone(s.lk.Hops)}
	prev := s.lastLk
	s.lastLk = cur
	hops := make([]int, len(cur.hops))
	sum, max := 0, 0
	for h := range cur.hops {
		hops[h] = cur.hops[h]
		if h < len(prev.hops) {
			hops[h] -= prev.hops[h]
		}
		sum += h * hops[h]
		if hops[h] > 0 {
			max = h
		}
	}
	d := cur.delivered - prev.delivered
	mean := 0.0
	if d > 0 {
		mean = float64(sum) / float64(d)
	}
	fmt.Fprintf(b, "issued %d delivered %d correct %d dups %d\nhops mean %.2f max %d histogram %v",
		cur.issued-prev.issued, d, cur.correct-prev.correct, cur.dups-prev.dups, mean, max, hops[:max+1])
}

// cmdCrash crashes nodes named by index (i=), by position on the last
// traced route (hop=1 is the first node after the origin), as a routing-table
// entry (entry=(node,row,col)), or as the root of a key (root=KEY).
func (s *Scenario) cmdCrash(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	var victims []int
	switch {
	case td.HasArg("hop"):
		var h int
		td.ScanArgs(t, "hop", &h)
		if h < 0 || h >= len(s.lastPath) {
			td.Fatalf(t, "hop %d not on the last traced path %v", h, s.lastPath)
		}
		victims = []int{s.lastPath[h]}
	case td.HasArg("entry"):
		var i, row, col int
		a, _ := td.Arg("entry")
		if len(a.Vals) != 3 {
			td.Fatalf(t, "entry=(node,row,col)")
		}
		a.Scan(t, 0, &i)
		a.Scan(t, 1, &row)
		a.Scan(t, 2, &col)
		e, ok := s.nw.Node(s.checkNode(t, td, i)).State().Table.Get(row, col)
		if !ok {
			fmt.Fprintf(b, "node %d has no entry at row %d column %x", i, row, col)
			return
		}
		n, _ := s.nw.Lookup(e.ID)
		victims = []int{n.Index}
	case td.HasArg("root"):
		var k string
		td.ScanArgs(t, "root", &k)
		root, ok := s.nw.Root(parseHex(t, td, k))
		if !ok {
			td.Fatalf(t, "no live node")
		}
		victims = []int{root.Index}
	default:
		victims = s.Nodes(t, td, "i")
	}
	names := make([]string, len(victims))
	for k, i := range victims {
		s.nw.Crash(i)
		names[k] = s.Name(i)
	}
	fmt.Fprintf(b, "crashed %s", strings.Join(names, " "))
}

func (s *Scenario) cmdPartition(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	// "partition 0,1,2 | 3,4" parses as value-less arguments.
	var groups [][]int
	var cur []int
	for _, a := range td.CmdArgs {
		if a.Key == "|" {
			groups = append(groups, cur)
			cur = nil
			continue
		}
		cur = append(cur, s.parseList(t, td, a.Key)...)
	}
	groups = append(groups, cur)
	s.nw.Partition(groups...)
	for i, g := range groups {
		fmt.Fprintf(b, "group %d: %v\n", i+1, g)
	}
}

func (s *Scenario) cmdTable(i int, b *strings.Builder) {
	tb := s.nw.Node(i).State().Table
	fmt.Fprintf(b, "%s %d entries\n", s.Name(i), tb.Size())
	for r := range tb.Rows() {
		var cells []string
		for c := range tb.Cols() {
			if e, ok := tb.Get(r, c); ok {
				cells = append(cells, fmt.Sprintf("%x=%s", c, s.handle(e.Handle)))
			}
		}
		if len(cells) > 0 {
			fmt.Fprintf(b, "  row %d: %s\n", r, strings.Join(cells, " "))
		}
	}
}

// cmdWhoKnows lists the live nodes that hold node i in each part of their
// routing state.
func (s *Scenario) cmdWhoKnows(i int, b *strings.Builder) {
	x := s.nw.Node(i).Self().ID
	var leaf, table, nbr []string
	for _, n := range s.nw.Nodes() {
		if !n.Alive() || n.Index == i {
			continue
		}
		st := n.State()
		if st.Leaves.Contains(x) {
			leaf = append(leaf, strconv.Itoa(n.Index))
		}
		if st.Table.Contains(x) {
			table = append(table, strconv.Itoa(n.Index))
		}
		if st.Neighbors.Contains(x) {
			nbr = append(nbr, strconv.Itoa(n.Index))
		}
	}
	fmt.Fprintf(b, "%s in leaf sets of [%s]; tables of [%s]; neighbourhood sets of [%s]\n", s.Name(i),
		strings.Join(leaf, " "), strings.Join(table, " "), strings.Join(nbr, " "))
}

func (s *Scenario) cmdCheck(b *strings.Builder) {
	if bad := s.nw.CheckLeafSets(len(s.nw.Nodes())); len(bad) > 0 {
		fmt.Fprintf(b, "leaf sets: %d wrong\n", len(bad))
		for _, l := range bad[:min(len(bad), 3)] {
			fmt.Fprintf(b, "  %s\n", l)
		}
	} else {
		b.WriteString("leaf sets ok\n")
	}
	if err := s.nw.CheckTables(); err != nil {
		fmt.Fprintf(b, "tables: %v\n", err)
	} else {
		b.WriteString("tables ok\n")
	}
	// Beyond simnet's checks: no live node keeps a crashed or departed node
	// in its leaf set once repair has run (reported, not failed, so that a
	// script can show state during a failure).
	stale := 0
	for _, n := range s.nw.Nodes() {
		if !n.Alive() {
			continue
		}
		for _, e := range n.State().Leaves.Members(nil) {
			if x, ok := s.nw.Lookup(e.ID); ok && !x.Alive() {
				stale++
			}
		}
	}
	if stale > 0 {
		fmt.Fprintf(b, "stale leaf entries: %d\n", stale)
	}
}

type totals struct {
	st                     core.Stats
	netSent, lost, rejects uint64
}

func (s *Scenario) cmdStats(b *strings.Builder) {
	var cur totals
	for _, n := range s.nw.Nodes() {
		cur.st.Add(n.Stats())
	}
	cur.netSent, cur.lost, cur.rejects = s.nw.Sent, s.nw.Lost, s.nw.Rejected
	p := s.lastStats
	s.lastStats = cur
	var parts []string
	for k := range cur.st.Sent {
		if d := cur.st.Sent[k] - p.st.Sent[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", core.MsgType(k), d))
		}
	}
	fmt.Fprintf(b, "sent: %s\n", strings.Join(parts, " "))
	fmt.Fprintf(b, "delivered=%d forwarded=%d hop-timeouts=%d reroutes=%d dropped=%d\n",
		cur.st.Delivered-p.st.Delivered, cur.st.Forwarded-p.st.Forwarded, cur.st.HopTimeouts-p.st.HopTimeouts,
		cur.st.Reroutes-p.st.Reroutes, cur.st.Dropped-p.st.Dropped)
	fmt.Fprintf(b, "suspected=%d declared-dead=%d leaf-repairs=%d join-retries=%d refused-joining=%d rejected=%d\n",
		cur.st.Suspected-p.st.Suspected, cur.st.DeclaredDead-p.st.DeclaredDead, cur.st.LeafRepairRequests-p.st.LeafRepairRequests,
		cur.st.JoinRetries-p.st.JoinRetries, cur.st.RefusedWhileJoining-p.st.RefusedWhileJoining, cur.st.Rejected-p.st.Rejected)
	fmt.Fprintf(b, "net: sent=%d lost=%d rejected=%d", cur.netSent-p.netSent, cur.lost-p.lost, cur.rejects-p.rejects)
}

func (s *Scenario) cmdUpdates(t *testing.T, td *datadriven.TestData, b *strings.Builder) {
	ups := s.updates
	s.updates = nil
	if td.HasArg("clear") {
		fmt.Fprintf(b, "%d cleared", len(ups))
		return
	}
	about := -1
	td.MaybeScanArgs(t, "about", &about)
	shown := 0
	for _, u := range ups {
		if about >= 0 && u.h.ID != s.nw.Node(about).Self().ID {
			continue
		}
		verb := "left"
		if u.joined {
			verb = "joined"
		}
		fmt.Fprintf(b, "%s: %s %s\n", s.Name(u.at), s.handle(u.h), verb)
		shown++
	}
	if shown == 0 {
		b.WriteString("none")
	}
}

// Net is the script's network (nil before its net command).
func (s *Scenario) Net() *simnet.Network { return s.nw }

// Name renders node i as the scripts print it: index:first four hex
// digits of its id.
func (s *Scenario) Name(i int) string {
	return fmt.Sprintf("%d:%s", i, s.nw.Node(i).Self().ID.String()[:4])
}

// handle renders a handle as its node's name.
func (s *Scenario) handle(h id.Handle) string {
	if n, ok := s.nw.Lookup(h.ID); ok {
		return s.Name(n.Index)
	}
	return "?:" + h.ID.String()[:4]
}

func (s *Scenario) entries(es []routing.Entry) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = s.handle(e.Handle)
	}
	return strings.Join(out, " ")
}

// Duration reads key=DURATION, or def when the argument is absent.
func (s *Scenario) Duration(t *testing.T, td *datadriven.TestData, key string, def time.Duration) time.Duration {
	if !td.HasArg(key) {
		return def
	}
	var v string
	td.ScanArgs(t, key, &v)
	d, err := time.ParseDuration(v)
	if err != nil {
		td.Fatalf(t, "%s: %v", key, err)
	}
	return d
}

// Key reads key=HEX (right-padded with zeros) or key=nK (node K's id).
func (s *Scenario) Key(t *testing.T, td *datadriven.TestData) id.ID {
	var v string
	td.ScanArgs(t, "key", &v)
	if strings.HasPrefix(v, "n") {
		i, err := strconv.Atoi(v[1:])
		if err != nil || i < 0 || i >= len(s.nw.Nodes()) {
			td.Fatalf(t, "bad node key %q", v)
		}
		return s.nw.Node(i).Self().ID
	}
	return parseHex(t, td, v)
}

func parseHex(t *testing.T, td *datadriven.TestData, v string) id.ID {
	if len(v) > 32 {
		td.Fatalf(t, "id %q longer than 32 hex digits", v)
	}
	x, err := id.Parse(v + strings.Repeat("0", 32-len(v)))
	if err != nil {
		td.Fatalf(t, "id %q: %v", v, err)
	}
	return x
}

// Nodes reads key=3,5, key=(3,5), key=3-7 or key=dead as node indices.
func (s *Scenario) Nodes(t *testing.T, td *datadriven.TestData, key string) []int {
	a, ok := td.Arg(key)
	if !ok {
		td.Fatalf(t, "missing %s=", key)
	}
	var out []int
	for _, v := range a.Vals {
		out = append(out, s.parseList(t, td, v)...)
	}
	return out
}

func (s *Scenario) parseList(t *testing.T, td *datadriven.TestData, v string) []int {
	var out []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "dead" { // every crashed node
			for _, n := range s.nw.Nodes() {
				if !n.Alive() && n.Status() != core.StatusLeft {
					out = append(out, n.Index)
				}
			}
			continue
		}
		if lo, hi, ok := strings.Cut(f, "-"); ok { // a range, 3-7
			a, err1 := strconv.Atoi(lo)
			z, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a > z {
				td.Fatalf(t, "bad node range %q", f)
			}
			for i := a; i <= z; i++ {
				out = append(out, s.checkNode(t, td, i))
			}
			continue
		}
		i, err := strconv.Atoi(f)
		if err != nil {
			td.Fatalf(t, "bad node index %q", f)
		}
		out = append(out, s.checkNode(t, td, i))
	}
	return out
}

func (s *Scenario) checkNode(t *testing.T, td *datadriven.TestData, i int) int {
	if i < 0 || i >= len(s.nw.Nodes()) {
		td.Fatalf(t, "no node %d", i)
	}
	return i
}
