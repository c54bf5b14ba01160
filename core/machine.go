package core

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Errors returned by a Machine's inputs.
var (
	ErrNotJoined  = errors.New("core: node has not joined an overlay")
	ErrBadMessage = errors.New("core: invalid message")
	ErrState      = errors.New("core: operation not allowed in this state")
	ErrDuplicate  = errors.New("core: application id already registered")
)

// Machine is one Pastry node's protocol state. It is not safe for concurrent
// use: one driver goroutine makes every call. Routing state (State) may be
// read from other goroutines through its lock-free snapshots.
type Machine struct {
	cfg    Config
	env    Environment
	self   id.Handle
	state  *routing.State
	status Status
	now    time.Duration

	apps    []registered // sorted by id: Update upcalls go in AppID order
	upcalls []upcall
	// flushing is set while upcalls run (flush is not re-entered).
	flushing bool
	// Application timers by TimerID, and the last id given.
	appTimers   map[uint64]appTimer
	appTimerSeq uint64
	// watched are the nodes applications watch (Endpoint.Watch).
	watched map[id.ID]*watch
	out     []Message
	// taken is what the last Ready returned, until Advance.
	taken  []Message
	timers timerHeap
	seq    uint64
	stats  Stats

	// Routed messages awaiting a next hop's acknowledgement, by seq, and
	// the load of those this node originated.
	pending map[uint64]*pendingHop
	own     Load
	// seen holds the routed messages handled here (dedupe.go); lastSent
	// is the last Sent stamped on a message originated here.
	seen     seenSet
	lastSent int64
	// Hop-timeout back-off (dedupe.go): timeouts are multiplied by
	// 2^hopBackoff; late remembers recent timed-out hops.
	hopBackoff uint8
	timelyAcks uint8
	lateNext   uint8
	late       *[lateSlots]lateHop
	// slow is an EWMA of how much longer acks take than the RTT their hop
	// timeout assumed, in 256ths (dedupe.go); hop timeouts scale with it
	// above 2.
	slow uint32
	// slowDev is the slowdown's mean deviation, in 256ths (TCP's RTT
	// variance, in units of the hop's RTT).
	slowDev uint32
	// Probes in flight, by node; probeSeq maps a probe's nonce to its node.
	probes   map[id.ID]*probe
	probeSeq map[uint64]id.ID
	// dead remembers nodes declared failed, with when, for DeadRetention.
	dead map[id.ID]time.Duration
	// holes are routing-table slots emptied by a failure and being
	// refilled, with the number of further requests allowed.
	holes map[[2]int]uint8
	// probeCursor walks the routing state for periodic liveness probes.
	probeCursor int
	// probeGen and probeDue: the table generation at the last scan of the
	// table entries' liveness deadlines and the earliest deadline it found.
	// Until the table changes or that deadline passes there is nothing to
	// scan for (deadlines only move later in between).
	probeGen uint64
	probeDue time.Duration
	// Self-tuned table probing (tuning.go): failures of state entries
	// seen, in 1/failOne, and the entry-milliseconds they were seen over,
	// both decaying each heartbeat, and the failures of the last few
	// heartbeats; probeIv the table probing period they give (0:
	// StateProbeInterval), scanIv the one the last scan used.
	failsSeen   uint64
	failsRecent uint64
	exposure    uint64
	probeIv     time.Duration
	scanIv      time.Duration
	// Immediate neighbours and when each was last heard from.
	left, right       id.ID
	leftAt, rightAt   time.Duration
	hasLeft, hasRight bool

	// Join progress: the node joined through, the attempt and its nonce,
	// and the leaf set the join's reply would give (activate.go).
	bootstrap   id.Handle
	joinAttempt uint64
	joinNonce   uint64
	joinLeaves  *routing.LeafSet
	// relays are the joins passed on, by fingerprint: where each reply
	// goes back; rooted the joiners answered as root, with when (join.go).
	relays map[uint64]joinRelay
	rooted map[id.ID]time.Duration
	// ackOnAdmit: announcements that asked for a reply from nodes not yet
	// admitted as leaves; the reply goes when they are (onAnnounce).
	ackOnAdmit map[id.ID]time.Duration
	// candidates counts the candidate probes in flight; vouchWait the
	// would-be leaves to ask our leaves about, by timer key.
	candidates int
	// slotProbes: the candidate probed for each routing-table slot
	// (row<<8 | column), so that one candidate at a time is probed for a
	// slot (learnAll): the first of several to answer takes it, and the
	// rest were probed for nothing. Nil when empty.
	slotProbes map[int]id.ID
	vouchWait  map[uint64]id.Handle
	// rejoinAt and rejoinVia: the last rejoin (maintain.go), if any;
	// rechecked the would-be leaf the last heartbeat asked about.
	rejoinAt  time.Duration
	rejoinVia id.Handle
	rechecked id.ID
	// joiner is excluded from NextHop while a join for it is routed here.
	joiner    id.ID
	hasJoiner bool
	skip      routing.SkipFunc

	// Activation (MSPastry): a node that has its join reply takes part in
	// routing at once but delivers nothing until its immediate neighbours
	// know of it (activate.go). answered records what
	// is known of each leaf (leafAsked, ...); held the routed messages
	// this node was the root of meanwhile.
	activating bool
	answered   map[id.ID]uint8
	held       []Message
}

