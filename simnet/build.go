package simnet

import (
	"fmt"
	"time"

	"github.com/pastrynet/pastry/core"
)

// Nearest returns the live joined node closest to node i by delay, or -1.
// It scans every node: fine for tests; the simulator uses a spatial index.
func (nw *Network) Nearest(i int) int {
	best, bestD := -1, time.Duration(1<<62)
	for _, n := range nw.nodes {
		if n.Index == i || !n.alive || n.Status() != core.StatusJoined {
			continue
		}
		if d := nw.opts.Topology.Delay(i, n.Index); d < bestD {
			best, bestD = n.Index, d
		}
	}
	return best
}

// Grow adds count nodes one at a time, each joining through the nearest
// joined node, and runs gap of virtual time after each join. If the network
// is empty the first node bootstraps the overlay. Every new node is
// attached to l if l is not nil.
func (nw *Network) Grow(count int, gap time.Duration, l *Lookups) error {
	for range count {
		n := nw.AddNode()
		if l != nil {
			if err := l.Attach(n); err != nil {
				return err
			}
		}
		via := nw.Nearest(n.Index)
		if via < 0 {
			if err := nw.Bootstrap(n.Index); err != nil {
				return err
			}
		} else if err := nw.Join(n.Index, via); err != nil {
			return fmt.Errorf("join node %d via %d: %w", n.Index, via, err)
		}
		nw.RunFor(gap)
	}
	return nil
}
