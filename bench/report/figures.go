package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/pastrynet/pastry/bench/sim"
)

// Figure is one SVG written to the report directory.
type Figure struct {
	File  string // e.g. hops_vs_n.svg
	Title string // the SVG's <title>
}

// Figure files.
const (
	HopsFigure         = "hops_vs_n.svg"
	DistributionFigure = "hop_distribution.svg"
	RDPFigure          = "rdp_vs_n.svg"
	FailureFigure      = "failure.svg"
	ChurnFigure        = "churn.svg"
)

var (
	oursColor   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	oursColor2  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	paperColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	bandColor   = color.NRGBA{R: 214, G: 39, B: 40, A: 60}
	curveColor  = color.Gray{Y: 110}
	dashes      = []vg.Length{vg.Points(5), vg.Points(3)}
	figureWidth = 6 * vg.Inch
)

// figureSpec is a figure the results support, drawn on demand.
type figureSpec struct {
	Figure
	w, h  vg.Length
	plots func() ([][]*plot.Plot, error) // one row of panels
}

// figureSpecs lists the figures res supports, in report order.
func figureSpecs(res *Results) []figureSpec {
	var fs []figureSpec
	if hops := res.byExperiment(ExpHops); len(hops) > 0 {
		largest := hops[len(hops)-1].Result
		fs = append(fs,
			figureSpec{Figure{HopsFigure, "Routing hops vs N: ours and Pastry (2001)"}, figureWidth, 4 * vg.Inch,
				func() ([][]*plot.Plot, error) { return one(hopsPlot(hops)) }},
			figureSpec{Figure{DistributionFigure, fmt.Sprintf("Hop distribution: ours at N=%s, Pastry (2001) at N=%s",
				commas(largest.Nodes), commas(PaperHopDistributionN))}, figureWidth, 4 * vg.Inch,
				func() ([][]*plot.Plot, error) { return one(distributionPlot(largest)) }},
			figureSpec{Figure{RDPFigure, "Relative delay penalty vs N: ours and Pastry (2001)"}, figureWidth, 4 * vg.Inch,
				func() ([][]*plot.Plot, error) { return one(rdpPlot(hops)) }},
		)
	}
	if fail := res.byExperiment(ExpFail); len(fail) > 0 && fail[0].Result.Fail != nil {
		fs = append(fs, figureSpec{Figure{FailureFigure, fmt.Sprintf("%.0f%% node failure: ours and Pastry (2001)", 100*PaperFailFraction)},
			9 * vg.Inch, 4 * vg.Inch,
			func() ([][]*plot.Plot, error) { return failurePlots(fail[0].Result) }})
	}
	if churn := res.byExperiment(ExpChurn); len(churn) > 0 && churn[0].Result.Churn != nil {
		fs = append(fs, figureSpec{Figure{ChurnFigure, "Churn: ours and MSPastry (2004)"}, 10 * vg.Inch, 4 * vg.Inch,
			func() ([][]*plot.Plot, error) { return churnPlots(churn[0].Result) }})
	}
	return fs
}

// writeFigures draws every figure the results support into dir.
func writeFigures(dir string, res *Results) ([]Figure, error) {
	var figs []Figure
	for _, f := range figureSpecs(res) {
		plots, err := f.plots()
		if err != nil {
			return figs, fmt.Errorf("figure %s: %w", f.File, err)
		}
		svg, err := RenderSVG(f.Title, f.w, f.h, plots)
		if err != nil {
			return figs, fmt.Errorf("figure %s: %w", f.File, err)
		}
		if err := writeFile(dir, f.File, svg); err != nil {
			return figs, err
		}
		figs = append(figs, f.Figure)
	}
	return figs, nil
}

func one(p *plot.Plot, err error) ([][]*plot.Plot, error) {
	return [][]*plot.Plot{{p}}, err
}

// RenderSVG draws plots as rows of panels, their axes aligned, on a w x h
// SVG and gives it a <title>, which gonum's SVG canvas does not write.
// The other reports (bench/compare, bench/cluster) draw with it too.
func RenderSVG(title string, w, h vg.Length, plots [][]*plot.Plot) ([]byte, error) {
	c := vgsvg.New(w, h)
	drawPanels(draw.New(c), plots)
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return insertTitle(buf.Bytes(), title)
}