type registered struct {
	id AppID
	ep *Endpoint
}

// upcallKind says which upcall an upcall is.
type upcallKind uint8

const (
	upDeliver     upcallKind = iota + 1 // Application.Deliver(msg)
	upUpdate                            // Application.Update(h, joined)
	upTimer                             // TimerHandler.Timer(tag)
	upFailed                            // FailureHandler.Failed(h)
	upUndelivered                       // UndeliveredHandler.Undelivered(msg)
)

type upcall struct {
	kind   upcallKind
	joined bool
	ep     *Endpoint
	msg    *Message
	h      id.Handle
	tag    uint64
}

// NewMachine returns a node for self with cfg, or an error naming the invalid
// config field. env must not be nil.
func NewMachine(cfg Config, self id.Handle, env Environment) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env == nil {
		return nil, fmt.Errorf("%w: nil Environment", ErrConfig)
	}
	st, err := routing.NewState(self, cfg.B, cfg.LeafSetSize, cfg.NeighborhoodSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.ConstrainedTable {
		st.EnableConstrained()
	}
	n := &Machine{cfg: cfg, env: env, self: self, state: st}
	n.skip = n.skipped
	return n, nil
}

// Self is this node's handle.
func (n *Machine) Self() id.Handle { return n.self }

// Config is the node's configuration.
func (n *Machine) Config() Config { return n.cfg }

// State is the node's routing state. Readers on other goroutines may use
// its snapshot methods; only the node writes.
func (n *Machine) State() *routing.State { return n.state }

// Status is where the node is in its life cycle.
func (n *Machine) Status() Status {
	if n.activating && n.status == StatusJoined {
		return StatusJoining // joined, but not yet a root (activate.go)
	}
	return n.status
}

// Stats returns the node's counters.
func (n *Machine) Stats() Stats { return n.stats }

// Load is what a runtime paces the node's own routes by: the hops of
// the messages this node originated (its routes, its lookups' requests
// and answers, its direct sends), apart from those it forwards for
// others, so that a flood of traffic through the node does not hold back
// its own.
type Load struct {
	InFlight int    // own hops sent and neither acknowledged nor timed out yet
	Acked    uint64 // acknowledgements of own hops received so far
	TimedOut uint64 // own hops timed out so far
}

// Load returns the node's own hops in flight and their ack and timeout
// counts.
func (n *Machine) Load() Load { return n.own }

// RegisterApplication multiplexes app over this node under appID and
// returns the application's Endpoint, its one way to act (see Endpoint).
// Applications registered later see only what happens afterwards.
func (n *Machine) RegisterApplication(appID AppID, app Application) (*Endpoint, error) {
	if app == nil {
		return nil, fmt.Errorf("core: register application %d: nil", appID)
	}
	if n.Endpoint(appID) != nil {
		return nil, fmt.Errorf("%w: %d", ErrDuplicate, appID)
	}
	i := 0
	for i < len(n.apps) && n.apps[i].id < appID {
		i++
	}
	ep := newEndpoint(n, appID, app)
	n.apps = slices.Insert(n.apps, i, registered{appID, ep})
	if r, ok := app.(Registrant); ok {
		r.Registered(ep)
	}
	return ep, nil
}

