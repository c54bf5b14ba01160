package sim

import "github.com/pastrynet/pastry/core"

// Estimated wire sizes, from the protobuf schema's fields: a node handle is
// a 16-byte id, a 38-byte Ed25519 peer ID and one ~10-byte multiaddr, plus
// tags; a frame adds a length prefix. The simulator does not link the
// libp2p codec, so bytes per node per second are an estimate (within a few
// percent of the encoded size for these message shapes).
const (
	handleBytes = 16 + 38 + 10 + 6
	frameBytes  = 3 + 2 // length prefix, type and flags
)

func wireSize(m *core.Message) int {
	n := frameBytes + 2*handleBytes // From, To
	if m.Seq != 0 {
		n += 9
	}
	switch m.Type {
	case core.MsgRoute, core.MsgJoin:
		n += 18 + handleBytes + 5 + len(m.Payload) + 3 + 9 + len(m.Path)*handleBytes
	case core.MsgSuspect:
		n += handleBytes
	case core.MsgRowRequest, core.MsgRowReply:
		n += 3
	}
	return n + len(m.Handles)*handleBytes
}
