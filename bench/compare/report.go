package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/pastrynet/pastry/bench/report"
)

// Report files.
const (
	ReportFile      = "report.md"
	ResultsFile     = "results.json"
	LookupFigure    = "lookup_latency_cdf.svg"
	RecordFigure    = "record_latency_cdf.svg"
	MessagesFigure  = "messages_per_op.svg"
	FootprintFigure = "footprint.svg"
	PubsubFigure    = "publish_latency_cdf.svg"
)

var (
	pastryColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	kadColor    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	kadColor2   = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	dashes      = []vg.Length{vg.Points(5), vg.Points(3)}
)

// writeReport writes results.json, the figures and report.md into dir.
func writeReport(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	figs := []struct {
		file, title string
		w, h        vg.Length
		plots       func() ([]*plot.Plot, error)
	}{
		{LookupFigure, "Lookup latency CDF: Pastry Node.Lookup, kad-dht GetClosestPeers and FindPeer", 6 * vg.Inch, 4 * vg.Inch,
			func() ([]*plot.Plot, error) {
				return one(cdfPlot("Lookup latency", res, [][2]string{{Pastry, "Node.Lookup"}, {Kad, "GetClosestPeers"}, {Kad, "FindPeer"}}))
			}},
		{RecordFigure, "Put and get latency CDF: Pastry (PAST) and kad-dht", 6 * vg.Inch, 4 * vg.Inch,
			func() ([]*plot.Plot, error) {
				return one(cdfPlot("Record latency", res, [][2]string{{Pastry, "Node.Put"}, {Pastry, "Node.GetRecord"}, {Kad, "PutValue"}, {Kad, "GetValue"}}))
			}},
		{MessagesFigure, "Messages per operation, all nodes, net of idle traffic", 8 * vg.Inch, 4 * vg.Inch,
			func() ([]*plot.Plot, error) { return one(messagesPlot(res)) }},
		{FootprintFigure, "Ready time, set-up messages, RSS and goroutines per node", 10 * vg.Inch, 3.5 * vg.Inch,
			func() ([]*plot.Plot, error) { return footprintPlots(res) }},
	}
	if res.GossipSub != nil {
		figs = append(figs, struct {
			file, title string
			w, h        vg.Length
			plots       func() ([]*plot.Plot, error)
		}{PubsubFigure, "Publish to delivery latency CDF: Scribe and GossipSub", 6 * vg.Inch, 4 * vg.Inch,
			func() ([]*plot.Plot, error) {
				return one(cdfPlot("Publish to delivery", res, [][2]string{{Pastry, "Node.Publish (Scribe)"}, {GossipSub, "Topic.Publish"}}))
			}})
	}
	for _, f := range figs {
		ps, err := f.plots()
		if err != nil {
			return fmt.Errorf("%s: %w", f.file, err)
		}
		svg, err := report.RenderSVG(f.title, f.w, f.h, [][]*plot.Plot{ps})
		if err != nil {
			return fmt.Errorf("%s: %w", f.file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.file), svg, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ReportFile), markdown(res), 0o644)
}

func one(p *plot.Plot, err error) ([]*plot.Plot, error) { return []*plot.Plot{p}, err }

func styleOf(o *OpResult) (color.Color, []vg.Length) {
	switch {
	case o.Protocol == GossipSub:
		return kadColor2, nil
	case o.Protocol == Pastry && (o.Op == "lookup" || o.Op == "put" || o.Op == "publish"):
		return pastryColor, nil
	case o.Protocol == Pastry:
		return pastryColor, dashes
	case o.Call == "FindPeer":
		return kadColor2, nil
	case o.Op == "get":
		return kadColor, dashes
	}
	return kadColor, nil
}

