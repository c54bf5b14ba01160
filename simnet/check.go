package simnet

import (
	"fmt"
	"slices"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// TrueLeaves returns the leaf set node x should have among the live joined
// nodes: the half closest counter-clockwise (left) and clockwise (right),
// closest first.
func (nw *Network) TrueLeaves(x id.ID) (left, right []id.ID) {
	live := nw.Live()
	half := nw.opts.Node.LeafSetSize / 2
	n := len(live)
	i, found := slices.BinarySearchFunc(live, x, func(a, b id.ID) int { return a.Cmp(b) })
	others := n
	if found {
		others--
	}
	k := min(half, others)
	for j := 0; len(right) < k; j++ {
		y := live[(i+j)%n]
		if y != x {
			right = append(right, y)
		}
	}
	for j := 1; len(left) < k; j++ {
		y := live[(i-j+n*2)%n]
		if y != x {
			left = append(left, y)
		}
	}
	return left, right
}

func ids(es []routing.Entry) []id.ID {
	out := make([]id.ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// CheckLeafSets compares every live joined node's leaf set with the truth
// and describes up to max differences.
func (nw *Network) CheckLeafSets(max int) []string {
	var bad []string
	for _, n := range nw.nodes {
		if !n.alive || n.Status() != core.StatusJoined {
			continue
		}
		wl, wr := nw.TrueLeaves(n.Self().ID)
		gl, gr := ids(n.State().Leaves.Left()), ids(n.State().Leaves.Right())
		if !slices.Equal(wl, gl) || !slices.Equal(wr, gr) {
			if len(bad) < max {
				bad = append(bad, fmt.Sprintf("node %d %s: left %v want %v; right %v want %v",
					n.Index, n.Self().ID.Short(), short(gl), short(wl), short(gr), short(wr)))
			} else {
				bad = append(bad, "...")
				return bad
			}
		}
	}
	return bad
}

// CheckTables verifies the routing-table prefix invariant on every live
// node: row r, column d holds a node sharing exactly r digits with the owner
// whose digit r is d.
func (nw *Network) CheckTables() error {
	for _, n := range nw.nodes {
		if !n.alive {
			continue
		}
		self, b := n.Self().ID, n.Config().B
		var err error
		n.State().Table.ForEach(func(r, c int, e routing.Entry) bool {
			if id.SharedPrefixLen(self, e.ID, b) != r || e.ID.Digit(r, b) != c {
				err = fmt.Errorf("node %d: entry %s at row %d column %d", n.Index, e.ID, r, c)
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func short(xs []id.ID) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.Short()[:4]
	}
	return out
}
