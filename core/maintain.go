package core

import (
	"encoding/binary"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// probe is a liveness check in flight.
type probe struct {
	h     id.Handle
	seq   uint64
	tries int
	// suspect: routing avoids the node until it answers.
	suspect bool
	// candidate: the node is not in our state; admit it if it answers,
	// forget it if not.
	candidate bool
	// notify: on failure, tell the leaf set (we detected it ourselves).
	notify bool
	// vouched: the node may enter the leaf set when it answers: a current
	// leaf listed it in its leaf set, or the join's reply named it.
	vouched bool
	// stranger: the node sent us a message unasked (probeStranger).
	stranger bool
	// unsent: the probe is to ride on a reply (FlagProbe) not yet sent.
	unsent bool
	// slot: 1 + the routing-table slot (row<<8 | column) the candidate
	// would take, if it is the one recorded for it in slotProbes; 0 if
	// not.
	slot int
	// leaves: the leaf set of the leaf that reported the node failed
	// (onSuspect), to repair our own leaf set from if it was a leaf.
	leaves []id.Handle
}

// maxCandidateProbes bounds the candidates probed at once; others are
// probed when heard of again.
const maxCandidateProbes = 64

// maxHoleProbes and maxBetterProbes bound the candidates one message makes
// this node probe for a hole in its routing table, and for a better table
// or neighbourhood entry than it has (would-be leaves are probed whatever
// their number): each costs a probe and its reply, and a joiner hears of
// a thousand nodes. What is left out is offered again by later messages
// (heartbeats, row exchanges).
const (
	maxHoleProbes   = 4
	maxBetterProbes = 2
)

// Admission. No node enters any part of the routing state, or is passed
// on to others from it, before it has answered this node: a probe, an
// announcement that asked for a reply, a request. A node that sends an
// unsolicited message, or is named by another, is probed first. Entry to
// the leaf set also takes a member's word: the node must have been named
// by a current leaf's leaf set (heartbeats, leaf replies, announcement
// replies), or by the join's reply at a joiner, or be a joiner this node
// answered as root (once the joiner has answered its probe). A root that
// takes its joiner into its leaf set sends
// the leaf set to its leaves, which are most of the joiner's neighbours; a
// node that would take a stranger that answered it as a leaf, and has no
// leaf's word for it yet, asks its leaf nearest to it. So a
// node that never joined, however it answers, does not become a leaf, and
// one that joined is a leaf of its neighbours within a round trip or two.

// heard handles first-hand evidence that msg.From is alive: settle a
// probe, forget a failure verdict, admit the node if it answered this
// node (or probe it if not), refresh the neighbour watch. Joining senders
// are not admitted (they cannot route yet); a leaving one is about to be
// removed.
func (n *Machine) heard(m *Message) {
	x := m.From
	// The probe's record goes back to the pool when it ends: what this
	// function needs of it is copied first.
	var p *probe
	var pr probe
	if q := n.probes[x.ID]; q != nil {
		pr, p = *q, &pr
		n.endProbe(q)
	}
	if n.watched != nil {
		if w := n.watched[x.ID]; w != nil {
			w.heard = n.now
		}
	}
	if m.Flags&FlagJoining != 0 || m.Type == MsgLeave {
		return
	}
	if len(n.dead) > 0 {
		delete(n.dead, x.ID)
	}
	// First-hand evidence defers a table entry's next liveness probe (see
	// probeState): by a whole interval for a probe's reply, by half of one
	// for any other message, so that an entry that stops talking to us is
	// checked half an interval later.
	//
	// A node already in our state only needs admitting again if its
	// proximity now earns it a neighbourhood slot or changes its table
	// entry (or, in a small overlay, a leaf now belongs on its other side
	// too). Most messages come from nodes we know, so these checks are kept
	// cheap: proximity (the runtime measures it in the background; it may
	// have been unknown at admission) is looked at again only while the
	// recorded one is unknown, and on probe replies and heartbeats.
	iv := n.tableProbeInterval()
	alive := n.now + iv/2
	if m.Type == MsgProbeReply {
		alive = n.now + iv
	}
	e, inTable := n.state.Table.Alive(x.ID, alive)
	leaf := n.state.Leaves.Contains(x.ID)
	known := inTable || leaf
	if !known {
		e, known = n.state.Leaves.Lookup(x.ID)
		known = known || n.state.Neighbors.Contains(x.ID)
	}
	_, rooted := n.rooted[x.ID]
	switch {
	case leaf && n.state.Leaves.Wants(x.ID):
		n.admit(x, true) // a leaf that now belongs on its other side too
	case !leaf && rooted && p != nil:
		// A joiner this node answered as root, which has answered our
		// probe: a leaf, and its other neighbours hear of it from this
		// node's leaf set, which they take a leaf's word for.
		n.admit(x, true)
		delete(n.rooted, x.ID)
		n.pushLeaves()
	case !leaf && rooted:
		n.probeFirst(x, m.Type == MsgAnnounce) // its announcement: the probe rides on the reply
	case !leaf && p != nil && p.vouched:
		n.admit(x, true)
	case !known && p != nil:
		n.admit(x, false) // it answered us: table and neighbourhood set
		if p.stranger && n.state.Leaves.Wants(x.ID) {
			n.askAboutLater(x)
		}
	case !known && m.Type == MsgProbeReply:
		// An answer to a probe of ours that other news from the node had
		// already settled (a node probed by a stranger probes it back
		// before it answers, and that probe settles the stranger's): it
		// was admitted then as far as the state takes it. Probing it
		// again would only repeat that.
	case !known:
		n.probeStranger(x, m.Type == MsgAnnounce)
		if m.Type == MsgHeartbeat && n.state.Leaves.Wants(x.ID) {
			// It takes us for its neighbour and we hold it nowhere (no
			// structure may take it even once it answers): our leaf set
			// shows it so, and it joins again through us (crossCheck),
			// so that its root vouches for it to our leaves.
			n.sendHeartbeat(x)
		}
	case !leaf && m.Type == MsgHeartbeat && n.state.Leaves.Wants(x.ID):
		// A node we hold but not as a leaf takes us for its neighbour, and
		// we would take it as a leaf: our leaves are asked about it again,
		// and it gets our leaf set, which shows it that we do not hold it,
		// so that it joins again (crossCheck, rejoin). Once per its
		// heartbeats.
		n.askAbout(x)
		n.sendHeartbeat(x)
	case e.Prox == routing.UnknownProximity || m.Type == MsgProbeReply || m.Type == MsgHeartbeat:
		if prox := n.env.Proximity(x); n.neighborsWant(routing.Entry{Handle: x, Prox: prox}) || inTable && e.Prox != prox {
			n.admit(x, leaf)
		}
	}
	switch x.ID {
	case n.left:
		n.leftAt = n.now
	case n.right:
		n.rightAt = n.now
	}
}

// probeStranger probes a node that sent a message unasked and is in none
// of our state, if the state would take it (see Admission). For an
// announcement the probe rides on the reply (FlagProbe; see onAnnounce).
func (n *Machine) probeStranger(x id.Handle, announced bool) {
	if n.probes[x.ID] != nil || n.candidates >= maxCandidateProbes {
		return
	}
	e := routing.Entry{Handle: x, Prox: n.knownProximity(x)}
	if !n.state.Leaves.Wants(x.ID) && !n.tableWants(e) && !n.neighborsWant(e) {
		return // the state would not take it: nothing to probe for
	}
	n.probeFirst(x, announced)
}

// knownProximity is the proximity of h without a measurement, where one
// would cost (ProximityCache); Proximity otherwise.
func (n *Machine) knownProximity(h id.Handle) uint32 {
	if c, ok := n.env.(ProximityCache); ok {
		return c.KnownProximity(h)
	}
	return n.env.Proximity(h)
}

// probeFirst probes x, which sent a message unasked, before it is
// admitted; for an announcement the probe rides on the reply (FlagProbe;
// see onAnnounce).
func (n *Machine) probeFirst(x id.Handle, announced bool) {
	if n.probes[x.ID] != nil || n.candidates >= maxCandidateProbes {
		return
	}
	n.stats.CandidateProbes++
	if !announced {
		n.startProbe(x, probe{candidate: true, stranger: true})
		return
	}
	n.addProbe(x, probe{candidate: true, stranger: true, unsent: true})
	p := n.probes[x.ID]
	p.seq = n.nextSeq()
	n.probeSeq[p.seq] = x.ID
	n.arm(n.now+n.cfg.ProbeTimeout, timerProbe, p.seq)
}

// probeOn makes m, a reply to h, carry the probe of h waiting to ride on
// one (FlagProbe), if there is one.
func (n *Machine) probeOn(m *Message, h id.Handle) {
	if p := n.probes[h.ID]; p != nil && p.unsent {
		p.unsent = false
		m.Flags |= FlagProbe
		m.Seq = p.seq
	}
}

// sendUnsentProbe sends the probe of h that no reply carried.
func (n *Machine) sendUnsentProbe(h id.Handle) {
	if p := n.probes[h.ID]; p != nil && p.unsent {
		p.unsent = false
		n.send(Message{Type: MsgProbe, To: p.h, Seq: p.seq, Sent: int64(n.now)})
	}
}

// askAboutLater asks about x (askAbout) a quarter of ProbeTimeout from
// now, if it is not a leaf by then: the word of a leaf that a root's push
// (pushLeaves) or its own admission gave is usually on its way, and most
// asks would be wasted.
func (n *Machine) askAboutLater(x id.Handle) {
	if len(n.vouchWait) >= maxCandidateProbes {
		return
	}
	if n.vouchWait == nil {
		n.vouchWait = map[uint64]id.Handle{}
	}
	seq := n.nextSeq()
	n.vouchWait[seq] = x
	n.arm(n.now+n.cfg.ProbeTimeout/4, timerVouch, seq)
}

func (n *Machine) onVouchTimer(seq uint64) {
	x, ok := n.vouchWait[seq]
	if !ok {
		return
	}
	delete(n.vouchWait, seq)
	if len(n.vouchWait) == 0 {
		n.vouchWait = nil
	}
	if !n.state.Leaves.Contains(x.ID) && n.state.Leaves.Wants(x.ID) {
		n.askAbout(x)
	}
}

// askAbout asks our leaves nearest to x on either side of it (the
// nearest clockwise from x, and the nearest counter-clockwise) for their
// leaf sets, for a leaf's word that x, which answered us and would be a
// leaf, is a member (see Admission). Its neighbours hold it, and one of
// them may be a joiner itself.
func (n *Machine) askAbout(x id.Handle) {
	var after, before routing.Entry
	var da, db id.U128
	found := [2]bool{}
	ms := getEntries()
	defer putEntries(ms)
	*ms = n.state.Leaves.Members(*ms)
	for _, e := range *ms {
		cw, ccw := id.Clockwise(x.ID, e.ID), id.Clockwise(e.ID, x.ID)
		if cw.Less(ccw) {
			if !found[0] || cw.Less(da) {
				after, da, found[0] = e, cw, true
			}
		} else if !found[1] || ccw.Less(db) {
			before, db, found[1] = e, ccw, true
		}
	}
	if found[0] {
		n.send(Message{Type: MsgLeafRequest, To: after.Handle})
	}
	if found[1] && (!found[0] || before.ID != after.ID) {
		n.send(Message{Type: MsgLeafRequest, To: before.Handle})
	}
}

// pushLeaves sends this node's leaf set to every leaf (see Admission).
func (n *Machine) pushLeaves() {
	hs := n.leafHandles(true)
	ms := getEntries()
	*ms = n.state.Leaves.Members(*ms)
	for _, e := range *ms {
		n.send(Message{Type: MsgLeafReply, To: e.Handle, Handles: hs})
	}
	putEntries(ms)
}

// admit puts h into the routing table and neighbourhood set with its
// measured proximity, and, if leaf, into the leaf set, raising Update
// upcalls for leaf-set changes.
func (n *Machine) admit(h id.Handle, leaf bool) {
	if h.ID == n.self.ID {
		return
	}
	e := routing.Entry{Handle: h, Prox: n.env.Proximity(h)}
	n.considerDiverse(e) // table and neighbourhood set (diversity.go)
	if !leaf {
		return
	}
	added, evicted := n.state.Leaves.Consider(e)
	if added {
		n.notifyLeaf(h, true)
		if _, ok := n.ackOnAdmit[h.ID]; ok {
			delete(n.ackOnAdmit, h.ID)
			n.send(Message{Type: MsgAnnounceAck, To: h, Handles: n.leafHandles(true)})
		}
	}
	for _, e := range evicted {
		n.notifyLeaf(e.Handle, false)
	}
	if added || len(evicted) > 0 {
		n.watchNeighbors()
	}
}

// learnAll takes second-hand handles, from a current leaf's leaf set when
// fromLeaf, a routing-table row when row: a node that (named by a leaf)
// the leaf set would take is probed, and admitted when it answers (see
// Admission), and so are up to maxHoleProbes that would fill holes in the
// routing table and, from a row (the exchanges that exist to improve
// proximity), up to maxBetterProbes that would be better table or
// neighbourhood entries than those held. A node already being
// probed is vouched for as a leaf by a leaf's word.
//
// Only candidates that would still be leaves with every candidate in this
// message admitted are probed as leaves: a leaf set with a hole "wants"
// any node on that side, and probing all of them cost ~140 probes per
// failed node in a 10% mass failure (bench/sim), against ~30 this way.
func (n *Machine) learnAll(hs []id.Handle, fromLeaf, row bool) {
	buf := getEntries()
	defer putEntries(buf)
	es := *buf
	for _, h := range hs {
		// Known leaves and table entries have nothing to gain (proximity is
		// refreshed first-hand) unless the leaf set wants them on another
		// side; skipping them first saves a proximity lookup per handle on
		// every heartbeat.
		if h.ID == n.self.ID ||
			(n.state.Leaves.Contains(h.ID) || n.state.Table.Contains(h.ID)) && !n.state.Leaves.Wants(h.ID) {
			continue
		}
		if len(n.dead) > 0 && n.recentlyDead(h.ID) && (!fromLeaf || n.now-n.dead[h.ID] < n.cfg.HeartbeatInterval) {
			// A leaf's word readmits a node declared failed (after a
			// partition heals, say), but not within a heartbeat of the
			// verdict: a leaf that names it then has not heard yet.
			continue
		}
		es = append(es, routing.Entry{Handle: h, Prox: n.env.Proximity(h)})
	}
	*buf = es
	if len(es) == 0 {
		return
	}
	var leaves []routing.Entry
	if fromLeaf {
		leaves = n.state.Leaves.Preview(es)
	}
	holes, better := 0, 0 // probes for a table hole, for a better entry, in this message
	for _, e := range es {
		asLeaf := containsHandle(leaves, e.ID)
		if asLeaf && n.state.Leaves.Contains(e.ID) {
			n.admit(e.Handle, true) // already a leaf (on the other side): trusted
			continue
		}
		hole := false
		if !asLeaf {
			if r, c, ok := n.state.Table.Position(e.ID); ok {
				if _, probing := n.slotProbes[r<<8|c]; probing {
					continue // another candidate for this slot is being probed
				}
				_, taken := n.state.Table.Get(r, c)
				hole = !taken
			}
			if hole && !n.tableWants(e) && !n.neighborsWant(e) {
				continue // the address diversity bound would refuse it: no probe for nothing
			}
			switch {
			case hole && holes < maxHoleProbes:
				holes++
			case hole:
				continue
			case !row || better >= maxBetterProbes || !n.tableWants(e) && !n.neighborsWant(e):
				continue
			default:
				better++
			}
		}
		if p := n.probes[e.ID]; p != nil {
			p.vouched = p.vouched || asLeaf
			continue
		}
		if n.candidates >= maxCandidateProbes {
			continue
		}
		n.stats.CandidateProbes++
		n.startProbe(e.Handle, probe{candidate: true, vouched: asLeaf})
	}
}

func (n *Machine) recentlyDead(x id.ID) bool {
	at, ok := n.dead[x]
	return ok && n.now-at < n.cfg.DeadRetention
}

// watchNeighbors tracks the immediate neighbours on each side, restarting
// the silence clock when one changes.
func (n *Machine) watchNeighbors() {
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	n.hasLeft, n.hasRight = len(l) > 0, len(r) > 0
	if n.hasLeft && l[0].ID != n.left {
		n.left, n.leftAt = l[0].ID, n.now
	}
	if n.hasRight && r[0].ID != n.right {
		n.right, n.rightAt = r[0].ID, n.now
	}
}

// startProbe sends a probe to h and arms its timeout.
func (n *Machine) startProbe(h id.Handle, p probe) {
	n.addProbe(h, p)
	n.sendProbe(n.probes[h.ID])
}

// addProbe records a probe of h (not yet sent).
func (n *Machine) addProbe(h id.Handle, p probe) {
	p.h = h
	if n.probes == nil {
		n.probes, n.probeSeq = getProbeMaps()
	}
	if p.candidate {
		n.candidates++
		if r, c, ok := n.state.Table.Position(h.ID); ok {
			slot := r<<8 | c
			if _, taken := n.slotProbes[slot]; !taken {
				if n.slotProbes == nil {
					n.slotProbes = getSlotProbes()
				}
				n.slotProbes[slot] = h.ID
				p.slot = slot + 1
			}
		}
	}
	q := probePool.Get().(*probe)
	*q = p
	n.probes[h.ID] = q
}

func (n *Machine) sendProbe(p *probe) {
	p.seq = n.nextSeq()
	n.probeSeq[p.seq] = p.h.ID
	n.send(Message{Type: MsgProbe, To: p.h, Seq: p.seq, Sent: int64(n.now)})
	n.arm(n.now+n.cfg.ProbeTimeout, timerProbe, p.seq)
}

// expectReply watches a node we just sent a message that asks for a
// reply, as if it were probed: a would-be leaf (vouched for as one) is
// probed again and declared failed if it never answers, so that a joiner's
// activation passes over it; any other is forgotten. Its reply admits it
// (heard).
func (n *Machine) expectReply(h id.Handle, leaf bool) {
	if n.probes[h.ID] != nil {
		if leaf {
			n.probes[h.ID].vouched = true
		}
		return
	}
	n.addProbe(h, probe{candidate: !leaf, vouched: leaf})
	p := n.probes[h.ID]
	p.seq = n.nextSeq()
	n.probeSeq[p.seq] = h.ID
	n.arm(n.now+n.cfg.ProbeTimeout, timerProbe, p.seq)
}

// endProbe settles a probe: the node answered.
func (n *Machine) endProbe(p *probe) {
	delete(n.probeSeq, p.seq)
	n.dropProbe(p.h.ID)
}

// dropProbe forgets the probe of x, whose record goes back to probePool:
// no caller uses it afterwards. Emptied maps are not kept by the node:
// most of the time a node has no probe in flight, and Go maps never
// shrink, so a hundred thousand simulated nodes kept the maps of their
// largest burst (a join's leaf probes); a nil map also answers len and
// lookups without touching memory of its own. They go back to a pool
// shared by every node of the process.
func (n *Machine) dropProbe(x id.ID) {
	if p := n.probes[x]; p != nil && p.candidate {
		n.candidates--
		if p.slot > 0 && n.slotProbes[p.slot-1] == x {
			delete(n.slotProbes, p.slot-1)
			if len(n.slotProbes) == 0 {
				slotProbeMaps.Put(n.slotProbes)
				n.slotProbes = nil
			}
		}
	}
	if p := n.probes[x]; p != nil {
		delete(n.probes, x)
		*p = probe{}
		probePool.Put(p)
	}
	if len(n.probes) == 0 && n.probes != nil {
		putProbeMaps(n.probes, n.probeSeq)
		n.probes, n.probeSeq = nil, nil
	}
}

// suspect starts probing h: until it answers, routing avoids it; if it
// never does, it is declared failed. notify says whether the failure was
// detected here first-hand (and is worth telling the leaf set).
func (n *Machine) suspect(h id.Handle, notify bool) {
	if p := n.probes[h.ID]; p != nil {
		if !p.candidate {
			p.suspect = true
			p.notify = p.notify || notify
		}
		return
	}
	n.stats.Suspected++
	n.startProbe(h, probe{suspect: true, notify: notify})
}

func (n *Machine) onProbeTimeout(seq uint64) {
	x, ok := n.probeSeq[seq]
	if !ok {
		return
	}
	delete(n.probeSeq, seq)
	p := n.probes[x]
	if p == nil || p.seq != seq {
		return
	}
	if p.candidate {
		n.dropProbe(x)
		return
	}
	p.tries++
	if !p.suspect {
		p.suspect = true
		n.stats.Suspected++
	}
	if p.tries > n.cfg.ProbeRetries {
		h, notify, leaves := p.h, p.notify, p.leaves
		n.dropProbe(x)
		n.declareDead(h, notify, leaves)
		return
	}
	n.sendProbe(p)
}

// declareDead removes a failed node from all state and starts repairs.
func (n *Machine) declareDead(h id.Handle, notify bool, leaves []id.Handle) {
	n.stats.DeclaredDead++
	// Every verdict keeps the node out of the routing table and
	// neighbourhood set when offered second-hand, for DeadRetention: those
	// are admitted unverified, and other nodes' stale rows would bring a
	// failed (or malicious, silent) node straight back. Leaf candidates are
	// exempt (see learnAll): they are probed before admission, so a live
	// node wrongly declared failed under heavy loss gets back into leaf
	// sets within a heartbeat.
	if n.dead == nil {
		n.dead = map[id.ID]time.Duration{}
	}
	n.dead[h.ID] = n.now
	n.watchFailed(h)
	if n.state.Leaves.Contains(h.ID) || n.state.Table.Contains(h.ID) {
		n.sawFailure()
	}
	// Only a leaf's failure is news to our leaf set: the failed node's
	// other leaves are among ours. A distant routing-table entry's is not.
	// The notice carries our leaf set (without the failed node): most of
	// our leaves find in it the node that takes the failed one's place in
	// theirs, and repair from it instead of asking a leaf of their own
	// (see onSuspect).
	if wasLeaf := n.remove(h, leaves); notify && wasLeaf {
		hs := n.leafHandles(true)
		for _, e := range n.state.Leaves.Members(nil) {
			n.send(Message{Type: MsgSuspect, To: e.Handle, Subject: h, Handles: hs})
		}
	}
}

// remove deletes h from all state and repairs what it leaves behind: the
// leaf set from the farthest live leaves, a routing-table hole from the
// same row (or later rows).
func (n *Machine) remove(h id.Handle, leaves []id.Handle) (wasLeaf bool) {
	row, col, inTable := n.state.Table.Position(h.ID)
	inTable = inTable && n.state.Table.Contains(h.ID)
	onLeft := containsHandle(n.state.Leaves.Left(), h.ID)
	onRight := containsHandle(n.state.Leaves.Right(), h.ID)
	if wasLeaf = n.state.Remove(h.ID); wasLeaf {
		n.notifyLeaf(h, false)
		n.watchNeighbors()
		if !n.repairLeavesFrom(leaves) {
			n.repairLeaves(onLeft, onRight)
		}
	}
	if inTable {
		n.repairHole(row, col)
	}
	return wasLeaf
}

// repairLeavesFrom repairs the leaf set from the leaf set a leaf sent
// with its notice of the failure (leaves, nil if none): if it holds a node
// the leaf set would now take, that node is probed as a leaf's word makes
// it (learnAll), and no leaf needs asking. Reports whether it did.
func (n *Machine) repairLeavesFrom(leaves []id.Handle) bool {
	if len(leaves) == 0 {
		return false
	}
	es := make([]routing.Entry, 0, len(leaves))
	for _, h := range leaves {
		if h.ID != n.self.ID && !n.state.Leaves.Contains(h.ID) && !n.recentlyDead(h.ID) {
			es = append(es, routing.Entry{Handle: h})
		}
	}
	if len(n.state.Leaves.Preview(es)) == 0 {
		return false
	}
	n.learnAll(leaves, true, false)
	return true
}

// repairLeaves asks the farthest live leaf on each side that lost a member
// for its leaf set (Pastry paper 2.4): its other side holds the nodes just
// beyond ours.
func (n *Machine) repairLeaves(left, right bool) {
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	var asked id.ID
	for i, side := range [][]routing.Entry{l, r} {
		if len(side) == 0 || i == 0 && !left || i == 1 && !right {
			continue
		}
		far := side[len(side)-1].Handle
		if far.ID == asked {
			continue
		}
		asked = far.ID
		n.stats.LeafRepairRequests++
		n.send(Message{Type: MsgLeafRequest, To: far})
	}
}

func containsHandle(es []routing.Entry, x id.ID) bool {
	for _, e := range es {
		if e.ID == x {
			return true
		}
	}
	return false
}

// repairHole refills routing-table slot (row, col) after its entry failed:
// first from nodes already known (the leaf and neighbourhood sets), then by
// asking a random entry of the same row for its row, and, while the slot
// stays empty, other entries and then entries of later rows (Pastry paper
// 2.4), up to holeRequests requests.
func (n *Machine) repairHole(row, col int) {
	known := n.state.Leaves.Members(nil)
	known = append(known, n.state.Neighbors.Members()...)
	n.considerAllDiverse(known)
	if _, ok := n.state.Table.Get(row, col); ok {
		return
	}
	if !n.rowDense(row) {
		return
	}
	if n.holes == nil {
		n.holes = map[[2]int]uint8{}
	}
	n.holes[[2]int{row, col}] = holeRequests
	n.askForHole(row, col)
}

const holeRequests = 1

// rowDense reports whether a slot of routing-table row r is expected to
// have at least two candidates (nodes with that prefix), from the
// overlay's size estimated by the leaf set's density (sizeBits): a
// hole in a sparser row was most likely its slot's only node, which no
// row request can replace; the periodic row exchange fills it if it can.
func (n *Machine) rowDense(r int) bool {
	size, ok := n.sizeBits()
	return ok && n.cfg.B*(r+1)+1 <= size
}

// askForHole sends one row request for a hole, spending one of its tries.
func (n *Machine) askForHole(row, col int) {
	k := [2]int{row, col}
	left := n.holes[k]
	if left == 0 {
		delete(n.holes, k)
		return
	}
	n.holes[k] = left - 1
	// Try 1 asks the same row; later tries may go on to later rows.
	first := row
	if left < holeRequests {
		first = row + int(holeRequests-left)
	}
	for r := first; r < n.state.Table.Rows() && r <= row+holeRequests; r++ {
		if es := n.state.Table.Row(r, nil); len(es) > 0 {
			n.send(Message{Type: MsgRowRequest, To: es[n.randIndex(len(es))].Handle, Row: int16(row)})
			return
		}
	}
	delete(n.holes, k)
}

// onRowReply learns a row and follows up on holes in it.
func (n *Machine) onRowReply(m *Message) {
	n.learnAll(m.Handles, false, true)
	for k := range n.holes {
		if k[0] != int(m.Row) {
			continue
		}
		if _, ok := n.state.Table.Get(k[0], k[1]); ok {
			delete(n.holes, k)
		}
	}
	// Follow up in a deterministic order (map order is random).
	var open [][2]int
	for k := range n.holes {
		if k[0] == int(m.Row) {
			open = append(open, k)
		}
	}
	sortHoles(open)
	for _, k := range open {
		n.askForHole(k[0], k[1])
	}
}

func sortHoles(hs [][2]int) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && (hs[j][0] < hs[j-1][0] || hs[j][0] == hs[j-1][0] && hs[j][1] < hs[j-1][1]); j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// probeState checks the routing-table and neighbourhood entries that are
// not leaves (heartbeats watch those) for liveness, so that each is checked
// at least once per StateProbeInterval (the paper's periodic contact of the
// neighbourhood set; MSPastry's table probing). Each table entry has a
// deadline: when it takes its slot, a random time within the next
// interval; after first-hand evidence that it is alive, half an interval
// after its last message or a whole one after its last probe reply (see
// heard). An entry is probed when its deadline passes, so an entry that
// talks to us (probes us, acknowledges our hops) is not probed at all, and
// one that stops is probed at most half an interval after its last
// message. Neighbourhood-set members outside the table are probed round
// robin, a share on every heartbeat.
func (n *Machine) probeState() {
	if n.cfg.StateProbeInterval <= 0 {
		return
	}
	iv := n.tableProbeInterval()
	if gen := n.state.Table.Generation(); gen != n.probeGen || n.now >= n.probeDue || iv < n.scanIv {
		due := time.Duration(1<<63 - 1)
		n.state.Table.UpdateAlive(func(e routing.Entry, until time.Duration) time.Duration {
			switch {
			case until == 0, until > n.now+iv: // new, or due by a longer period than now
				until = n.now + time.Duration(n.env.Uint64()%uint64(iv))
			case n.now >= until:
				n.probeEntry(e) // its reply sets a new deadline; if none comes, it is removed
				until = n.now + n.cfg.HeartbeatInterval
			}
			due = min(due, until)
			return until
		})
		n.probeGen, n.probeDue, n.scanIv = gen, due, iv
	}
	nb := n.state.Neighbors.Members()
	if len(nb) == 0 {
		return
	}
	// Not at the tuned period: the neighbourhood set does not route, and
	// the tuning is for the lookups' loss rate (tuning.go).
	ticks := max(1, int(n.cfg.StateProbeInterval/n.cfg.HeartbeatInterval))
	for range (len(nb) + ticks - 1) / ticks {
		n.probeCursor = (n.probeCursor + 1) % len(nb)
		if e := nb[n.probeCursor]; !n.state.Table.Contains(e.ID) {
			n.probeEntry(e)
		}
	}
}

// probeEntry probes a routing-state entry that is not a leaf and is not
// being probed already.
func (n *Machine) probeEntry(e routing.Entry) {
	if n.probes[e.ID] == nil && !n.state.Leaves.Contains(e.ID) {
		n.startProbe(e.Handle, probe{})
	}
}

// onHeartbeatTimer sends the leaf set to both immediate neighbours and
// probes a neighbour that has gone silent. (MSPastry sends heartbeats to
// the left neighbour only. Tried here: the farthest left leaf is then in no
// heartbeat a node receives, and when its watcher fails with it, nobody
// tells the node; proptest's crash-repair property found leaf sets that
// kept a dead member for good.)
func (n *Machine) onHeartbeatTimer() {
	if n.status != StatusJoined {
		return
	}
	n.arm(n.now+n.cfg.HeartbeatInterval, timerHeartbeat, 0)
	n.tuneProbing()
	for x, at := range n.dead {
		if n.now-at >= n.cfg.DeadRetention {
			delete(n.dead, x)
		}
	}
	if len(n.dead) == 0 {
		n.dead = nil // see dropProbe
	}
	n.expireRelays()
	n.checkWatched()
	n.recheckLeaves()
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	if len(l) == 0 && len(r) == 0 {
		return
	}
	n.probeState()
	// Right side, then left side, each in full (a node can be on both).
	hs := make([]id.Handle, 0, len(l)+len(r))
	for _, e := range r {
		hs = append(hs, e.Handle)
	}
	for _, e := range l {
		hs = append(hs, e.Handle)
	}
	hb := Message{Type: MsgHeartbeat, Handles: hs, Row: int16(len(r))}
	if len(l) > 0 {
		hb.To = l[0].Handle
		n.send(hb)
		if n.now-n.leftAt > n.cfg.NeighborSilence {
			n.suspect(l[0].Handle, true)
		}
	}
	if len(r) > 0 && (len(l) == 0 || r[0].ID != l[0].ID) {
		hb.To = r[0].Handle
		n.send(hb)
		if n.now-n.rightAt > n.cfg.NeighborSilence {
			n.suspect(r[0].Handle, true)
		}
	}
}

// sendHeartbeat sends the leaf set to h as a heartbeat does.
func (n *Machine) sendHeartbeat(h id.Handle) {
	l, r := n.state.Leaves.Left(), n.state.Leaves.Right()
	hs := make([]id.Handle, 0, len(l)+len(r))
	for _, e := range r {
		hs = append(hs, e.Handle)
	}
	for _, e := range l {
		hs = append(hs, e.Handle)
	}
	n.send(Message{Type: MsgHeartbeat, To: h, Handles: hs, Row: int16(len(r))})
}

// onRowExchangeTimer asks a random entry of every non-empty row for its
// copy of that row: better-proximity entries replace ours, holes fill.
func (n *Machine) onRowExchangeTimer() {
	if n.status != StatusJoined {
		return
	}
	n.arm(n.now+n.cfg.RowExchangeInterval, timerRowExchange, 0)
	// An empty row (a hole the size of a row, common with b=1) is asked of
	// an entry of the next non-empty row below it, whose row r fits ours.
	rows := n.state.Table.Rows()
	var es []routing.Entry
	for r := 0; r < rows; r++ {
		es = n.state.Table.Row(r, es[:0])
		for q := r + 1; len(es) == 0 && q < rows; q++ {
			es = n.state.Table.Row(q, es[:0])
		}
		if len(es) == 0 {
			return // no deeper entries: nothing more to ask
		}
		n.send(Message{Type: MsgRowRequest, To: es[n.randIndex(len(es))].Handle, Row: int16(r)})
	}
}

// onSuspect checks a failure another node reported, by probing the
// subject; reports are never trusted on their own. A report from a leaf
// (which found the subject dead itself, and tells its leaf set) is
// evidence enough to skip the retries: one unanswered probe declares the
// subject failed, and routing avoids it meanwhile. If this node was about
// to tell its own leaf set of the same failure, the report's sender has
// told most of it already.
func (n *Machine) onSuspect(from, subject id.Handle, leaves []id.Handle) {
	if subject.ID == n.self.ID || !n.state.Knows(subject.ID) {
		return
	}
	if !n.state.Leaves.Contains(from.ID) {
		n.suspect(subject, false)
		return
	}
	if n.state.Leaves.Contains(subject.ID) {
		leaves = append([]id.Handle(nil), leaves...)
	} else {
		leaves = nil
	}
	if p := n.probes[subject.ID]; p != nil {
		if !p.candidate {
			p.suspect = true
			p.notify = false
			p.tries = max(p.tries, n.cfg.ProbeRetries)
			p.leaves = leaves
		}
		return
	}
	n.stats.Suspected++
	n.startProbe(subject, probe{suspect: true, tries: n.cfg.ProbeRetries, leaves: leaves})
}

// onLeave removes a node that said it is leaving (the transport vouches
// that the message is from that node).
func (n *Machine) onLeave(h id.Handle) {
	if n.dead == nil {
		n.dead = map[id.ID]time.Duration{}
	}
	n.dead[h.ID] = n.now
	if p := n.probes[h.ID]; p != nil {
		n.endProbe(p)
	}
	n.watchFailed(h)
	n.remove(h, nil)
}

// Leave tells the leaf set and neighbourhood set that this node is leaving,
// and stops the node.
func (n *Machine) Leave(now time.Duration) error {
	if n.status != StatusJoined {
		return ErrNotJoined
	}
	n.advance(now)
	seen := map[id.ID]bool{}
	for _, es := range [][]routing.Entry{n.state.Leaves.Members(nil), n.state.Neighbors.Members()} {
		for _, e := range es {
			if !seen[e.ID] {
				seen[e.ID] = true
				n.send(Message{Type: MsgLeave, To: e.Handle})
			}
		}
	}
	n.status = StatusLeft
	n.timers.h = n.timers.h[:0]
	n.pending, n.probes, n.probeSeq = nil, nil, nil
	n.own.InFlight, n.candidates = 0, 0
	n.vouchWait = nil
	n.appTimers, n.watched = nil, nil
	return nil
}

// crossCheck compares a neighbour's leaf set, side by side, with ours: a
// leaf of ours that lies within the neighbour's range on one of its sides
// but that it does not list there has probably failed without our hearing
// of it (the failure notice went to a leaf set we were not in). Probe it;
// the omission alone proves nothing. rightCount is how many of hs are the
// neighbour's right side; a side shorter than L/2 claims every node on that
// side of the ring.
func (n *Machine) crossCheck(from id.Handle, hs []id.Handle, rightCount int) {
	if rightCount < 0 || rightCount > len(hs) {
		return
	}
	y := from.ID.U128()
	half := n.cfg.LeafSetSize / 2
	sides := [2][]id.Handle{hs[:rightCount], hs[rightCount:]}
	dist := func(side int, u id.U128) id.U128 {
		if side == 0 {
			return u.Sub(y)
		}
		return y.Sub(u)
	}
	listed := func(side []id.Handle, x id.ID) bool {
		for _, h := range side {
			if h.ID == x {
				return true
			}
		}
		return false
	}
	// A side shorter than L/2 claims every node on that side of the ring
	// when the other side is short too (a small overlay); beside a full
	// side it has a hole (a member just removed, its replacement still
	// being probed) and claims no more than its farthest member: during a
	// repair, those holes made live leaves beyond them suspects.
	small := len(sides[0]) < half && len(sides[1]) < half
	inside := func(k int, u id.U128) bool {
		side := sides[k]
		if len(side) < half && (small || len(side) == 0) {
			return small
		}
		return dist(k, u).Less(dist(k, side[len(side)-1].ID.U128()))
	}
	ms := getEntries() // a copy: suspect may change the leaf set
	defer putEntries(ms)
	*ms = n.state.Leaves.Members(*ms)
	for _, e := range *ms {
		if e.ID == from.ID || n.probes[e.ID] != nil {
			continue
		}
		u := e.ID.U128()
		for k, side := range sides {
			if inside(k, u) && !listed(side, e.ID) {
				n.suspect(e.Handle, false)
				break
			}
		}
	}
	// This node itself, within the neighbour's range but not in its leaf
	// set: the neighbour does not take it for a member. Joining again
	// makes the key's root take it, and tell its leaves (rejoin).
	for k, side := range sides {
		if inside(k, n.self.ID.U128()) && !listed(side, n.self.ID) {
			n.rejoin(from)
			return
		}
	}
}

// rejoin routes a join for this node's id through via, at most once per
// JoinTimeout, while the node is a member: its root takes it as a leaf
// and tells its leaves (onJoinAtRoot), which its neighbours take a leaf's
// word for (see Admission). The reply is learned from as a leaf's.
func (n *Machine) rejoin(via id.Handle) {
	if n.status != StatusJoined || n.rejoinAt != 0 && n.now-n.rejoinAt < n.cfg.JoinTimeout {
		return
	}
	n.rejoinAt, n.rejoinVia = n.now, via
	n.stats.Rejoins++
	n.joinNonce = n.env.Uint64() | 1
	m := Message{Type: MsgJoin, Key: n.self.ID, Origin: n.self, Sent: n.stamp(),
		Payload: binary.BigEndian.AppendUint64(nil, n.joinNonce)}
	n.seen.add(fingerprint(&m), 0)
	n.forwardTo(&m, via, 0)
}

// recheckLeaves looks, on every heartbeat timer, for the closest node we
// hold but not as a leaf that the leaf set would take: a node whose
// admission waits for a leaf's word. Our leaves are asked about it; if it
// is still waiting at the next heartbeat, no leaf of ours holds it (after
// a partition, say, each side's ring holds only its own), and this node
// joins again through it, so that its ring's root for this node's id
// takes this node and tells its leaves (rejoin); that node does the same
// towards ours.
func (n *Machine) recheckLeaves() {
	var cands []routing.Entry
	add := func(e routing.Entry) {
		if !n.state.Leaves.Contains(e.ID) && n.state.Leaves.Wants(e.ID) && !containsHandle(cands, e.ID) {
			cands = append(cands, e)
		}
	}
	n.state.ForEachTableNearLeaves(func(_, _ int, e routing.Entry) bool { add(e); return true }) // no other entry is wanted
	for _, e := range n.state.Neighbors.Members() {
		add(e)
	}
	for _, e := range n.state.Leaves.Preview(cands) {
		if n.state.Leaves.Contains(e.ID) {
			continue
		}
		if e.ID == n.rechecked {
			n.rejoin(e.Handle)
		} else {
			n.askAbout(e.Handle)
		}
		n.rechecked = e.ID
		return
	}
	n.rechecked = id.ID{}
}
