package pastry

import (
	"time"

	"github.com/pastrynet/pastry/core"
)

// routeWindow paces the node's own routes (Route's and Lookup's; not
// joins, maintenance or what the node forwards) by its hops in flight: a
// message Route or Lookup queued goes out only while fewer than w hops
// the node has sent are waiting for their ack. w grows by one per w acks and halves on hop timeouts,
// at most once per gap (TCP's additive increase and multiplicative
// decrease), between lo and hi. Under a burst the messages then wait in
// the node's route queue instead of in the overlay's, where their acks
// would be late and every late ack is a hop timeout, a suspected healthy
// neighbour and a copy routed again. Loop goroutine only.
type routeWindow struct {
	w, lo, hi float64
	gap       time.Duration // between two halvings, on the core's clock
	cut       time.Duration // when the window last halved
	cuts      uint64        // halvings so far
	last      core.Load     // at the last observe
}

// Window bounds: the initial window is WithRouteWindow's (default
// defaultRouteWindow); it never falls below minRouteWindow and never
// grows past 64 times the initial one.
const (
	defaultRouteWindow = 16
	minRouteWindow     = 4
)

func newRouteWindow(initial int, gap time.Duration) routeWindow {
	lo := float64(min(initial, minRouteWindow))
	return routeWindow{w: float64(initial), lo: lo, hi: 64 * float64(initial), gap: gap}
}

// observe follows the core's load, l at time now.
func (rw *routeWindow) observe(now time.Duration, l core.Load) {
	acked, timedOut := l.Acked-rw.last.Acked, l.TimedOut-rw.last.TimedOut
	rw.last = l
	switch {
	case timedOut > 0:
		if rw.cuts == 0 || now-rw.cut >= rw.gap {
			rw.w = max(rw.lo, rw.w/2)
			rw.cut = now
			rw.cuts++
		}
	case acked > 0:
		rw.w = min(rw.hi, rw.w+float64(acked)/rw.w)
	}
}

// open reports whether another route may go out at load l.
func (rw *routeWindow) open(l core.Load) bool { return float64(l.InFlight) < rw.w }