// cdfPlot draws the latency CDFs of the operations named, on a log axis.
func cdfPlot(title string, res *Result, which [][2]string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, %d nodes", title, res.Config.Nodes)
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of operations"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	// The legend sits in a band above the curves.
	p.Y.Min, p.Y.Max = 0, 1+0.09*float64(len(which))
	p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25, Label: ""}, {Value: 0.5, Label: "0.5"}, {Value: 0.75, Label: ""}, {Value: 1, Label: "1"}}
	p.Legend.Top = true
	p.Legend.Left = true
	lo, hi := math.Inf(1), 0.0
	for _, w := range which {
		o := res.findOp(w[0], w[1])
		if o == nil || len(o.LatencyMs) == 0 {
			continue
		}
		s := slices.Sorted(slices.Values(o.LatencyMs))
		xys := make(plotter.XYs, len(s))
		for i, v := range s {
			xys[i] = plotter.XY{X: math.Max(v, 0.01), Y: float64(i+1) / float64(len(s))}
		}
		lo, hi = math.Min(lo, xys[0].X), math.Max(hi, xys[len(xys)-1].X)
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = styleOf(o)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s %s: p50 %s ms, p99 %s ms", o.Protocol, o.Call, ms(o.P50Ms), ms(o.P99Ms)), l)
	}
	if hi > 0 {
		p.X.Min, p.X.Max = lo/1.2, hi*1.2
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// barPlot draws one bar per value, labelled.
func barPlot(title, ylabel string, names []string, vals []float64, colors []color.Color, format string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	w := vg.Points(min(40, 240/float64(max(len(vals), 1))))
	top := 0.0
	for i, v := range vals {
		bc, err := plotter.NewBarChart(plotter.Values{v}, w)
		if err != nil {
			return nil, err
		}
		bc.Color = colors[i]
		bc.LineStyle.Width = 0
		bc.XMin = float64(i)
		p.Add(bc)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(i), Y: v}}, Labels: []string{fmt.Sprintf(format, v)}})
		if err != nil {
			return nil, err
		}
		lb.Offset = vg.Point{X: -vg.Points(8), Y: vg.Points(3)}
		p.Add(lb)
		top = math.Max(top, v)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(vals))-0.4
	p.Y.Min, p.Y.Max = 0, top*1.18+1e-9
	return p, nil
}

func messagesPlot(res *Result) (*plot.Plot, error) {
	var names []string
	var vals []float64
	var cols []color.Color
	for _, o := range res.Ops {
		names = append(names, shortName(o))
		vals = append(vals, o.MsgsPerOp)
		c, _ := styleOf(o)
		cols = append(cols, c)
	}
	p, err := barPlot(fmt.Sprintf("Messages per operation, %d nodes", res.Config.Nodes), "messages", names, vals, cols, "%.1f")
	if err == nil {
		p.X.Tick.Label.Font.Size = vg.Points(8)
	}
	return p, err
}

// shortName labels an operation's bar.
func shortName(o *OpResult) string {
	switch o.Call {
	case "Node.Lookup":
		return "Lookup"
	case "GetClosestPeers":
		return "GetClosest\nPeers"
	case "Node.Put":
		return "Put"
	case "Node.GetRecord":
		return "GetRecord"
	case "Node.Publish (Scribe)":
		return "Scribe\nPublish"
	case "Topic.Publish":
		return "GossipSub\nPublish"
	}
	return o.Call
}

