package cluster

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/pastrynet/pastry/bench/report"
)

// Figure files.
const (
	LatencyFigure  = "lookup_latency_cdf.svg"
	RecoveryFigure = "recovery.svg"
)

// WriteReport writes report.json, report.md and the SVG figures into dir.
func (r *Report) WriteReport(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var figs []string
	if svg, err := latencyCDF(r); err != nil {
		return err
	} else if svg != nil {
		if err := os.WriteFile(filepath.Join(dir, LatencyFigure), svg, 0o644); err != nil {
			return err
		}
		figs = append(figs, LatencyFigure)
	}
	if svg, err := recoveryPlot(r); err != nil {
		return err
	} else if svg != nil {
		if err := os.WriteFile(filepath.Join(dir, RecoveryFigure), svg, 0o644); err != nil {
			return err
		}
		figs = append(figs, RecoveryFigure)
	}
	var js, md bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		return err
	}
	if err := r.WriteMarkdown(&md, figs); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), js.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), md.Bytes(), 0o644)
}

var (
	blue = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	red  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// svgOf draws p on a 6 x 4 inch SVG titled like the plot.
func svgOf(p *plot.Plot) ([]byte, error) {
	return report.RenderSVG(p.Title.Text, 6*vg.Inch, 4*vg.Inch, [][]*plot.Plot{{p}})
}

// latencyCDF is the CDF of the main workload's lookup latencies; nil
// when there are none.
func latencyCDF(r *Report) ([]byte, error) {
	var lat []float64
	for _, s := range r.LookupSamples {
		if s.Err == "" {
			lat = append(lat, s.LatencyMS)
		}
	}
	if len(lat) == 0 {
		return nil, nil
	}
	slices.Sort(lat)
	xys := make(plotter.XYs, len(lat))
	for i, v := range lat {
		xys[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(lat))}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Lookup latency CDF: %d nodes, %d lookups", r.Nodes, len(lat))
	p.X.Label.Text = "latency (ms, as the origin node measured it)"
	p.Y.Label.Text = "fraction of lookups"
	p.Y.Min, p.Y.Max = 0, 1
	line, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	line.Color = blue
	line.Width = vg.Points(1.5)
	p.Add(line, plotter.NewGrid())
	return svgOf(p)
}

// recoveryPlot is the share of correct lookups per round after each
// fault; nil without faults.
func recoveryPlot(r *Report) ([]byte, error) {
	if len(r.Faults) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Correct lookups per round after each fault"
	p.X.Label.Text = "seconds after the fault (a partition: after the heal; before it, negative)"
	p.Y.Label.Text = "correct / lookups"
	p.Y.Min, p.Y.Max = 0, 1.05
	colors := []color.Color{red, blue}
	for k, f := range r.Faults {
		var xys plotter.XYs
		off := 0.0
		if f.HeldS > 0 {
			off = -f.HeldS
		}
		for _, x := range f.Rounds {
			if x.Lookups == 0 {
				continue
			}
			at := x.AtS
			if x.Partitioned {
				at += off
			}
			xys = append(xys, plotter.XY{X: at, Y: float64(x.Correct) / float64(x.Lookups)})
		}
		if len(xys) == 0 {
			continue
		}
		lp, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		lp.Color, pts.Color = colors[k%len(colors)], colors[k%len(colors)]
		p.Add(lp, pts)
		p.Legend.Add(fmt.Sprintf("%s of %.0f%%", f.Kind, f.Percent), lp)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = false, false
	return svgOf(p)
}
