package simnet

import (
	"math"
	"math/rand/v2"
	"time"
)

// Topology places nodes and gives the one-way delay between them.
// Proximity seen by the nodes is the round trip, twice the delay.
type Topology interface {
	// Place gives node i (numbered from 0, in order) a location drawn
	// from rng.
	Place(i int, rng *rand.Rand)
	// Delay is the one-way delay from node a to node b.
	Delay(a, b int) time.Duration
}

// Constant is a topology where every link has the same delay.
type Constant time.Duration

func (Constant) Place(int, *rand.Rand)          {}
func (c Constant) Delay(a, b int) time.Duration { return time.Duration(c) }

// Plane places nodes uniformly in a Size x Size square (the Pastry paper's
// setup); the delay between two nodes is their Euclidean distance times
// PerUnit, plus Base.
type Plane struct {
	Size    float64
	PerUnit time.Duration
	Base    time.Duration
	xy      [][2]float32
}

// NewPlane is the paper's 1000 x 1000 plane at 0.1 ms per unit of
// distance (so delays run up to about 141 ms).
func NewPlane() *Plane { return &Plane{Size: 1000, PerUnit: 100 * time.Microsecond} }

func (p *Plane) Place(i int, rng *rand.Rand) {
	for len(p.xy) <= i {
		p.xy = append(p.xy, [2]float32{})
	}
	p.xy[i] = [2]float32{float32(rng.Float64() * p.Size), float32(rng.Float64() * p.Size)}
}

// XY is node i's position.
func (p *Plane) XY(i int) [2]float64 { return [2]float64{float64(p.xy[i][0]), float64(p.xy[i][1])} }

// Distance is the Euclidean distance between a and b.
func (p *Plane) Distance(a, b int) float64 {
	dx, dy := float64(p.xy[a][0]-p.xy[b][0]), float64(p.xy[a][1]-p.xy[b][1])
	return math.Sqrt(dx*dx + dy*dy)
}

func (p *Plane) Delay(a, b int) time.Duration {
	return p.Base + time.Duration(p.Distance(a, b)*float64(p.PerUnit))
}
