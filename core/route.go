package core

import (
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// pendingHop is a routed message sent to a next hop and not yet
// acknowledged.
type pendingHop struct {
	msg      Message
	next     id.Handle
	sent     time.Duration // when it was sent
	reroutes int
	rtt      uint32 // the next hop's proximity when it was sent (packed with resent: 320 bytes, a size class)
	resent   bool
	own      bool // originated here (Load.Own)
}

// route originates a routed message (Endpoint.RouteMessage): Key, App,
// Payload and Flags (FlagTrace and FlagSecure only) are taken from m.
func (n *Machine) route(m Message, hint *id.Handle) error {
	if n.status != StatusJoined {
		return ErrNotJoined
	}
	m.Type, m.Origin, m.Hops, m.Sent, m.Path = MsgRoute, n.self, 0, n.stamp(), nil
	m.Flags &= FlagTrace | FlagSecure
	n.seen.add(fingerprint(&m), 0)
	n.trace(&m)
	if hint != nil && hint.ID != n.self.ID {
		n.forwardTo(&m, *hint, 0)
	} else {
		n.forward(&m, 0)
	}
	return nil
}

// trace appends this node to a traced message's path, copying the shared
// slice.
func (n *Machine) trace(m *Message) {
	if m.Flags&FlagTrace != 0 {
		m.Path = append(m.Path[:len(m.Path):len(m.Path)], n.self)
	}
}

// onRouted handles a routed message (Route or Join) arriving from a hop.
func (n *Machine) onRouted(m *Message) {
	n.send(Message{Type: MsgRouteAck, To: m.From, Seq: m.Seq})
	switch had, passes, seen := n.seen.visit(fingerprint(m), m.Copy); {
	case !seen:
	case had != m.Copy:
		// Another copy was handled here (this one re-routed or resent):
		// the ack stops the sender's timer, and the copy handled here is
		// on its way.
		n.stats.Duplicates++
		return
	default: // the copy handled here came back: a loop
		n.stats.Loops++
		if passes > maxLoopPasses {
			n.stats.Dropped++
			return
		}
	}
	msg := *m
	n.trace(&msg)
	if msg.Type == MsgJoin {
		n.onJoinHop(&msg)
		return
	}
	n.forward(&msg, 0)
}

// nextHopFor picks the next hop for m, keeping a joiner out of its own
// join's path.
func (n *Machine) nextHopFor(m *Message) (id.Handle, bool) {
	if m.Type == MsgJoin {
		n.joiner, n.hasJoiner = m.Origin.ID, true
		defer func() { n.hasJoiner = false }()
	}
	if m.Flags&FlagSecure != 0 && m.Type == MsgRoute {
		return n.secureNextHop(m.Key)
	}
	return n.nextHop(m.Key)
}

// forward moves m one hop on, or delivers it here.
func (n *Machine) forward(m *Message, reroutes int) {
	next, ok := n.nextHopFor(m)
	if !ok {
		n.deliver(m)
		return
	}
	n.forwardTo(m, next, reroutes)
}

func (n *Machine) forwardTo(m *Message, next id.Handle, reroutes int) {
	if int(m.Hops) >= n.cfg.MaxHops {
		n.stats.Dropped++
		return
	}
	if m.Type == MsgRoute && reroutes == 0 {
		if ep := n.Endpoint(m.App); ep != nil {
			if !ep.a.Forward(m, &next) {
				return
			}
			if next.ID == n.self.ID {
				n.deliver(m)
				return
			}
		}
	}
	if m.Origin.ID != n.self.ID || reroutes > 0 || m.Hops > 0 {
		n.stats.Forwarded++
	}
	n.sendHop(m, next, reroutes, false)
}

// sendHop sends m to next and waits for its acknowledgement.
func (n *Machine) sendHop(m *Message, next id.Handle, reroutes int, resent bool) {
	m.Hops++
	seq := n.nextSeq()
	m.To, m.Seq = next, seq
	n.send(*m)
	if n.pending == nil {
		n.pending = map[uint64]*pendingHop{}
	}
	rtt := n.env.Proximity(next)
	own := m.Origin.ID == n.self.ID
	if own {
		n.own.InFlight++
	}
	n.pending[seq] = &pendingHop{msg: *m, next: next, reroutes: reroutes, resent: resent, sent: n.now, rtt: rtt, own: own}
	n.arm(n.now+n.hopTimeout(rtt), timerHopAck, seq)
}

// hopTimeout is clamp(M x RTT, min, max), times 2^hopBackoff after
// spurious timeouts (still at most max), for a next hop whose proximity is
// rtt: M is HopTimeoutFactor until acks are measured, then the ack
// slowdown's mean plus four deviations (at least 1.25, at most
// HopTimeoutFactor), and HopTimeoutFactor x the slowdown when that is
// above 2.
func (n *Machine) hopTimeout(rtt uint32) time.Duration {
	if rtt == routing.UnknownProximity {
		return n.cfg.HopTimeoutMax
	}
	d := time.Duration(n.cfg.HopTimeoutFactor) * time.Duration(rtt) * time.Microsecond
	switch {
	case n.slow > slowStretch:
		if d >= n.cfg.HopTimeoutMax/time.Duration(n.slow)*slowOne {
			return n.cfg.HopTimeoutMax
		}
		d = d * time.Duration(n.slow) / slowOne
	case n.slow > 0:
		// Acks measured and in time: the RTT times the slowdown's mean
		// plus four deviations (TCP's retransmission timeout, in units of
		// the hop's RTT), at least slowFloor and at most HopTimeoutFactor.
		m := min(max(int64(n.slow)+4*int64(n.slowDev), slowFloor), int64(n.cfg.HopTimeoutFactor)*slowOne)
		d = time.Duration(rtt) * time.Microsecond * time.Duration(m) / slowOne
	}
	d = max(d, n.cfg.HopTimeoutMin)
	if d >= n.cfg.HopTimeoutMax>>n.hopBackoff { // shifting would pass the maximum, or overflow
		return n.cfg.HopTimeoutMax
	}
	return d << n.hopBackoff
}

func (n *Machine) deliver(m *Message) {
	if n.activating && n.hold(m) {
		return
	}
	if m.Type == MsgJoin {
		n.onJoinAtRoot(m)
		return
	}
	ep := n.Endpoint(m.App)
	if ep == nil {
		n.stats.Dropped++
		return
	}
	n.stats.Delivered++
	n.stats.DeliveredHops[min(int(m.Hops), HopBuckets-1)]++
	msg := *m
	n.upcalls = append(n.upcalls, upcall{kind: upDeliver, ep: ep, msg: &msg})
}

func (n *Machine) onRouteAck(m *Message) {
	if p := n.pending[m.Seq]; p != nil && p.next.ID == m.From.ID {
		n.unpend(m.Seq, p)
		if p.own {
			n.own.Acked++
		}
		n.ackTook(n.now-p.sent, p.rtt)
		n.timelyAck()
		return
	}
	n.lateAck(m)
}

// unpend forgets the pending hop seq.
func (n *Machine) unpend(seq uint64, p *pendingHop) {
	delete(n.pending, seq)
	if p.own {
		n.own.InFlight--
	}
}

// onHopTimeout suspects a next hop that did not acknowledge and re-routes
// the message around it (MSPastry).
func (n *Machine) onHopTimeout(seq uint64) {
	p := n.pending[seq]
	if p == nil {
		return
	}
	n.unpend(seq, p)
	n.stats.HopTimeouts++
	if p.own {
		n.own.TimedOut++
	}
	n.timedOut(seq, p)
	n.retryHop(seq, p)
}

// Unsent tells the node that a message it sent to the node to, of type
// typ and sequence number seq, never left: the transport could not reach
// to (its stream would not open, or broke before the message was
// written). A hop still waiting for its ack is then given up at once, as
// its ack timeout would have done later: sent once more if to is in the
// leaf set, else to is suspected and the message re-routed. Such a hop
// counts in Stats.HopsUnsent, not in HopTimeouts: it says nothing of the
// acks' delay, so it neither backs off nor stretches hop timeouts. An
// announcement that did not leave while this node activates passes its
// addressee over (activate.go). Any other message, or a hop already
// settled, is left alone.
func (n *Machine) Unsent(now time.Duration, to id.ID, typ MsgType, seq uint64) {
	n.advance(now)
	switch {
	case typ == MsgAnnounce && n.activating:
		n.announceUnsent(to)
	case typ == MsgRoute || typ == MsgJoin || typ == MsgDirect || typ == MsgJoinReply:
		if p := n.pending[seq]; p != nil && p.next.ID == to && p.msg.Type == typ {
			n.unpend(seq, p)
			n.stats.HopsUnsent++
			n.retryHop(seq, p)
		}
	}
	n.flush()
}

// retryHop sends again, or routes again, the message of the hop seq that
// failed.
func (n *Machine) retryHop(seq uint64, p *pendingHop) {
	if p.msg.Type == MsgDirect || p.msg.Type == MsgJoinReply {
		n.retryDirect(p)
		return
	}
	m := p.msg
	// What goes out now is a new copy; it is the one this node stands for
	// if a copy comes back.
	m.Copy = n.newCopy(seq)
	n.seen.set(fingerprint(&m), m.Copy)
	// A leaf-set next hop is likely the key's root: re-routing around it
	// would deliver at the wrong node if only the message (or its ack) was
	// lost. Send it once more first.
	if !p.resent && n.state.Leaves.Contains(p.next.ID) {
		m.Hops--
		n.sendHop(&m, p.next, p.reroutes, true)
		return
	}
	n.suspect(p.next, true)
	if m.Type == MsgJoin && m.Origin.ID == n.self.ID {
		return // our own join: the join timer retries it
	}
	if p.reroutes >= n.cfg.MaxReroutes {
		n.stats.Dropped++
		return
	}
	n.stats.Reroutes++
	m.Hops--
	n.forward(&m, p.reroutes+1)
}
