package sim

import (
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/transport"
)

// handleSize is what a node handle takes on the wire in the simulator's
// byte figures: a 16-byte id, a 38-byte Ed25519 peer ID and one QUIC
// address over IPv4, as the codec encodes them. The frames' sizes come
// from the codec itself (transport.ModelFrameSize): the simulator's
// handles carry a node index, not a peer ID, so they cannot be encoded.
// A node that advertises more addresses (TCP and QUIC, IPv4 and IPv6)
// sends larger handles.
var handleSize = transport.ModelHandleSize(ma.StringCast("/ip4/198.51.100.1/udp/4001/quic-v1"))
