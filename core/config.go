package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/pastrynet/pastry/id"
)

// Config holds a node's protocol parameters. Start from a preset
// (DefaultConfig, SimConfig) and override fields; NewMachine validates.
type Config struct {
	// B is the digit width in bits: ids are read as 128/B digits in base
	// 2^B; the routing table has 128/B rows of 2^B columns. Expected hops
	// are about log_{2^B} N. One of 1, 2, 4, 8. Default 4.
	B int
	// LeafSetSize is L: the leaf set keeps the L/2 numerically closest nodes
	// on each side. Even, 2 to 256. Default 16 (secure mode uses 32).
	LeafSetSize int
	// NeighborhoodSize is M, the number of proximity-closest nodes kept.
	// 0 to 1024. Default 32.
	NeighborhoodSize int

	// HeartbeatInterval is how often a node sends its leaf set to its two
	// immediate neighbours. Maintenance traffic is 2/HeartbeatInterval
	// messages per node per second plus failure handling. Default 30 s.
	HeartbeatInterval time.Duration
	// NeighborSilence is how long an immediate neighbour may stay silent
	// before it is probed. Must exceed HeartbeatInterval. Default 2.5 x
	// HeartbeatInterval.
	NeighborSilence time.Duration
	// ProbeTimeout is how long to wait for a probe reply. Default 3 s.
	ProbeTimeout time.Duration
	// ProbeRetries is how many unanswered probes after the first declare a
	// node failed: detection takes (ProbeRetries+1) x ProbeTimeout after
	// suspicion. Default 2.
	ProbeRetries int

	// HopTimeoutFactor, HopTimeoutMin and HopTimeoutMax set how long a node
	// waits for a next hop to acknowledge a routed message:
	// clamp(M x RTT, HopTimeoutMin, HopTimeoutMax), or HopTimeoutMax when
	// the RTT is unknown. M is HopTimeoutFactor until acks have been
	// measured, then the acks' delay in RTTs, mean plus four deviations
	// (TCP's estimate), from 1.25 to HopTimeoutFactor. Defaults 3, 50 ms
	// (10 ms in SimConfig), 2 s.
	HopTimeoutFactor int
	HopTimeoutMin    time.Duration
	HopTimeoutMax    time.Duration
	// MaxReroutes bounds how often one message is re-routed at one node
	// before it is dropped. Default 16.
	MaxReroutes int
	// MaxHops drops a routed message that has taken this many hops (a loop
	// or an attack). Default 64.
	MaxHops int

	// StateProbeInterval is how often each routing-table and
	// neighbourhood-set entry is checked for liveness (the paper's periodic
	// contact of the neighbourhood set; MSPastry's table probing). A table
	// entry is probed when it has given no sign of life for that long: an
	// answered probe counts for a whole interval, any other message from it
	// for half of one, so entries that talk to this node are rarely probed.
	// Entries are also checked whenever a routed message times out on them.
	// Costs at most about 2 x (entries) / StateProbeInterval messages per
	// node per second. 0 disables. Default 20 min.
	StateProbeInterval time.Duration
	// ProbeLossTarget and StateProbeMin self-tune the table probing
	// (MSPastry): each node estimates the failure rate of its state's
	// entries and probes table entries as often as needed for a lookup to
	// meet a dead entry on its way with about this probability (the
	// raw loss rate), but at most once per StateProbeMin and at least once
	// per StateProbeInterval. With no failures seen the period is
	// StateProbeInterval. 0 disables self-tuning. Defaults 0.1 and 30 s.
	ProbeLossTarget float64
	StateProbeMin   time.Duration

	// RowExchangeInterval is how often a node asks a random entry of each
	// routing-table row for its row, to improve proximity and fill holes.
	// 0 disables. Default 10 min.
	RowExchangeInterval time.Duration
	// JoinTimeout is how long a join may wait for the root's reply before
	// it is retried through the bootstrap node. Default 10 s.
	JoinTimeout time.Duration
	// JoinRetries bounds those retries. Default 3.
	JoinRetries int
	// DeadRetention is how long a node declared failed is refused when
	// learned of second-hand (a direct message from it readmits it).
	// Default 5 min.
	DeadRetention time.Duration

	// MaxHandles bounds the node handles one message may carry; MaxPayload
	// the application payload in bytes. Larger input is rejected.
	// Defaults 512 and 1 MiB.
	MaxHandles int
	MaxPayload int

	// ConstrainedTable gives the node a constrained routing table beside
	// its proximity table (routing.NewConstrainedTable), fed every node
	// the proximity table is offered: secure routing (FlagSecure) routes
	// through it. Off by default: it costs a second table's memory.
	ConstrainedTable bool

	// MaxPerAddrGroup is the admission policy's address diversity: at
	// most this many entries of one address block (IPv4 /16, IPv6 /32)
	// per routing-table row and in the neighbourhood set. The leaf set is
	// not limited. Applies where the environment tells address blocks
	// (AddressGrouper; the libp2p transport exempts loopback and private
	// ranges by default). 0 disables. Default 2.
	MaxPerAddrGroup int
}