// drawPanels draws plots on dc, aligning the axes of several panels.
func drawPanels(dc draw.Canvas, plots [][]*plot.Plot) {
	if len(plots) == 1 && len(plots[0]) == 1 {
		plots[0][0].Draw(dc)
		return
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Points(24), PadY: vg.Points(12),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	canvases := plot.Align(plots, tiles, dc)
	for i, row := range plots {
		for j, p := range row {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
}

// insertTitle adds <title> as the svg element's first child.
func insertTitle(svg []byte, title string) ([]byte, error) {
	i := bytes.Index(svg, []byte("<svg"))
	if i < 0 {
		return nil, fmt.Errorf("no <svg> element in the canvas output")
	}
	j := bytes.IndexByte(svg[i:], '>')
	if j < 0 {
		return nil, fmt.Errorf("unterminated <svg> element in the canvas output")
	}
	at := i + j + 1
	var t bytes.Buffer
	t.WriteString("\n<title>")
	if err := xml.EscapeText(&t, []byte(title)); err != nil {
		return nil, err
	}
	t.WriteString("</title>")
	return slices.Concat(svg[:at], t.Bytes(), svg[at:]), nil
}

// logAxis puts N on a log scale with a tick at each suite size run.
func logAxis(p *plot.Plot, runs []RunResult) (lo, hi float64) {
	lo, hi = float64(runs[0].Result.Nodes)/1.3, float64(runs[len(runs)-1].Result.Nodes)*1.3
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = lo, hi
	var ticks plot.ConstantTicks
	for _, r := range runs {
		ticks = append(ticks, plot.Tick{Value: float64(r.Result.Nodes), Label: short(r.Result.Nodes)})
	}
	p.X.Tick.Marker = ticks
	p.X.Label.Text = "N (nodes, log scale)"
	return lo, hi
}

func hopsPlot(runs []RunResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Routing hops vs N (b=4, L=16)"
	p.Y.Label.Text = "hops per lookup"
	lo, hi := logAxis(p, runs)
	var mean, p99, mx plotter.XYs
	top := 0.0
	for _, r := range runs {
		n := float64(r.Result.Nodes)
		mean = append(mean, plotter.XY{X: n, Y: r.Result.MeanHops})
		p99 = append(p99, plotter.XY{X: n, Y: float64(r.Result.P99Hops)})
		mx = append(mx, plotter.XY{X: n, Y: float64(r.Result.MaxHops)})
		top = max(top, float64(r.Result.MaxHops))
	}
	var curve plotter.XYs
	for i := range 61 {
		n := lo * math.Pow(hi/lo, float64(i)/60)
		curve = append(curve, plotter.XY{X: n, Y: math.Log(n) / math.Log(16)})
	}
	var paper plotter.XYs
	for _, pt := range paperHops {
		if n := float64(pt.N); n >= lo && n <= hi {
			paper = append(paper, plotter.XY{X: n, Y: pt.Value})
		}
	}
	c, err := plotter.NewLine(curve)
	if err != nil {
		return nil, err
	}
	c.Color, c.Dashes = curveColor, dashes
	line, pts, err := plotter.NewLinePoints(mean)
	if err != nil {
		return nil, err
	}
	line.Color, pts.Color, pts.Shape, pts.Radius = oursColor, oursColor, draw.CircleGlyph{}, vg.Points(3)
	s99, err := scatter(p99, oursColor2, draw.TriangleGlyph{}, 3.5)
	if err != nil {
		return nil, err
	}
	smax, err := scatter(mx, oursColor2, draw.CrossGlyph{}, 3.5)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), c, line, pts, s99, smax)
	p.Legend.Add("ours: mean", line, pts)
	p.Legend.Add("ours: p99", s99)
	p.Legend.Add("ours: max", smax)
	p.Legend.Add("log16 N", c)
	if len(paper) > 0 {
		sp, err := scatter(paper, paperColor, draw.BoxGlyph{}, 4)
		if err != nil {
			return nil, err
		}
		p.Add(sp)
		p.Legend.Add("Pastry 2001: mean (published points)", sp)
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min, p.Y.Max = 0, math.Ceil(max(top, PaperHops100k))+2
	p.Y.Tick.Marker = intTicks(p.Y.Max)
	return p, nil
}

// intTicks marks every integer from 0 to top.
func intTicks(top float64) plot.ConstantTicks {
	var t plot.ConstantTicks
	for v := 0; float64(v) <= top; v++ {
		t = append(t, plot.Tick{Value: float64(v), Label: fmt.Sprint(v)})
	}
	return t
}

func scatter(xys plotter.XYs, c color.Color, shape draw.GlyphDrawer, radius float64) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	s.Color, s.Shape, s.Radius = c, shape, vg.Points(radius)
	return s, nil
}

// hopFractions normalises a hop histogram to fractions of its lookups.
func hopFractions(hist []int) []float64 {
	total := 0
	for _, c := range hist {
		total += c
	}
	f := make([]float64, len(hist))
	for i, c := range hist {
		if total > 0 {
			f[i] = float64(c) / float64(total)
		}
	}
	return f
}

func distributionPlot(r *sim.Result) (*plot.Plot, error) {
	ours := hopFractions(r.HopHistogram)
	n := max(len(ours), len(paperHopDistribution))
	ours = pad(ours, n)
	paper := pad(slices.Clone(paperHopDistribution), n)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Hop distribution: ours at N=%s, paper at N=%s", commas(r.Nodes), commas(PaperHopDistributionN))
	p.X.Label.Text = "hops"
	p.Y.Label.Text = "fraction of lookups"
	w := vg.Points(16)
	bo, err := bars(ours, oursColor, -w/2, w)
	if err != nil {
		return nil, err
	}
	bp, err := bars(paper, paperColor, w/2, w)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), bo, bp)
	p.Legend.Add(fmt.Sprintf("ours (N=%s)", commas(r.Nodes)), bo)
	p.Legend.Add(fmt.Sprintf("Pastry 2001 (N=%s)", commas(PaperHopDistributionN)), bp)
	p.Legend.Top, p.Legend.Left = true, true
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, min(1, max(slices.Max(ours), slices.Max(paper))+0.25)
	return p, nil
}