// Ready returns what the node wants done after the last input. Call it
// after every input; the returned slices are valid until the next input.
func (n *Machine) Ready() Ready {
	rd := Ready{Messages: n.out, WakeAt: n.wakeAt()}
	// Later sends go after these in the buffer (or to a new one), never
	// over them, until Advance.
	n.taken, n.out = n.out, n.out[len(n.out):]
	return rd
}

// outCap is the capacity of the send buffers lent by outBufs.
const outCap = 8

// outBufs lends send buffers. A buffer per node, kept between inputs, cost
// a simulator's hundred thousand nodes about 1 KB each (four 264-byte
// messages) for buffers that are empty between inputs; nodes now take one
// when they first send after an input and give it back at Advance, so a
// process keeps a few, shared by all its nodes. Which buffer a message goes
// through has no effect on what the protocol does.
var outBufs = sync.Pool{New: func() any { return new([outCap]Message) }}

// bigOutBufs lends the larger buffers of bursts (*[]Message, capacity
// above outCap and at most maxBigOut), which were a seventh of the bytes
// a simulation allocated.
var bigOutBufs sync.Pool

const maxBigOut = 1024

// Advance tells the node that the driver is done with the last Ready's
// messages, so that their buffer can be reused (etcd raft's RawNode.Advance).
// A driver that never calls it is still correct: each Ready then gets a
// fresh buffer.
func (n *Machine) Advance() {
	// A buffer of outCap goes back to the pool once nothing is queued in
	// it; a larger one (a join's burst of announcements) is left to the
	// collector.
	if len(n.out) == 0 {
		switch c := cap(n.taken); {
		case c == outCap:
			b := (*[outCap]Message)(n.taken[:outCap])
			clear(b[:]) // drop references to handles and payloads
			outBufs.Put(b)
		case c > outCap && c <= maxBigOut:
			b := n.taken[:0]
			clear(b[:c])
			bigOutBufs.Put(&b)
		}
		n.out = nil
	}
	n.taken = nil
	n.state.Quiesce()
}

// Bootstrap starts a new overlay with this node as its only member.
func (n *Machine) Bootstrap(now time.Duration) error {
	if n.status != StatusIdle {
		return fmt.Errorf("%w: bootstrap while %s", ErrState, n.status)
	}
	n.now = now
	n.becomeJoined()
	return nil
}

// Tick runs the timers that are due at now.
func (n *Machine) Tick(now time.Duration) {
	n.advance(now)
	for len(n.timers.h) > 0 && n.timers.h[0].at <= now {
		n.fire(n.timers.pop())
	}
	if n.activating {
		n.settleActivation(nil)
	}
	n.flush()
}

func (n *Machine) advance(now time.Duration) {
	if now > n.now {
		n.now = now
	}
}

func (n *Machine) fire(t timer) {
	switch t.kind {
	case timerHeartbeat:
		n.onHeartbeatTimer()
	case timerRowExchange:
		n.onRowExchangeTimer()
	case timerHopAck:
		n.onHopTimeout(t.key)
	case timerProbe:
		n.onProbeTimeout(t.key)
	case timerJoin:
		n.onJoinTimeout(t.key)
	case timerApp:
		n.onAppTimer(t.key)
	case timerVouch:
		n.onVouchTimer(t.key)
	case timerActivate:
		if n.activating && t.key == n.joinAttempt {
			n.activate()
		}
	}
}

