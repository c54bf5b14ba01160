package pastry

import (
	"math"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Info is a snapshot of a node's identity and routing state, read without
// stopping the node.
type Info struct {
	NodeID id.ID
	PeerID peer.ID
	Addrs  []ma.Multiaddr
	Status core.Status
	// Left and Right are the leaf set's sides, closest first.
	Left, Right []id.Handle
	// Rows holds the filled routing-table entries of each row up to the
	// last non-empty one.
	Rows         [][]id.Handle
	TableEntries int
	Neighbors    []id.Handle
	// NetworkSize estimates the overlay's size from the leaf set's density:
	// L nodes over the arc they span, scaled to the ring.
	NetworkSize float64
}

// Info returns a snapshot of the node's state.
func (n *Node) Info() Info {
	st := n.State()
	inf := Info{NodeID: n.self.ID, PeerID: peer.ID(n.self.Addr), Status: n.Status()}
	if n.host != nil {
		inf.Addrs = n.host.Addrs()
	}
	handles := func(es []routing.Entry) []id.Handle {
		out := make([]id.Handle, len(es))
		for i, e := range es {
			out[i] = e.Handle
		}
		return out
	}
	inf.Left, inf.Right = handles(st.Leaves.Left()), handles(st.Leaves.Right())
	inf.Neighbors = handles(st.Neighbors.Members())
	for r := range st.Table.Rows() {
		row := handles(st.Table.Row(r, nil))
		inf.TableEntries += len(row)
		inf.Rows = append(inf.Rows, row)
	}
	for len(inf.Rows) > 0 && len(inf.Rows[len(inf.Rows)-1]) == 0 {
		inf.Rows = inf.Rows[:len(inf.Rows)-1]
	}
	inf.NetworkSize = networkSize(n.self.ID, st.Leaves)
	return inf
}

// networkSize estimates N from the leaf set: with k distinct leaves
// spanning an arc of length a (in ids), N ~ k x 2^128 / a. A leaf set that
// covers the ring knows every node.
func networkSize(self id.ID, ls *routing.LeafSet) float64 {
	l, r := ls.Left(), ls.Right()
	if !ls.Complete() || ls.Len() < len(l)+len(r) { // sides overlap: all known
		return float64(ls.Len() + 1)
	}
	arc := id.Clockwise(l[len(l)-1].ID, r[len(r)-1].ID)
	a := float64(arc.Hi)*math.Ldexp(1, 64) + float64(arc.Lo)
	if a <= 0 {
		return float64(ls.Len() + 1)
	}
	return math.Round(float64(len(l)+len(r)) * math.Ldexp(1, 128) / a)
}