func footprintPlots(res *Result) ([]*plot.Plot, error) {
	ps := res.Protocols
	names := []string{ps[0].Name, ps[1].Name}
	cols := []color.Color{pastryColor, kadColor}
	get := func(f func(*ProtoResult) float64) []float64 { return []float64{f(ps[0]), f(ps[1])} }
	specs := []struct {
		title, y, format string
		f                func(*ProtoResult) float64
	}{
		{"Time until ready", "s", "%.1f", func(p *ProtoResult) float64 { return p.ReadyS }},
		{"Messages to get there", "messages per node", "%.0f", func(p *ProtoResult) float64 { return p.SetupMsgsPerNode }},
		{"RSS added", "MiB per node", "%.2f", func(p *ProtoResult) float64 { return p.AddedPerNode.RSSMiB }},
		{"Goroutines added", "per node", "%.0f", func(p *ProtoResult) float64 { return p.AddedPerNode.Goroutines }},
	}
	var out []*plot.Plot
	for _, s := range specs {
		p, err := barPlot(s.title, s.y, names, get(s.f), cols, s.format)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// ratio is a/b, or 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// markdown writes report.md.
func markdown(res *Result) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p, k := res.proto(Pastry), res.proto(Kad)
	lk, gcp, fp := res.findOp(Pastry, "Node.Lookup"), res.findOp(Kad, "GetClosestPeers"), res.findOp(Kad, "FindPeer")
	c := res.Config

	w("# Pastry and go-libp2p-kad-dht side by side, %d nodes\n\n", c.Nodes)
	w("| | |\n|---|---|\n")
	w("| command | `%s` |\n", res.Command)
	w("| date | %s (finished %s) |\n", res.Started, res.Finished)
	w("| machine | %s, %d cores, %s; load average at start %s |\n", res.CPU, res.Cores, res.MemTotal, res.Load)
	w("| Go, platform | %s, %s |\n", res.Go, res.Platform)
	w("| commit | %s |\n", orDash(res.Revision))
	w("| versions | go-libp2p %s, go-libp2p-kad-dht %s |\n", res.Libp2p, res.Kad)
	w("| hosts | %d in one process, %s on 127.0.0.1 (`transport.NewLoopbackHost`); set up %s |\n", c.Nodes, c.Transport, c.Order)
	w("| Pastry | %s |\n", p.Config)
	w("| kad-dht | %s |\n", k.Config)
	w("| operations | %d lookups; %d GetClosestPeers and %d FindPeer; %d records of %d bytes put and got by each; in %d interleaved rounds; seed %d |\n\n",
		c.Lookups, c.KadLookups, c.KadLookups, c.Records, c.ValueSize, c.Rounds, c.Seed)
	w("The raw results, every latency among them, are in [%s](%s).\n\n", ResultsFile, ResultsFile)

	w("## Summary\n\n")
	w("| | Pastry | kad-dht GetClosestPeers | kad-dht FindPeer |\n|---|---|---|---|\n")
	w("| lookup p50 | %s ms | %s ms | %s ms |\n", ms(lk.P50Ms), ms(gcp.P50Ms), ms(fp.P50Ms))
	w("| lookup p99 | %s ms | %s ms | %s ms |\n", ms(lk.P99Ms), ms(gcp.P99Ms), ms(fp.P99Ms))
	w("| messages per lookup (net of idle) | %.1f | %.1f | %.1f |\n", lk.MsgsPerOp, gcp.MsgsPerOp, fp.MsgsPerOp)
	w("| hops (Pastry) / RPCs started (kad-dht), median | %.0f | %.0f | %.0f |\n", lk.PerP50, gcp.PerP50, fp.PerP50)
	w("| ready after | %.1f s | %.1f s | |\n", p.ReadyS, k.ReadyS)
	w("| messages per node to get there | %.0f | %.0f | |\n", p.SetupMsgsPerNode, k.SetupMsgsPerNode)
	w("| RSS per node, added | %.2f MiB | %.2f MiB | |\n", p.AddedPerNode.RSSMiB, k.AddedPerNode.RSSMiB)
	w("| goroutines per node, added | %.0f | %.0f | |\n\n", p.AddedPerNode.Goroutines, k.AddedPerNode.Goroutines)
	w("Pastry's lookup p50 is **%.0f×** faster than GetClosestPeers' (%.0f× than FindPeer's), with **%.3f** of its messages (%.3f of FindPeer's); p99 %.0f× faster. ",
		ratio(gcp.P50Ms, lk.P50Ms), ratio(fp.P50Ms, lk.P50Ms), ratio(lk.MsgsPerOp, gcp.MsgsPerOp), ratio(lk.MsgsPerOp, fp.MsgsPerOp), ratio(gcp.P99Ms, lk.P99Ms))
	w("The protocol set up first (%s) paid for the hosts' connections, which the second then found open; \"added\" is the process's growth when each was set up (see Footprint).\n\n", res.order()[0])
	w("![lookup latency](%s)\n\n", LookupFigure)

	w("## Operations\n\n")
	w("| protocol | call | count | failed | wrong | p50 ms | p90 ms | p99 ms | mean ms | hops / RPCs (median) | messages/op | bytes/op | messages/op raw |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range res.Ops {
		w("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %.0f | %.1f | %.0f | %.1f |\n", o.Protocol, o.Call, o.Count, o.Failed, o.Wrong,
			ms(o.P50Ms), ms(o.P90Ms), ms(o.P99Ms), ms(o.MeanMs), o.PerP50, o.MsgsPerOp, o.BytesPerOp, o.MsgsPerOpRaw)
	}
	w("\nWrong: a Pastry lookup whose root is not the node numerically closest to the key; a GetClosestPeers whose answer leaves out the XOR-closest peer; ")
	w("a FindPeer that returned another peer; a get that returned another value. ")
	w("Messages per operation are each protocol's messages, all nodes, over the stretches of time in which that operation alone ran, less the protocol's idle rate over that time, per operation ")
	w("(Pastry: every frame its transports sent, acks, pings and pongs among them; kad-dht: its own counters `rpc.outbound.requests` + `rpc.outbound.messages` + `rpc.inbound.messages`, a response per request received). ")
	w("Bytes are those written on each protocol's libp2p streams (counted by a wrapper around every host, the same for both). ")
	w("Node.Put reads the record's current version first (a get, then the write); PutValue finds the 20 closest peers, then stores on them. ")
	w("FindPeer targets are nodes the origin has no connection to (it answers a connected peer at once, with no RPC)")
	if fp.Disconnected > 0 {
		w("; for %d of the %d no such pair was found in 100 tries, and the origin's connection to a random target was closed first (Pastry's streams on it too, which it re-opens when next needed)", fp.Disconnected, fp.Count)
	}
	w(".\n\n")
	for _, o := range res.Ops {
		if len(o.ByType) > 0 {
			w("Pastry's %s, messages per operation by kind, each net of its idle rate: %s.", o.Call, byTypeString(o.ByType))
			if o.Op == "lookup" && o.Count > 0 {
				w(" Answers that came straight back from the root (not routed): %d of %d.", o.AnswersStraight, o.Count)
			}
			w("\n\n")
		}
	}
	for _, o := range res.Ops {
		if len(o.Errors) > 0 {
			w("- %s %s errors (first %d): %q\n", o.Protocol, o.Call, len(o.Errors), o.Errors)
		}
	}
	w("\n![record latency](%s)\n\nIn the figure below, blue bars are Pastry's, red kad-dht's, orange kad-dht's FindPeer and GossipSub's.\n\n![messages per operation](%s)\n\n", RecordFigure, MessagesFigure)

	w("## Set-up and footprint\n\n")
	w("| | Pastry | kad-dht |\n|---|---|---|\n")
	w("| set up | %s | %s |\n", nth(p.Order), nth(k.Order))
	w("| all joined / bootstrapped | %.2f s | %.2f s |\n", p.JoinedS, k.JoinedS)
	w("| ready | %.2f s | %.2f s |\n", p.ReadyS, k.ReadyS)
	w("| ready means | %s | %s |\n", p.Ready, k.Ready)
	w("| messages to get there, per node | %.0f | %.0f |\n", p.SetupMsgsPerNode, k.SetupMsgsPerNode)
	w("| stream bytes to get there, per node | %.0f | %.0f |\n", p.SetupBytesPerNode, k.SetupBytesPerNode)
	w("| idle traffic, per node | %.2f messages/s, %.0f B/s | %.2f messages/s, %.0f B/s |\n", p.IdleMsgsPerNodeS, p.IdleBytesPerNodeS, k.IdleMsgsPerNodeS, k.IdleBytesPerNodeS)
	w("| RSS added, per node | %.2f MiB | %.2f MiB |\n", p.AddedPerNode.RSSMiB, k.AddedPerNode.RSSMiB)
	w("| Go heap added, per node | %.2f MiB | %.2f MiB |\n", p.AddedPerNode.HeapMiB, k.AddedPerNode.HeapMiB)
	w("| goroutines added, per node | %.0f | %.0f |\n", p.AddedPerNode.Goroutines, k.AddedPerNode.Goroutines)
	w("| RSS / heap / goroutines given back on close, per node | %.2f MiB / %.2f MiB / %.0f | %.2f MiB / %.2f MiB / %.0f |\n\n",
		p.RemovedPerNode.RSSMiB, p.RemovedPerNode.HeapMiB, p.RemovedPerNode.Goroutines, k.RemovedPerNode.RSSMiB, k.RemovedPerNode.HeapMiB, k.RemovedPerNode.Goroutines)
	fpt := func(name string, f Footprint) {
		w("| %s | %.1f MiB | %.1f MiB | %d |\n", name, mib(f.RSS), mib(f.Heap), f.Goroutines)
	}
	w("The whole process (after two collections and `debug.FreeOSMemory`, so RSS holds live memory):\n\n")
	w("| moment | RSS | Go heap in use | goroutines |\n|---|---|---|---|\n")
	fpt("before any host", res.Baseline)
	fpt(fmt.Sprintf("%d bare hosts", c.Nodes), res.Hosts)
	for _, name := range res.order() {
		fpt(name+" ready", res.proto(name).Added)
	}
	fpt("both, after the operations", res.AfterOps)
	w("\n\"Added\" is the growth from the row before (per node). The protocol set up first is charged with the connections it opened (each costs RSS and goroutines in both hosts), ")
	w("which the second then reuses; \"given back on close\" is what closing each protocol released at the end, with the connections left open, so it leaves them out for both. ")
	w("Run with `--order kad-first` to charge the connections to kad-dht.\n\n")
	w("![footprint](%s)\n", FootprintFigure)
	if g := res.GossipSub; g != nil {
		sop, gop := res.findOp(Pastry, "Node.Publish (Scribe)"), res.findOp(GossipSub, "Topic.Publish")
		w("\n## Publish to delivery: Scribe and GossipSub\n\n")
		w("GossipSub (%s) was set up third, on every host, after the operations above; half the nodes (%d) subscribe to one topic with both, and 4 other nodes publish %d messages of 64 bytes with each, 10 ms apart, in %d interleaved rounds (a burst of one, its deliveries awaited up to 5 s, then the other).\n\n",
			g.Config, sop.Subscribers, c.Publishes, c.Rounds)
		w("| | Scribe | GossipSub |\n|---|---|---|\n")
		w("| delivered | %d of %d | %d of %d |\n", sop.Delivered, sop.Expected, gop.Delivered, gop.Expected)
		w("| publish failed | %d | %d |\n", sop.Failed, gop.Failed)
		w("| delivery p50 | %s ms | %s ms |\n", ms(sop.P50Ms), ms(gop.P50Ms))
		w("| delivery p90 | %s ms | %s ms |\n", ms(sop.P90Ms), ms(gop.P90Ms))
		w("| delivery p99 | %s ms | %s ms |\n", ms(sop.P99Ms), ms(gop.P99Ms))
		w("| messages per delivery (net of idle) | %.2f | %.2f |\n", sop.MsgsPerDelivery, gop.MsgsPerDelivery)
		w("| stream bytes per delivery (net of idle) | %.0f | %.0f |\n", sop.BytesPerDelivery, gop.BytesPerDelivery)
		w("| idle traffic, per node | %.2f messages/s | %.2f RPCs/s, %.0f B/s |\n", res.proto(Pastry).IdleMsgsPerNodeS, g.IdleMsgsPerNodeS, g.IdleBytesPerNodeS)
		w("| GossipSub ready / RPCs per node to get there | | %.2f s (%s) / %.0f |\n", g.ReadyS, g.Ready, g.SetupMsgsPerNode)
		w("| GossipSub RSS / goroutines added per node | | %.2f MiB / %.0f |\n\n", g.AddedPerNode.RSSMiB, g.AddedPerNode.Goroutines)
		w("GossipSub's messages are the RPCs its routers sent (each a frame: messages, IHAVE, IWANT, GRAFT, PRUNE), from a tracer on every router; Scribe's, its transports' frames as above. ")
		w("Pastry's idle rate was measured before the subscriptions, so Scribe's tree upkeep is counted against its deliveries.\n\n")
		w("![publish latency](%s)\n", PubsubFigure)
	}
	return b.Bytes()
}

func (r *Result) order() []string {
	if r.Config.Order == OrderKadFirst {
		return []string{Kad, Pastry}
	}
	return []string{Pastry, Kad}
}

func nth(i int) string {
	if i == 1 {
		return "first, on bare hosts"
	}
	return "second, on hosts already connected"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
