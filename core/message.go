package core

import (
	"fmt"

	"github.com/pastrynet/pastry/id"
)

// MsgType is a message's kind. Wire values: append only, never renumber.
type MsgType uint8

const (
	MsgInvalid     MsgType = iota
	MsgRoute               // a routed application message (Key, App, Payload)
	MsgRouteAck            // per-hop acknowledgement of Seq
	MsgJoin                // a routed join for Key = Origin.ID
	MsgJoinRows            // to a joiner: routing-table rows (Handles)
	MsgJoinReply           // to a joiner, from the root: its leaf set (Handles)
	MsgAnnounce            // a new node announcing itself
	MsgAnnounceAck         // reply to an announcement: the leaf set (Handles)
	MsgHeartbeat           // to an immediate neighbour: the leaf set (Handles)
	MsgProbe               // liveness probe, nonce Seq
	MsgProbeReply          // reply to a probe, nonce Seq
	MsgLeafRequest         // ask for the leaf set
	MsgLeafReply           // the leaf set (Handles)
	MsgRowRequest          // ask for routing-table row Row
	MsgRowReply            // routing-table row Row (Handles)
	MsgLeave               // the sender is leaving the overlay
	MsgSuspect             // the sender found Subject failed; check it yourself
	MsgDirect              // an application message to one node (App, Payload), acknowledged by Seq
	msgTypeCount
)

var msgNames = [...]string{"invalid", "route", "route-ack", "join", "join-rows", "join-reply",
	"announce", "announce-ack", "heartbeat", "probe", "probe-reply", "leaf-request",
	"leaf-reply", "row-request", "row-reply", "leave", "suspect", "direct"}

func (t MsgType) String() string {
	if t < msgTypeCount {
		return msgNames[t]
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Valid reports whether t is a known type.
func (t MsgType) Valid() bool { return t > MsgInvalid && t < msgTypeCount }

// Flags qualify a message.
type Flags uint8

const (
	// FlagJoining marks a sender that has not finished joining: receivers
	// do not admit it to their routing state yet.
	FlagJoining Flags = 1 << iota
	// FlagWantReply asks an announcement's receiver to reply, so that the
	// sender learns it is alive.
	FlagWantReply
	// FlagTrace asks every hop of a routed message to append itself to Path.
	FlagTrace
	// FlagWantRow asks an announcement's receiver for its routing-table row
	// Row: the joiner's locality pass (Pastry paper 2.5, PNS).
	FlagWantRow
	// FlagProbe on an announcement's reply (AnnounceAck, RowReply) is a
	// probe riding on it: the receiver answers with a ProbeReply for Seq,
	// as to a Probe. The announcer has to answer one before it is admitted
	// (see Admission in maintain.go); this saves the probe's own message.
	FlagProbe
	// FlagSecure on a routed message asks every hop to choose the next
	// hop from its constrained routing table (Config.ConstrainedTable;
	// routing.ModeConstrained) and its leaf set: secure routing. A node
	// without a constrained table routes it as any other.
	FlagSecure
	// FlagNoAck on a direct message (Endpoint.SendUnacked) asks its
	// receiver not to acknowledge it: the sender keeps no state for it.
	FlagNoAck
)

// AppID names an application multiplexed over one node.
type AppID uint32

// Message is everything nodes say to each other: one flat struct, as in
// etcd's raftpb.Message, so the simulator passes it by value and the wire
// codec has one shape. Which fields matter depends on Type.
//
// Ownership: slices in a message handed to Step, or taken from Ready, are
// shared and must not be modified by the receiver.
type Message struct {
	Type  MsgType
	Flags Flags
	From  id.Handle // the sender of this hop; the transport vouches for it
	To    id.Handle // the receiver of this hop
	Seq   uint64    // per-hop ack id (Route, Join), probe nonce (Probe)

	// Routed messages (Route, Join).
	Key     id.ID
	Origin  id.Handle // the node that first sent it
	App     AppID
	Payload []byte
	Hops    uint16      // overlay hops taken so far
	Path    []id.Handle // hops so far, with FlagTrace
	// Sent is the origin's clock when the message was routed, echoed back by
	// probe replies; drivers may use it for latency figures.
	Sent int64
	// Copy tells copies of one routed message apart: a node that re-routes
	// or resends a message gives the new copy a new Copy (see dedupe.go).
	Copy uint32

	// State exchange.
	// Row is the routing-table row of a RowRequest or RowReply (and of an
	// announcement with FlagWantRow); in a Heartbeat it is how many of
	// Handles, from the first, are the sender's right side (the rest are
	// its left side), so that receivers can compare side by side.
	Row     int16
	Handles []id.Handle // JoinRows, JoinReply, AnnounceAck, Heartbeat, LeafReply, RowReply
	Subject id.Handle   // Suspect
}

func (m *Message) String() string {
	return fmt.Sprintf("%s %s->%s seq=%d key=%s hops=%d handles=%d", m.Type, m.From, m.To, m.Seq, m.Key.Short(), m.Hops, len(m.Handles))
}