// Step processes a message received from msg.From. An invalid message is
// refused with an error wrapping ErrBadMessage and changes nothing.
func (n *Machine) Step(now time.Duration, msg *Message) error {
	if err := n.validate(msg); err != nil {
		n.stats.Rejected++
		return err
	}
	n.advance(now)
	if n.status == StatusLeft || n.status == StatusIdle {
		return nil // not part of an overlay: ignore silently
	}
	n.stats.Received[msg.Type]++
	n.heard(msg)
	switch msg.Type {
	case MsgRoute, MsgJoin:
		if n.status != StatusJoined {
			// Without a complete state we would deliver or answer joins as
			// a false root. Stay silent: the sender's hop times out and it
			// re-routes (or, for a join, retries).
			n.stats.RefusedWhileJoining++
			break
		}
		n.onRouted(msg)
	case MsgDirect:
		n.onDirect(msg)
	case MsgRouteAck:
		n.onRouteAck(msg)
	case MsgJoinReply:
		n.onJoinReply(msg)
	case MsgAnnounce:
		n.onAnnounce(msg)
	case MsgHeartbeat:
		n.learnAll(msg.Handles, n.state.Leaves.Contains(msg.From.ID), false)
		n.crossCheck(msg.From, msg.Handles, int(msg.Row))
	case MsgAnnounceAck, MsgLeafReply:
		n.learnAll(msg.Handles, n.state.Leaves.Contains(msg.From.ID), false)
	case MsgRowReply:
		n.onRowReply(msg)
	case MsgProbe:
		n.send(Message{Type: MsgProbeReply, To: msg.From, Seq: msg.Seq, Sent: msg.Sent})
	case MsgProbeReply:
		// heard() already settled the probe.
	case MsgLeafRequest:
		n.send(Message{Type: MsgLeafReply, To: msg.From, Handles: n.leafHandles(true)})
	case MsgRowRequest:
		n.send(Message{Type: MsgRowReply, To: msg.From, Row: msg.Row, Handles: n.rowHandles(int(msg.Row), nil)})
	case MsgLeave:
		n.onLeave(msg.From)
	case MsgSuspect:
		n.onSuspect(msg.From, msg.Subject, msg.Handles)
	}
	if msg.Flags&FlagProbe != 0 && (msg.Type == MsgAnnounceAck || msg.Type == MsgRowReply) {
		n.send(Message{Type: MsgProbeReply, To: msg.From, Seq: msg.Seq})
	}
	if n.activating {
		n.settleActivation(msg)
	}
	n.flush()
	return nil
}

// validate bounds everything an untrusted sender controls.
func (n *Machine) validate(m *Message) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s from %s: %s", ErrBadMessage, m.Type, m.From, fmt.Sprintf(format, args...))
	}
	switch {
	case m == nil:
		return fmt.Errorf("%w: nil", ErrBadMessage)
	case !m.Type.Valid():
		return bad("unknown type %d", uint8(m.Type))
	case m.From.ID == n.self.ID:
		return bad("claims to be from this node")
	case len(m.Handles) > n.cfg.MaxHandles:
		return bad("%d handles, limit %d", len(m.Handles), n.cfg.MaxHandles)
	case len(m.Payload) > n.cfg.MaxPayload:
		return bad("payload %d bytes, limit %d", len(m.Payload), n.cfg.MaxPayload)
	case int(m.Hops) > n.cfg.MaxHops || len(m.Path) > n.cfg.MaxHops:
		return bad("%d hops, limit %d", m.Hops, n.cfg.MaxHops)
	case (m.Type == MsgRowRequest || m.Type == MsgRowReply) && (m.Row < 0 || int(m.Row) >= id.Digits(n.cfg.B)),
		(m.Type == MsgHeartbeat || m.Type == MsgJoinReply) && (m.Row < 0 || int(m.Row) > len(m.Handles)):
		return bad("row %d out of range", m.Row)
	case m.Type == MsgJoin && m.Key != m.Origin.ID:
		return bad("join key %s is not the joiner's id %s", m.Key.Short(), m.Origin)
	}
	return nil
}

