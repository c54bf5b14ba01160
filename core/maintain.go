package core

import (
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
	// forget it if not (second-hand leaf-set candidates).
	candidate bool
	// notify: on failure, tell the leaf set (we detected it ourselves).
	notify bool
}

// heard handles first-hand evidence that msg.From is alive: settle a probe,
// forget a failure verdict, admit the node to routing state, refresh the
// neighbour watch. Joining senders are not admitted (they cannot route
// yet); a leaving one is about to be removed.
func (n *Machine) heard(m *Message) {
	x := m.From
	if p := n.probes[x.ID]; p != nil {
		n.endProbe(p)
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
	// A node already in our state only needs admitting again if the leaf
	// set now has room for it, or its proximity now earns it a
	// neighbourhood slot or changes its table entry. Most messages come
	// from nodes we know, so these checks are kept cheap: proximity (the
	// runtime measures it in the background; it may have been unknown at
	// admission) is looked at again only while the recorded one is
	// unknown, and on probe replies and heartbeats.
	alive := n.now + n.cfg.StateProbeInterval/2
	if m.Type == MsgProbeReply {
		alive = n.now + n.cfg.StateProbeInterval
	}
	e, inTable := n.state.Table.Alive(x.ID, alive)
	known := inTable
	if !known {
		e, known = n.state.Leaves.Lookup(x.ID)
		known = known || n.state.Neighbors.Contains(x.ID)
	}
	switch {
	case !known || n.state.Leaves.Wants(x.ID):
		n.admit(x)
	case e.Prox == routing.UnknownProximity || m.Type == MsgProbeReply || m.Type == MsgHeartbeat:
		if prox := n.env.Proximity(x); n.state.Neighbors.Wants(x.ID, prox) || inTable && e.Prox != prox {
			n.admit(x)
		}
	}
	switch x.ID {
	case n.left:
		n.leftAt = n.now
	case n.right:
		n.rightAt = n.now
	}
}

// admit puts h into the routing state with its measured proximity and
// raises Update upcalls for leaf-set changes.
func (n *Machine) admit(h id.Handle) {
	if h.ID == n.self.ID {
		return
	}
	added, evicted := n.state.Consider(routing.Entry{Handle: h, Prox: n.env.Proximity(h)})
	if added {
		n.notifyLeaf(h, true)
	}
	for _, e := range evicted {
		n.notifyLeaf(e.Handle, false)
	}
	if added || len(evicted) > 0 {
		n.watchNeighbors()
	}
}

// admitAll is admit for many handles, publishing routing state once.
func (n *Machine) admitAll(hs []id.Handle) {
	es := make([]routing.Entry, 0, len(hs))
	for _, h := range hs {
		if h.ID != n.self.ID {
			es = append(es, routing.Entry{Handle: h, Prox: n.env.Proximity(h)})
		}
	}
	added, evicted := n.state.ConsiderAll(es)
	for _, e := range added {
		n.notifyLeaf(e.Handle, true)
	}
	for _, e := range evicted {
		n.notifyLeaf(e.Handle, false)
	}
	if len(added) > 0 || len(evicted) > 0 {
		n.watchNeighbors()
	}
}

// learnAll takes second-hand handles: the routing table and neighbourhood
// set take them as they are (a dead entry costs one hop timeout); a would-be
// leaf is probed first, and admitted when it answers.
//
// Only candidates that would still be leaves with every candidate in this
// message admitted are probed: a leaf set with a hole "wants" any node on
// that side, and probing all of them cost ~140 probes per failed node in a
// 10% mass failure (bench/sim), against ~30 this way.
func (n *Machine) learnAll(hs []id.Handle) {
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
		es = append(es, routing.Entry{Handle: h, Prox: n.env.Proximity(h)})
	}
	*buf = es
	if len(es) == 0 {
		return
	}
	fresh := es
	if len(n.dead) > 0 {
		fresh = nil
		for _, e := range es {
			if !n.recentlyDead(e.ID) {
				fresh = append(fresh, e)
			}
		}
	}
	for _, e := range n.state.Leaves.Preview(es) {
		if n.state.Leaves.Contains(e.ID) {
			// Already a leaf (on the other side): trusted, no probe.
			n.admit(e.Handle)
			continue
		}
		if n.probes[e.ID] == nil {
			n.stats.CandidateProbes++
			n.startProbe(e.Handle, probe{candidate: true})
		}
	}
	if len(fresh) > 0 {
		n.state.Table.ConsiderAll(fresh)
		n.state.Neighbors.ConsiderAll(fresh)
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
	p.h = h
	pp := &p
	if n.probes == nil {
		n.probes, n.probeSeq = map[id.ID]*probe{}, map[uint64]id.ID{}
	}
	n.probes[h.ID] = pp
	n.sendProbe(pp)
}

func (n *Machine) sendProbe(p *probe) {
	p.seq = n.nextSeq()
	n.probeSeq[p.seq] = p.h.ID
	n.send(Message{Type: MsgProbe, To: p.h, Seq: p.seq, Sent: int64(n.now)})
	n.arm(n.now+n.cfg.ProbeTimeout, timerProbe, p.seq)
}

// expectReply watches a leaf we just sent a reply-wanted message to, as if
// it were probed.
func (n *Machine) expectReply(h id.Handle) {
	if n.probes[h.ID] != nil {
		return
	}
	if n.probes == nil {
		n.probes, n.probeSeq = map[id.ID]*probe{}, map[uint64]id.ID{}
	}
	p := &probe{h: h, seq: n.nextSeq()}
	n.probes[h.ID] = p
	n.probeSeq[p.seq] = h.ID
	n.arm(n.now+n.cfg.ProbeTimeout, timerProbe, p.seq)
}

// endProbe settles a probe: the node answered.
func (n *Machine) endProbe(p *probe) {
	delete(n.probeSeq, p.seq)
	n.dropProbe(p.h.ID)
}

// dropProbe forgets the probe of x. Emptied maps are dropped, not kept:
// most of the time a node has no probe in flight, and Go maps never
// shrink, so a hundred thousand simulated nodes kept the maps of their
// largest burst (a join's leaf probes); a nil map also answers len and
// lookups without touching memory of its own.
func (n *Machine) dropProbe(x id.ID) {
	delete(n.probes, x)
	if len(n.probes) == 0 {
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
		n.dropProbe(x)
		n.declareDead(p.h, p.notify)
		return
	}
	n.sendProbe(p)
}

// declareDead removes a failed node from all state and starts repairs.
func (n *Machine) declareDead(h id.Handle, notify bool) {
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
	// Only a leaf's failure is news to our leaf set: the failed node's
	// other leaves are among ours. A distant routing-table entry's is not.
	if wasLeaf := n.remove(h); notify && wasLeaf {
		for _, e := range n.state.Leaves.Members(nil) {
			n.send(Message{Type: MsgSuspect, To: e.Handle, Subject: h})
		}
	}
}

// remove deletes h from all state and repairs what it leaves behind: the
// leaf set from the farthest live leaves, a routing-table hole from the
// same row (or later rows).
func (n *Machine) remove(h id.Handle) (wasLeaf bool) {
	row, col, inTable := n.state.Table.Position(h.ID)
	inTable = inTable && n.state.Table.Contains(h.ID)
	onLeft := containsHandle(n.state.Leaves.Left(), h.ID)
	onRight := containsHandle(n.state.Leaves.Right(), h.ID)
	if wasLeaf = n.state.Remove(h.ID); wasLeaf {
		n.notifyLeaf(h, false)
		n.watchNeighbors()
		n.repairLeaves(onLeft, onRight)
	}
	if inTable {
		n.repairHole(row, col)
	}
	return wasLeaf
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
	n.state.Table.ConsiderAll(known)
	if _, ok := n.state.Table.Get(row, col); ok {
		return
	}
	if n.holes == nil {
		n.holes = map[[2]int]uint8{}
	}
	n.holes[[2]int{row, col}] = holeRequests
	n.askForHole(row, col)
}

const holeRequests = 3

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
	n.learnAll(m.Handles)
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
	iv := n.cfg.StateProbeInterval
	if gen := n.state.Table.Generation(); gen != n.probeGen || n.now >= n.probeDue {
		due := time.Duration(1<<63 - 1)
		n.state.Table.UpdateAlive(func(e routing.Entry, until time.Duration) time.Duration {
			switch {
			case until == 0:
				until = n.now + time.Duration(n.env.Uint64()%uint64(iv))
			case n.now >= until:
				n.probeEntry(e) // its reply sets a new deadline; if none comes, it is removed
				until = n.now + n.cfg.HeartbeatInterval
			}
			due = min(due, until)
			return until
		})
		n.probeGen, n.probeDue = gen, due
	}
	nb := n.state.Neighbors.Members()
	if len(nb) == 0 {
		return
	}
	ticks := max(1, int(iv/n.cfg.HeartbeatInterval))
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
	for x, at := range n.dead {
		if n.now-at >= n.cfg.DeadRetention {
			delete(n.dead, x)
		}
	}
	if len(n.dead) == 0 {
		n.dead = nil // see dropProbe
	}
	n.checkWatched()
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
// subject; reports are never trusted on their own.
func (n *Machine) onSuspect(subject id.Handle) {
	if subject.ID == n.self.ID || !n.state.Knows(subject.ID) {
		return
	}
	n.suspect(subject, false)
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
	n.remove(h)
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
	n.own.InFlight = 0
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
	for _, e := range n.state.Leaves.Members(nil) {
		if e.ID == from.ID || n.probes[e.ID] != nil {
			continue
		}
		u := e.ID.U128()
		for k, side := range sides {
			inside := len(side) < half
			if !inside {
				inside = dist(k, u).Less(dist(k, side[len(side)-1].ID.U128()))
			}
			if inside && !listed(side, e.ID) {
				n.suspect(e.Handle, false)
				break
			}
		}
	}
}
