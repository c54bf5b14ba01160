package core

import (
	"time"

	"github.com/pastrynet/pastry/id"
)

// Environment is what a node needs from the world besides messages and
// time. The simulator derives both from its seed and topology; the runtime
// from a crypto-seeded generator and measured round-trip times. Methods are
// called only from inside the node's inputs, never concurrently.
type Environment interface {
	// Uint64 returns a uniformly random value.
	Uint64() uint64
	// Proximity returns the round-trip time to h in microseconds (smaller is
	// closer), or routing.UnknownProximity if it has not been measured.
	Proximity(h id.Handle) uint32
}

// ProximityCache is implemented by environments for which Proximity
// costs a measurement (the runtime: a ping in the background).
// KnownProximity returns the proximity measured already, or
// routing.UnknownProximity, and starts nothing. A node asks it about a
// stranger that sent it a message unasked (probeStranger): the origins and
// hops of the routed traffic a node sees are mostly strangers, and
// measuring each would cost a ping per new pair of nodes only to compare
// it with the occupant of a routing-table slot that is full already. Such
// a stranger is probed, then measured, only when the leaf set or an empty
// table slot would take it, or when its proximity is known and earns it a
// place. The simulator's proximity costs nothing, and its environment does
// not implement this. Called only from inside the node's inputs, never
// concurrently.
type ProximityCache interface {
	KnownProximity(h id.Handle) uint32
}

// Connectivity is implemented by environments whose transport pays to
// open a connection (libp2p: a dial and a security handshake), so that
// applications can prefer paths that need none (Endpoint.Connected).
// Called only from inside the node's inputs, never concurrently.
type Connectivity interface {
	// Connected reports whether a message to h goes out without opening a
	// connection first. A choice of path only: liveness is the protocol's
	// (acks and probes).
	Connected(h id.Handle) bool
}

// Signer is implemented by environments that hold the node's private key
// (the runtime: the host's Ed25519 key), so that an application can sign
// what another node must be able to check this node sent even when it
// arrives through others (Endpoint.Sign, Endpoint.Verify). Called only
// from inside the node's inputs, never concurrently.
type Signer interface {
	// Sign signs data with this node's key.
	Sign(data []byte) ([]byte, error)
	// Verify reports whether sig is h's signature of data, by the key h's
	// address names (the libp2p peer ID embeds the public key).
	Verify(h id.Handle, data, sig []byte) bool
}

// HandleChecker is implemented by environments that can tell whether a
// handle is well formed: its id belongs to its address (libp2p: the id is
// derived from the key the peer ID embeds). Applications check the
// handles they read from payloads with it (Endpoint.ValidHandle) before
// they send to one; the handles of messages themselves (From, Origin) are
// checked by the transport. Called only from inside the node's inputs,
// never concurrently.
type HandleChecker interface {
	ValidHandle(h id.Handle) bool
}

// Application is an overlay application (the Common API's upcalls). The
// node never calls these concurrently; they must not block.
type Application interface {
	// Deliver is called at the key's root for a message routed with Route.
	Deliver(msg *Message)
	// Forward is called at every node that forwards msg (the origin
	// included) with the chosen next hop. The application may change
	// msg.Payload, msg.Key or *next, or return false to stop the message
	// here.
	Forward(msg *Message, next *id.Handle) bool
	// Update reports a node joining (joined=true) or leaving this node's
	// leaf set.
	Update(h id.Handle, joined bool)
}

// Ready is what a node asks its driver to do after an input.
type Ready struct {
	// Messages to send, each to its To handle, in this order. The slice is
	// valid until the next input to the node; a driver that calls Advance
	// once it has sent them lets the node reuse the buffer.
	Messages []Message
	// WakeAt is when to call Tick next (absolute, on the driver's clock);
	// zero means no timer is armed.
	WakeAt time.Duration
}

// Status is a node's place in the overlay's life cycle.
type Status uint8