// send queues m from this node.
func (n *Machine) send(m Message) {
	m.From = n.self
	if n.status != StatusJoined {
		m.Flags |= FlagJoining
	}
	n.stats.Sent[m.Type]++
	switch {
	case cap(n.out) == 0:
		n.out = outBufs.Get().(*[outCap]Message)[:0]
	case len(n.out) == cap(n.out) && cap(n.out) >= outCap:
		// A burst (a joiner's announcements): a larger buffer, from
		// bigOutBufs when it has one large enough.
		var b []Message
		if p, _ := bigOutBufs.Get().(*[]Message); p != nil && cap(*p) >= 2*len(n.out) {
			b = (*p)[:0]
		} else {
			b = make([]Message, 0, 2*len(n.out))
		}
		n.out = append(b, n.out...)
	}
	n.out = append(n.out, m)
}

func (n *Machine) nextSeq() uint64 { n.seq++; return n.seq }

// flush dispatches the queued upcalls, in order; upcalls may queue more.
// An upcall's own Endpoint calls never flush: the upcalls they cause run
// after it returns, from here.
func (n *Machine) flush() {
	if n.flushing {
		return
	}
	n.flushing = true
	for len(n.upcalls) > 0 {
		u := n.upcalls[0]
		n.upcalls = n.upcalls[1:]
		switch u.kind {
		case upDeliver:
			u.ep.a.Deliver(u.msg)
		case upUpdate:
			u.ep.a.Update(u.h, u.joined)
		case upTimer:
			u.ep.timer.Timer(u.tag)
		case upFailed:
			u.ep.failure.Failed(u.h)
		case upUndelivered:
			u.ep.undelivered.Undelivered(u.msg)
		}
	}
	n.upcalls = n.upcalls[:0:0]
	n.flushing = false
}

// notifyLeaf queues Update upcalls to every application, in AppID order.
func (n *Machine) notifyLeaf(h id.Handle, joined bool) {
	for _, a := range n.apps {
		n.upcalls = append(n.upcalls, upcall{kind: upUpdate, ep: a.ep, h: h, joined: joined})
	}
}

// skipped is the NextHop filter: suspected nodes and a joiner being routed.
func (n *Machine) skipped(x id.ID) bool {
	if n.hasJoiner && x == n.joiner {
		return true
	}
	p := n.probes[x]
	return p != nil && p.suspect
}

// nextHop wraps State.NextHop with the node's filter.
func (n *Machine) nextHop(key id.ID) (id.Handle, bool) {
	if len(n.probes) == 0 && !n.hasJoiner {
		return n.state.NextHop(key, nil)
	}
	return n.state.NextHop(key, n.skip)
}

// secureNextHop is nextHop through the constrained table
// (routing.ModeConstrained), for messages with FlagSecure.
func (n *Machine) secureNextHop(key id.ID) (id.Handle, bool) {
	if len(n.probes) == 0 && !n.hasJoiner {
		return n.state.NextHopIn(key, nil, routing.ModeConstrained)
	}
	return n.state.NextHopIn(key, n.skip, routing.ModeConstrained)
}

// leafHandles lists the leaf set, and this node if withSelf.
func (n *Machine) leafHandles(withSelf bool) []id.Handle {
	out := make([]id.Handle, 0, n.state.Leaves.Len()+1)
	if withSelf {
		out = append(out, n.self)
	}
	return n.state.Leaves.AppendHandles(out)
}

// rowHandles appends row r of the routing table to dst.
func (n *Machine) rowHandles(r int, dst []id.Handle) []id.Handle {
	if dst == nil {
		dst = make([]id.Handle, 0, n.state.Table.RowFill(r))
	}
	return n.state.Table.AppendRowHandles(r, dst)
}

// becomeJoined makes the node a member and starts maintenance.
func (n *Machine) becomeJoined() {
	n.status = StatusJoined
	n.arm(n.now+n.jitter(n.cfg.HeartbeatInterval), timerHeartbeat, 0)
	if n.cfg.RowExchangeInterval > 0 {
		n.arm(n.now+n.jitter(n.cfg.RowExchangeInterval), timerRowExchange, 0)
	}
}

// jitter returns a duration uniform in [d/2, d), so that periodic work of
// nodes that joined together spreads out.
func (n *Machine) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(n.env.Uint64()%uint64(d/2))
}

// randIndex returns a uniform index below k (k > 0).
func (n *Machine) randIndex(k int) int { return int(n.env.Uint64() % uint64(k)) }
