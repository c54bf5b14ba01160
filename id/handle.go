package id

// Handle names a node: its nodeId and an opaque transport address. In the
// libp2p runtime Addr holds the peer ID (addresses live in the peerstore);
// in the simulator it is the node's index. Handles are values: copying one
// shares the address string.
type Handle struct {
	ID   ID
	Addr string
}

// String is the short id, for logs.
func (h Handle) String() string { return h.ID.Short() }
