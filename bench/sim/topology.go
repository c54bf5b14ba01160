package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/pastrynet/pastry/simnet"
)

// Model is a simnet.Topology that can also embed each node as a point, so
// that a spatial index can find nearby nodes. Nearness in the embedding
// must track nearness in delay.
type Model interface {
	simnet.Topology
	Point(i int) [3]float64
	Name() string
}

// NewModel returns the named model: "plane", "sphere" or "transit-stub".
func NewModel(name string, rng *rand.Rand) (Model, error) {
	switch name {
	case "plane":
		return &plane{Plane: simnet.NewPlane()}, nil
	case "sphere":
		return &sphere{MaxDelay: 150 * time.Millisecond}, nil
	case "transit-stub":
		return newTransitStub(rng), nil
	}
	return nil, fmt.Errorf("unknown topology %q: want plane, sphere or transit-stub", name)
}

// plane is the Pastry paper's 1000 x 1000 Euclidean plane.
type plane struct{ *simnet.Plane }

func (p *plane) Name() string { return "plane" }
func (p *plane) Point(i int) [3]float64 {
	xy := p.XY(i)
	return [3]float64{xy[0], xy[1], 0}
}

// sphere places nodes uniformly on a sphere (FreePastry's SphereNetwork);
// the delay is proportional to the great-circle distance, MaxDelay between
// antipodes.
type sphere struct {
	MaxDelay time.Duration
	pts      [][3]float32
}

func (s *sphere) Name() string { return "sphere" }

func (s *sphere) Place(i int, rng *rand.Rand) {
	for len(s.pts) <= i {
		s.pts = append(s.pts, [3]float32{})
	}
	z := 2*rng.Float64() - 1
	phi := 2 * math.Pi * rng.Float64()
	r := math.Sqrt(1 - z*z)
	s.pts[i] = [3]float32{float32(r * math.Cos(phi)), float32(r * math.Sin(phi)), float32(z)}
}

func (s *sphere) Point(i int) [3]float64 {
	p := s.pts[i]
	return [3]float64{1000 * float64(p[0]), 1000 * float64(p[1]), 1000 * float64(p[2])}
}

func (s *sphere) Delay(a, b int) time.Duration {
	p, q := s.pts[a], s.pts[b]
	dot := float64(p[0]*q[0] + p[1]*q[1] + p[2]*q[2])
	angle := math.Acos(max(-1, min(1, dot)))
	return time.Duration(angle / math.Pi * float64(s.MaxDelay))
}

// transitStub is a GT-ITM style hierarchy: transit domains scattered over a
// plane, stub domains hanging off transit routers, hosts clustered in stub
// domains. Delay: within a stub, a small LAN delay; otherwise host -> stub
// gateway -> transit router -> (transit core, by distance) -> transit
// router -> stub gateway -> host.
type transitStub struct {
	transit  [][2]float64 // transit router positions
	stubs    []stub
	host     []int32       // stub of each host
	LAN      time.Duration // delay within a stub domain
	Access   time.Duration // stub gateway to its transit router
	PerUnit  time.Duration // transit core delay per unit of distance
	Gateways time.Duration // host to its stub gateway
}

type stub struct {
	transit int
	pos     [2]float64
}

func newTransitStub(rng *rand.Rand) *transitStub {
	ts := &transitStub{LAN: time.Millisecond, Access: 5 * time.Millisecond,
		PerUnit: 100 * time.Microsecond, Gateways: time.Millisecond}
	const domains, routersPerDomain, stubsPerRouter = 10, 8, 12
	for range domains {
		cx, cy := rng.Float64()*1000, rng.Float64()*1000
		for range routersPerDomain {
			ts.transit = append(ts.transit, [2]float64{cx + rng.NormFloat64()*30, cy + rng.NormFloat64()*30})
		}
	}
	for t, pos := range ts.transit {
		for range stubsPerRouter {
			// The embedding follows the delay: a stub sits at its transit
			// router (delay between stubs is set by their routers), and a
			// host at its stub, so embedding order matches delay order.
			ts.stubs = append(ts.stubs, stub{transit: t, pos: [2]float64{pos[0] + rng.NormFloat64()*0.2, pos[1] + rng.NormFloat64()*0.2}})
		}
	}
	return ts
}

func (ts *transitStub) Name() string { return "transit-stub" }

func (ts *transitStub) Place(i int, rng *rand.Rand) {
	for len(ts.host) <= i {
		ts.host = append(ts.host, 0)
	}
	ts.host[i] = int32(rng.IntN(len(ts.stubs)))
}

func (ts *transitStub) Point(i int) [3]float64 {
	s := ts.stubs[ts.host[i]]
	return [3]float64{s.pos[0], s.pos[1], 0} // hosts of one stub coincide: all are 1 LAN delay apart
}