func pad(v []float64, n int) []float64 {
	for len(v) < n {
		v = append(v, 0)
	}
	return v
}

func bars(v []float64, c color.Color, offset, width vg.Length) (*plotter.BarChart, error) {
	b, err := plotter.NewBarChart(plotter.Values(v), width)
	if err != nil {
		return nil, err
	}
	b.Color, b.Offset, b.LineStyle.Width = c, offset, 0
	return b, nil
}

// valueLabels writes each value above its bar.
func valueLabels(v []float64, format string, offset vg.Length) (*plotter.Labels, error) {
	xy := plotter.XYLabels{}
	for i, y := range v {
		xy.XYs = append(xy.XYs, plotter.XY{X: float64(i), Y: y})
		xy.Labels = append(xy.Labels, fmt.Sprintf(format, y))
	}
	l, err := plotter.NewLabels(xy)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].Font.Size = vg.Points(9)
	}
	l.Offset = vg.Point{X: offset, Y: vg.Points(2)}
	return l, nil
}

func rdpPlot(runs []RunResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Relative delay penalty vs N"
	p.Y.Label.Text = "route delay / direct delay"
	lo, hi := logAxis(p, runs)
	band, err := plotter.NewPolygon(plotter.XYs{
		{X: lo, Y: PaperDistanceRatioLow}, {X: hi, Y: PaperDistanceRatioLow},
		{X: hi, Y: PaperDistanceRatioHigh}, {X: lo, Y: PaperDistanceRatioHigh}})
	if err != nil {
		return nil, err
	}
	band.Color, band.LineStyle.Width = bandColor, 0
	var ratio, rdp plotter.XYs
	top := PaperDistanceRatioHigh
	for _, r := range runs {
		n := float64(r.Result.Nodes)
		ratio = append(ratio, plotter.XY{X: n, Y: r.Result.DistanceRatio})
		rdp = append(rdp, plotter.XY{X: n, Y: r.Result.RDPMean})
		top = max(top, r.Result.DistanceRatio, r.Result.RDPMean)
	}
	lr, pr, err := plotter.NewLinePoints(ratio)
	if err != nil {
		return nil, err
	}
	lr.Color, pr.Color, pr.Shape, pr.Radius = oursColor, oursColor, draw.CircleGlyph{}, vg.Points(3)
	lm, pm, err := plotter.NewLinePoints(rdp)
	if err != nil {
		return nil, err
	}
	lm.Color, lm.Dashes, pm.Color, pm.Shape, pm.Radius = oursColor2, dashes, oursColor2, draw.TriangleGlyph{}, vg.Points(3.5)
	p.Add(band, plotter.NewGrid(), lr, pr, lm, pm)
	p.Legend.Add("ours: distance_ratio (ratio of average delays)", lr, pr)
	p.Legend.Add("ours: rdp_mean (mean of per-route ratios)", lm, pm)
	p.Legend.Add(fmt.Sprintf("Pastry 2001: %.2f to %.2f (ratio of average distances)", PaperDistanceRatioLow, PaperDistanceRatioHigh), band)
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min, p.Y.Max = 1, top+0.35
	return p, nil
}

