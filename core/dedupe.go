package core

import (
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Duplicate suppression and hop-timeout back-off: what keeps a stall from
// turning into a storm.
//
// A next hop that acknowledges late (a CPU stall, a stream being opened, a
// GC pause) makes the sender re-route a message that is in fact still on
// its way: the message now travels twice. Without a memory of what it has
// handled, every node downstream that times out the same way doubles it
// again, the extra load delays more acknowledgements, and the overlay can
// stay in that state after the stall is over (measured: a one-second stall
// of 64 nodes on two cores grew into 28 million hop timeouts). So a node
// remembers the routed messages it has handled (seenSet), and which copy it
// handled: every re-route or resend gives the message a new Copy. Another
// copy of a message handled here is acknowledged and dropped (the copy
// handled here is on its way). The same copy coming back is a loop (routing
// states disagree while failures are being repaired): it is routed again,
// since no other copy may exist and the states may have changed since, but
// only maxLoopPasses times; a loop that persists goes round the same nodes
// until MaxHops otherwise. And when
// an acknowledgement arrives after its hop timed out, the timeout was
// spurious and the node's hop timeouts double (hopBackoff), until acks come
// in time again.

const (
	// seenGeneration is how many routed messages one generation of the
	// seen set holds; a node remembers the last 1 to 2 generations.
	seenGeneration = 1024
	// maxHopBackoff caps hopBackoff: hop timeouts grow at most 2^6 = 64
	// times (and never past HopTimeoutMax).
	maxHopBackoff = 6
	// timelyAcksToDecay acknowledgements in time halve the timeouts again.
	timelyAcksToDecay = 64
	// lateSlots is how many timed-out hops are remembered to recognise a
	// late acknowledgement.
	lateSlots = 16
	// maxLoopPasses is how often one copy may come back to a node and be
	// routed again; the next time it is dropped.
	maxLoopPasses = 2
)

// seenSet remembers message fingerprints, with the copy handled and how
// often it came back, in two generations of at most seenGeneration each, so
// memory is bounded and a node that handles few messages keeps only a few.
// A value is the copy id in the low 32 bits and the passes above.
type seenSet struct{ cur, old map[uint64]uint64 }

// add records message f's copy c unless f is already there; it reports
// whether f was there and with which copy.
func (s *seenSet) add(f uint64, c uint32) (had uint32, seen bool) {
	if v, ok := s.cur[f]; ok {
		return uint32(v), true
	}
	if v, ok := s.old[f]; ok {
		return uint32(v), true
	}
	if len(s.cur) >= seenGeneration {
		s.old, s.cur = s.cur, nil
	}
	if s.cur == nil {
		s.cur = make(map[uint64]uint64)
	}
	s.cur[f] = uint64(c)
	return 0, false
}

// where returns the generation holding f, or nil.
func (s *seenSet) where(f uint64) map[uint64]uint64 {
	if _, ok := s.cur[f]; ok {
		return s.cur
	}
	if _, ok := s.old[f]; ok {
		return s.old
	}
	return nil
}

// set records c as the copy of message f handled here, not yet come back.
func (s *seenSet) set(f uint64, c uint32) {
	if m := s.where(f); m != nil {
		m[f] = uint64(c)
		return
	}
	s.add(f, c)
}

// visit is a copy c of message f arriving. If f is new it is recorded
// with c (seen false). If another copy was handled here, had is that copy.
// If c itself was, it has come back: passes counts how often so far.
func (s *seenSet) visit(f uint64, c uint32) (had, passes uint32, seen bool) {
	m := s.where(f)
	if m == nil {
		s.add(f, c)
		return 0, 0, false
	}
	v := m[f]
	if had = uint32(v); had == c {
		passes = uint32(v>>32) + 1
		m[f] = uint64(c) | uint64(passes)<<32
	}
	return had, passes, true
}

// newCopy names a copy this node makes of a message it re-routes or
// resends under hop seq: distinct from the copies other nodes make (the
// node id is mixed in) and from its own others.
func (n *Machine) newCopy(seq uint64) uint32 {
	x := n.self.ID.U128()
	return uint32(mix64(mix64(x.Hi^x.Lo) ^ seq))
}

// fingerprint names a routed message end to end: its origin, the origin's
// send time (unique per origin: see stamp), its key and its type. The hop
// fields (From, To, Seq, Hops, Path) and Copy are not part of it.
func fingerprint(m *Message) uint64 {
	o, k := m.Origin.ID.U128(), m.Key.U128()
	h := mix64(o.Hi ^ 0x9e3779b97f4a7c15)
	h = mix64(h ^ o.Lo)
	h = mix64(h ^ k.Hi)
	h = mix64(h ^ k.Lo)
	h = mix64(h ^ uint64(m.Sent))
	return mix64(h ^ uint64(m.Type))
}

// mix64 is SplitMix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// stamp gives a message this node originates its Sent time, strictly
// increasing so that two messages routed in the same instant differ.
func (n *Machine) stamp() int64 {
	s := max(int64(n.now), n.lastSent+1)
	n.lastSent = s
	return s
}

// lateHop remembers a hop that timed out, to recognise its late ack.
type lateHop struct {
	seq  uint64
	next id.ID
	sent time.Duration
	rtt  uint32
}

// timedOut records a hop whose acknowledgement did not come in time. The
// ring is allocated on the first timeout: most simulated nodes never have
// one.
func (n *Machine) timedOut(seq uint64, p *pendingHop) {
	if n.late == nil {
		n.late = new([lateSlots]lateHop)
	}
	n.late[n.lateNext%lateSlots] = lateHop{seq: seq, next: p.next.ID, sent: p.sent, rtt: p.rtt}
	n.lateNext++
}

// The ack slowdown: how many times longer than its hop's RTT an ack took,
// as an EWMA in 256ths (slowOne is 1). RTTs come from pings, which a
// peer answers without queueing them behind its other work; an ack waits
// behind all of it, at both ends. A node or an overlay that is overloaded
// (a burst on a loaded machine) acks late everywhere, and fixed timeouts
// then fire in bulk: each re-route adds load and the next wave fires too
// (measured on 64 nodes sharing two cores: 24-155 k hop timeouts for a
// burst of 5,000 messages). Scaling hop timeouts with the slowdown, above
// twice, follows the load; the back-off above answers late acks. Where
// acks take about their RTT, as in the simulator, nothing changes.
const (
	slowOne = 256
	// slowStretch is the slowdown above which hop timeouts stretch: acks
	// a little slower than their RTT (rounding, a reply's processing) are
	// what HopTimeoutFactor allows for.
	slowStretch = 2 * slowOne
	// slowCap bounds one sample (1024 x the RTT; HopTimeoutMax bounds the
	// timeout anyway).
	slowCap = 1024 * slowOne
	// slowFloor is the least multiple of the RTT a hop timeout allows
	// once acks are measured: 1.25 (see hopTimeout).
	slowFloor = slowOne + slowOne/4
)

// ackTook folds one ack, which took took after a hop whose proximity was
// rtt, into the slowdown.
func (n *Machine) ackTook(took time.Duration, rtt uint32) {
	if rtt == 0 || rtt == routing.UnknownProximity || took < 0 {
		return
	}
	r := min(took*slowOne/(time.Duration(rtt)*time.Microsecond), slowCap)
	s := int64(n.slow)
	if s == 0 {
		s = slowOne
	}
	// The deviation as TCP's RTT variance: a 1/4 EWMA of the distance of
	// each sample from the mean before it.
	dev := int64(r) - s
	if dev < 0 {
		dev = -dev
	}
	v := int64(n.slowDev)
	v += (dev - v) / 4
	n.slowDev = uint32(min(max(v, 0), slowCap))
	s += (int64(r) - s) / 8
	n.slow = uint32(max(s, 0))
}

// lateAck handles an acknowledgement for no pending hop: if it answers a
// hop that timed out, the timeout was spurious and timeouts back off.
func (n *Machine) lateAck(m *Message) {
	if n.late == nil {
		return
	}
	for i := range n.late {
		if l := &n.late[i]; l.seq == m.Seq && l.seq != 0 && l.next == m.From.ID {
			n.ackTook(n.now-l.sent, l.rtt)
			*l = lateHop{}
			n.stats.SpuriousTimeouts++
			n.hopBackoff = min(n.hopBackoff+1, maxHopBackoff)
			n.timelyAcks = 0
			return
		}
	}
}

// timelyAck counts an acknowledgement in time; enough of them undo one
// step of back-off.
func (n *Machine) timelyAck() {
	if n.hopBackoff == 0 {
		return
	}
	if n.timelyAcks++; n.timelyAcks >= timelyAcksToDecay {
		n.hopBackoff--
		n.timelyAcks = 0
	}
}