func (ts *transitStub) Delay(a, b int) time.Duration {
	sa, sb := ts.host[a], ts.host[b]
	if sa == sb {
		return ts.LAN
	}
	d := 2*ts.Gateways + 2*ts.Access
	ta, tb := ts.transit[ts.stubs[sa].transit], ts.transit[ts.stubs[sb].transit]
	return d + time.Duration(math.Hypot(ta[0]-tb[0], ta[1]-tb[1])*float64(ts.PerUnit))
}

// grid is a uniform-grid spatial index over a model's embedding.
type grid struct {
	cell  float64
	lo    [3]float64
	dims  [3]int
	cells map[[3]int32][]int32
	model Model
}

func newGrid(m Model, expected int) *grid {
	lo, hi := [3]float64{0, 0, 0}, [3]float64{1001, 1001, 1}
	if m.Name() == "sphere" {
		lo, hi = [3]float64{-1001, -1001, -1001}, [3]float64{1001, 1001, 1001}
	}
	// About four points per occupied cell on a 2-D surface.
	area := (hi[0] - lo[0]) * (hi[1] - lo[1])
	if m.Name() == "sphere" {
		area = 4 * math.Pi * 1000 * 1000
	}
	cell := math.Max(1, math.Sqrt(area*4/float64(max(expected, 1))))
	g := &grid{cell: cell, lo: lo, cells: map[[3]int32][]int32{}, model: m}
	for k := range 3 {
		g.dims[k] = int(math.Ceil((hi[k]-lo[k])/cell)) + 1
	}
	return g
}

func (g *grid) key(p [3]float64) [3]int32 {
	var k [3]int32
	for i := range 3 {
		k[i] = int32(math.Floor((p[i] - g.lo[i]) / g.cell))
	}
	return k
}

func (g *grid) add(i int) {
	k := g.key(g.model.Point(i))
	g.cells[k] = append(g.cells[k], int32(i))
}

// nearest returns the node closest to i by delay among those ok accepts,
// searching shells of cells outward until no closer point can exist; -1
// if none.
func (g *grid) nearest(i int, ok func(j int) bool) int {
	p := g.model.Point(i)
	c := g.key(p)
	best, bestD := -1, math.Inf(1)
	maxR := max(g.dims[0], g.dims[1], g.dims[2])
	for r := 0; r <= maxR; r++ {
		// Points in shell r are at embedding distance >= (r-1)*cell.
		if best >= 0 && float64(r-1)*g.cell > bestD {
			break
		}
		g.shell(c, r, func(j int32) {
			if int(j) == i || !ok(int(j)) {
				return
			}
			q := g.model.Point(int(j))
			d := math.Sqrt((p[0]-q[0])*(p[0]-q[0]) + (p[1]-q[1])*(p[1]-q[1]) + (p[2]-q[2])*(p[2]-q[2]))
			if d < bestD || d == bestD && int(j) < best {
				best, bestD = int(j), d
			}
		})
	}
	return best
}

// shell visits the points in cells at Chebyshev distance exactly r from c.
func (g *grid) shell(c [3]int32, r int, visit func(int32)) {
	zr := r
	if g.dims[2] <= 2 { // a planar embedding: one layer of cells
		zr = 0
	}
	for dx := -r; dx <= r; dx++ {
		for dy := -r; dy <= r; dy++ {
			for dz := -zr; dz <= zr; dz++ {
				if max(abs(dx), abs(dy), abs(dz)) != r {
					continue
				}
				for _, j := range g.cells[[3]int32{c[0] + int32(dx), c[1] + int32(dy), c[2] + int32(dz)}] {
					visit(j)
				}
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Linker is implemented by models with a physical network under the
// delays (transit-stub): Links visits the links of the route between
// hosts a and b, each named by a number unique to the link, for link
// stress (Scribe paper, section 4).
type Linker interface {
	Links(a, b int, visit func(link uint64))
}

// Links: a host's LAN link to its stub, the stub's access link to its
// transit router, and the transit core between two routers, taken as one
// link (the model has no routers between them).
func (ts *transitStub) Links(a, b int, visit func(link uint64)) {
	if a == b {
		return
	}
	const host, access, core = 1 << 60, 2 << 60, 3 << 60
	sa, sb := ts.host[a], ts.host[b]
	visit(host | uint64(a))
	if sa != sb {
		visit(access | uint64(sa))
		if ta, tb := ts.stubs[sa].transit, ts.stubs[sb].transit; ta != tb {
			visit(core | uint64(min(ta, tb))<<20 | uint64(max(ta, tb)))
		}
		visit(access | uint64(sb))
	}
	visit(host | uint64(b))
}