const (
	StatusIdle    Status = iota // created; Bootstrap or Join not yet called
	StatusJoining               // join in progress
	StatusJoined                // member of the overlay
	StatusLeft                  // left gracefully or gave up joining
)

func (s Status) String() string {
	return [...]string{"idle", "joining", "joined", "left"}[s]
}

// HopBuckets is the size of Stats.DeliveredHops.
const HopBuckets = 16

// Stats counts what a node did. Read with Node.Stats.
type Stats struct {
	Sent, Received [msgTypeCount]uint64
	Rejected       uint64 // invalid messages refused by Step
	Delivered      uint64 // routed messages delivered here
	// DirectDelivered counts messages sent with Endpoint.Send delivered
	// here.
	DirectDelivered uint64
	// DeliveredHops[h] counts deliveries here after h hops (the last slot
	// counts HopBuckets-1 hops or more).
	DeliveredHops [HopBuckets]uint64
	Forwarded     uint64 // routed messages forwarded by this node
	HopTimeouts   uint64 // next hops that did not acknowledge in time
	// HopsUnsent counts hops the transport reported it could not send
	// (Node.Unsent): given up at once, without waiting for their timeout.
	HopsUnsent uint64
	// SpuriousTimeouts counts hop timeouts whose acknowledgement came
	// later: each doubles the hop timeouts for a while.
	SpuriousTimeouts uint64
	// Duplicates counts routed messages that arrived again after this node
	// had handled another copy of them; they are acknowledged and not
	// forwarded.
	Duplicates uint64
	// Loops counts routed messages that came back to a node they had
	// passed (the same copy); they are routed again.
	Loops           uint64
	Reroutes        uint64
	Dropped         uint64 // routed messages given up (reroutes or hops exhausted)
	Suspected       uint64
	CandidateProbes uint64 // second-hand would-be leaves probed before admission
	DeclaredDead    uint64
	JoinRetries     uint64
	// Rejoins counts joins routed again by a member that found a
	// neighbour did not hold it (maintain.go, rejoin).
	Rejoins uint64
	// RefusedWhileJoining counts routed messages dropped because this node
	// had not finished joining.
	RefusedWhileJoining uint64
	// Held counts routed messages this node was the root of while it
	// waited for its immediate neighbours to know of it (activate.go);
	// each was routed again (delivered here, mostly) once they did.
	Held               uint64
	LeafRepairRequests uint64
	// DiversityRejected counts entries the routing table or the
	// neighbourhood set would have taken but for the address diversity
	// bound (Config.MaxPerAddrGroup; diversity.go).
	DiversityRejected uint64
}

// Add adds o's counters to s (to sum the nodes of an overlay).
func (s *Stats) Add(o Stats) {
	for k := range s.Sent {
		s.Sent[k] += o.Sent[k]
		s.Received[k] += o.Received[k]
	}
	for k := range s.DeliveredHops {
		s.DeliveredHops[k] += o.DeliveredHops[k]
	}
	s.Rejected += o.Rejected
	s.Delivered += o.Delivered
	s.DirectDelivered += o.DirectDelivered
	s.Forwarded += o.Forwarded
	s.HopTimeouts += o.HopTimeouts
	s.HopsUnsent += o.HopsUnsent
	s.Held += o.Held
	s.SpuriousTimeouts += o.SpuriousTimeouts
	s.Duplicates += o.Duplicates
	s.Loops += o.Loops
	s.Reroutes += o.Reroutes
	s.Dropped += o.Dropped
	s.Suspected += o.Suspected
	s.CandidateProbes += o.CandidateProbes
	s.DeclaredDead += o.DeclaredDead
	s.JoinRetries += o.JoinRetries
	s.Rejoins += o.Rejoins
	s.RefusedWhileJoining += o.RefusedWhileJoining
	s.LeafRepairRequests += o.LeafRepairRequests
	s.DiversityRejected += o.DiversityRejected
}
