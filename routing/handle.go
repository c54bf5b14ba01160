package routing

import (
	"math"

	"github.com/pastrynet/pastry/core/id"
)

// Handle names a node: its nodeId and an opaque transport address. In the
// libp2p runtime Addr holds the peer ID (addresses live in the peerstore);
// in the simulator it is empty and the id alone names the node. Handles are
// values: copying one shares the address string.
type Handle struct {
	ID   id.ID
	Addr string
}

// String is the short id, for logs.
func (h Handle) String() string { return h.ID.Short() }

// UnknownProximity marks a node whose proximity has not been measured; it
// loses every comparison against a measured one.
const UnknownProximity = math.MaxUint32

// Entry is a handle in routing state, with the proximity it was chosen by:
// the round-trip time in microseconds (smaller is closer), or
// UnknownProximity.
type Entry struct {
	Handle
	Prox uint32
}
