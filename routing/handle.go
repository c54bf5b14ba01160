package routing

import (
	"math"

	"github.com/pastrynet/pastry/id"
)

// UnknownProximity marks a node whose proximity has not been measured; it
// loses every comparison against a measured one.
const UnknownProximity = math.MaxUint32

// Entry is a handle in routing state, with the proximity it was chosen by:
// the round-trip time in microseconds (smaller is closer), or
// UnknownProximity.
type Entry struct {
	id.Handle
	Prox uint32
}