// DefaultConfig is for deployments: the paper's b=4, L=16, M=32 and
// MSPastry-like maintenance periods.
func DefaultConfig() Config {
	return Config{
		B: 4, LeafSetSize: 16, NeighborhoodSize: 32,
		HeartbeatInterval: 30 * time.Second, NeighborSilence: 75 * time.Second,
		ProbeTimeout: 3 * time.Second, ProbeRetries: 2,
		HopTimeoutFactor: 3, HopTimeoutMin: 50 * time.Millisecond, HopTimeoutMax: 2 * time.Second,
		MaxReroutes: 16, MaxHops: 64,
		RowExchangeInterval: 10 * time.Minute, StateProbeInterval: 20 * time.Minute,
		ProbeLossTarget: 0.1, StateProbeMin: 30 * time.Second,
		JoinTimeout: 10 * time.Second, JoinRetries: 3,
		DeadRetention: 5 * time.Minute,
		MaxHandles:    512, MaxPayload: 1 << 20,
		MaxPerAddrGroup: 2,
	}
}

// SimConfig is DefaultConfig for the simulator: the same protocol, with
// failure detection tuned to the simulator's loss-free default network,
// which has no jitter or processing delay (hence the lower HopTimeoutMin).
func SimConfig() Config {
	c := DefaultConfig()
	c.ProbeTimeout = time.Second
	c.ProbeRetries = 1
	c.HopTimeoutMax = time.Second
	c.HopTimeoutMin = 10 * time.Millisecond
	return c
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("core: invalid config")

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrConfig, field, v, want)
	}
	switch {
	case !id.ValidB(c.B):
		return bad("B", c.B, "1, 2, 4 or 8")
	case c.LeafSetSize < 2 || c.LeafSetSize > 256 || c.LeafSetSize%2 != 0:
		return bad("LeafSetSize", c.LeafSetSize, "an even number from 2 to 256")
	case c.NeighborhoodSize < 0 || c.NeighborhoodSize > 1024:
		return bad("NeighborhoodSize", c.NeighborhoodSize, "0 to 1024")
	case c.HeartbeatInterval <= 0:
		return bad("HeartbeatInterval", c.HeartbeatInterval, "> 0")
	case c.NeighborSilence <= c.HeartbeatInterval:
		return bad("NeighborSilence", c.NeighborSilence, "> HeartbeatInterval")
	case c.ProbeTimeout <= 0:
		return bad("ProbeTimeout", c.ProbeTimeout, "> 0")
	case c.ProbeRetries < 0 || c.ProbeRetries > 16:
		return bad("ProbeRetries", c.ProbeRetries, "0 to 16")
	case c.HopTimeoutFactor < 1 || c.HopTimeoutFactor > 1000:
		return bad("HopTimeoutFactor", c.HopTimeoutFactor, "1 to 1000")
	case c.HopTimeoutMin <= 0 || c.HopTimeoutMax < c.HopTimeoutMin:
		return bad("HopTimeoutMin/Max", [2]time.Duration{c.HopTimeoutMin, c.HopTimeoutMax}, "0 < min <= max")
	case c.MaxReroutes < 0 || c.MaxReroutes > 64:
		return bad("MaxReroutes", c.MaxReroutes, "0 to 64")
	case c.MaxHops < 1 || c.MaxHops > 1024:
		return bad("MaxHops", c.MaxHops, "1 to 1024")
	case c.RowExchangeInterval < 0:
		return bad("RowExchangeInterval", c.RowExchangeInterval, ">= 0")
	case c.StateProbeInterval < 0:
		return bad("StateProbeInterval", c.StateProbeInterval, ">= 0")
	case !(c.ProbeLossTarget >= 0 && c.ProbeLossTarget < 1):
		return bad("ProbeLossTarget", c.ProbeLossTarget, "0 to 1 (exclusive)")
	case c.StateProbeMin < 0 || c.StateProbeInterval > 0 && c.StateProbeMin > c.StateProbeInterval:
		return bad("StateProbeMin", c.StateProbeMin, "0 to StateProbeInterval")
	case c.JoinTimeout <= 0:
		return bad("JoinTimeout", c.JoinTimeout, "> 0")
	case c.JoinRetries < 0:
		return bad("JoinRetries", c.JoinRetries, ">= 0")
	case c.DeadRetention < 0:
		return bad("DeadRetention", c.DeadRetention, ">= 0")
	case c.MaxHandles < c.LeafSetSize+1 || c.MaxHandles < 1<<uint(c.B):
		return bad("MaxHandles", c.MaxHandles, "at least LeafSetSize+1 and 2^B")
	case c.MaxPayload < 0:
		return bad("MaxPayload", c.MaxPayload, ">= 0")
	case c.MaxPerAddrGroup < 0 || c.MaxPerAddrGroup > 1024:
		return bad("MaxPerAddrGroup", c.MaxPerAddrGroup, "0 to 1024")
	}
	return nil
}