// pairPlot is one panel: our value as a bar beside a published value (a
// bar named paperName), or beside a published bound (a dashed line).
func pairPlot(title, ylabel string, ours, paper float64, isBound bool, paperName, format string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	w := vg.Points(40)
	bo, err := bars([]float64{ours}, oursColor, 0, w)
	if err != nil {
		return nil, err
	}
	lo, err := valueLabels([]float64{ours}, format, 0)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), bo, lo)
	if isBound {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: paper}, {X: 0.5, Y: paper}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes, l.Width = paperColor, dashes, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(paperName, l)
		p.Legend.Top = true
		p.NominalX("ours")
	} else {
		bp, err := bars([]float64{0, paper}, paperColor, 0, w)
		if err != nil {
			return nil, err
		}
		lp, err := valueLabels([]float64{0, paper}, format, 0)
		if err != nil {
			return nil, err
		}
		lp.Labels[0] = ""
		p.Add(bp, lp)
		p.NominalX("ours", paperName)
	}
	p.Y.Min, p.Y.Max = 0, max(ours, paper)*1.35
	if p.Y.Max == 0 {
		p.Y.Max = 1
	}
	return p, nil
}

func failurePlots(r *sim.Result) ([][]*plot.Plot, error) {
	f := r.Fail
	ours := []float64{f.Before.MeanHops, f.NoRepair.MeanHops, f.AfterRepair.MeanHops}
	paper := []float64{PaperFailHopsBefore, PaperFailHopsNoRepair, PaperFailHopsAfter}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Mean hops, %s of N=%s nodes crashed", commas(f.Failed), commas(r.Nodes))
	p.Y.Label.Text = "hops per lookup"
	w := vg.Points(30)
	bo, err := bars(ours, oursColor, -w/2, w)
	if err != nil {
		return nil, err
	}
	bp, err := bars(paper, paperColor, w/2, w)
	if err != nil {
		return nil, err
	}
	lo, err := valueLabels(ours, "%.2f", -w/2)
	if err != nil {
		return nil, err
	}
	lp, err := valueLabels(paper, "%.2f", w/2)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), bo, bp, lo, lp)
	p.Legend.Add(fmt.Sprintf("ours (N=%s)", commas(r.Nodes)), bo)
	p.Legend.Add(fmt.Sprintf("Pastry 2001 (N=%s)", commas(PaperFailNodes)), bp)
	p.Legend.Top = true
	p.NominalX("before", "no repair", "after repair")
	p.Y.Min, p.Y.Max = 0, max(slices.Max(ours), slices.Max(paper))*1.45
	rp, err := pairPlot("Repair cost", "messages per failed node", f.RepairPerDead, PaperRepairMsgsPerNode, false,
		fmt.Sprintf("Pastry 2001 (N=%s)", commas(PaperFailNodes)), "%.1f")
	if err != nil {
		return nil, err
	}
	return [][]*plot.Plot{{p, rp}}, nil
}

func churnPlots(r *sim.Result) ([][]*plot.Plot, error) {
	c := r.Churn
	lost, err := pairPlot("Lost lookups", "per 100,000 issued", c.LossPer100k, MSPastryLostPer100k, false,
		"MSPastry 2004 (about)", "%.2f")
	if err != nil {
		return nil, err
	}
	ctl, err := pairPlot("Control traffic", "messages per node per second", c.ControlMsgsNS, MSPastryControlMsgsBound, true,
		fmt.Sprintf("MSPastry 2004 bound (< %.1f)", MSPastryControlMsgsBound), "%.3f")
	if err != nil {
		return nil, err
	}
	rdp, err := pairPlot("Delay stretch", "RDP, mean of per-route ratios", c.Stats.RDPMean, MSPastryRDPBound, true,
		fmt.Sprintf("MSPastry 2004 bound (< %.0f)", MSPastryRDPBound), "%.2f")
	if err != nil {
		return nil, err
	}
	return [][]*plot.Plot{{lost, ctl, rdp}}, nil
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
