package core

import (
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Activation, after MSPastry (Castro, Costa and Rowstron, "Performance and
// dependability of structured peer-to-peer overlays", 2004): a joiner that
// has its join reply is in the overlay's state as soon as its
// announcements arrive, but a neighbour that has not yet processed its
// announcement still takes the joiner's keys for its own. Were the joiner
// to deliver at once, two nodes would be roots of the same key for about
// a round trip. So the joiner acknowledges and forwards routed messages
// as any member does, but holds those it is the root of until its
// immediate neighbours have shown they know of it (a neighbour declared
// failed or unreachable is passed over for the next leaf), then routes
// them again. Status reports
// StatusJoining until then, so a driver's Join returns only when the node
// is a root its neighbours agree on. ProbeTimeout bounds the wait: a leaf
// that never answers is probed as any silent leaf is.

// maxHeld bounds the routed messages held while activating; beyond it
// they are delivered at once (a root its neighbours may not yet agree on
// beats a message lost).
const maxHeld = 256

// startActivation waits for the immediate neighbours' acknowledgements of
// the announcement: only they would take this node's keys for their own
// without it (any other node that does not know of this one routes those
// keys towards one of them). A neighbour declared failed, or that the
// transport could not reach (Unsent), is passed over for the next leaf on
// its side, which was announced to as well. Waiting for every leaf
// instead was measured in the loss scenarios (core/testdata/loss.txt): at
// 20% loss nearly every join then waited the whole ProbeTimeout, as one
// of its 8 leaves' announcement or acknowledgement was lost.
func (n *Machine) startActivation() {
	n.activating = true
	n.answered = map[id.ID]uint8{}
	if n.joinLeaves != nil {
		for _, e := range n.joinLeaves.Members(nil) {
			n.answered[e.ID] = leafAsked // announce() asked every would-be leaf to reply
		}
	}
	n.arm(n.now+n.cfg.ProbeTimeout, timerActivate, n.joinAttempt)
	n.settleActivation(nil)
}

// What activation knows of a leaf (Node.answered).
const (
	leafAsked       uint8 = iota + 1 // sent an announcement asking for a reply
	leafKnowsUs                      // its reply, announcement or heartbeat came
	leafUnreachable                  // the announcement could not be sent
)

// hold keeps m for activation; it reports false when the hold is full.
func (n *Machine) hold(m *Message) bool {
	if len(n.held) >= maxHeld {
		return false
	}
	n.held = append(n.held, *m)
	n.stats.Held++
	return true
}

// announceUnsent passes over a neighbour the announcement could not reach.
func (n *Machine) announceUnsent(to id.ID) {
	if n.answered[to] == leafAsked { // only leaves are asked
		n.answered[to] = leafUnreachable
	}
	n.settleActivation(nil)
}

// settleActivation records m when it shows that its sender has this node
// in its state (its reply to the announcement, its own announcement, a
// heartbeat), and activates once, on each side, the closest leaf neither
// declared failed nor unreachable is known to know of this node. A closest
// leaf learned since the announcement (another joiner, say) is announced
// to now.
func (n *Machine) settleActivation(m *Message) {
	// Only leaves are recorded: answered stays as small as the leaf set
	// whoever sends announcements meanwhile.
	if m != nil && (m.Type == MsgAnnounceAck || m.Type == MsgAnnounce || m.Type == MsgHeartbeat) && n.state.Leaves.Contains(m.From.ID) {
		n.answered[m.From.ID] = leafKnowsUs
	}
	ready := true
	buf := getEntries()
	defer putEntries(buf)
	for right := range 2 {
		*buf = n.closestLeaves(right == 1, (*buf)[:0])
		for _, e := range *buf {
			st := n.answered[e.ID]
			if _, dead := n.dead[e.ID]; dead || st == leafUnreachable {
				continue // passed over: the next leaf stands for this side
			}
			if st == 0 {
				n.answered[e.ID] = leafAsked
				n.expectReply(e.Handle, true)
				n.send(Message{Type: MsgAnnounce, To: e.Handle, Flags: FlagWantReply})
			}
			ready = ready && st == leafKnowsUs
			break
		}
	}
	if ready {
		n.activate()
	}
}

// activate ends the wait: the held messages are routed again from here,
// which delivers them here unless a node closer to their keys is known by
// now.
func (n *Machine) activate() {
	n.activating, n.answered, n.joinLeaves = false, nil, nil
	held := n.held
	n.held = nil
	for i := range held {
		n.forward(&held[i], 0)
	}
}

// closestLeaves lists, closest first, the nodes one side of the leaf set
// holds or will hold: the leaves, and the would-be leaves the join's
// reply named that have not answered yet (they are admitted when they do),
// appended to dst (a pooled buffer: it ran on every input while
// activating, and its list was a fifth of the simulator's allocation).
func (n *Machine) closestLeaves(right bool, dst []routing.Entry) []routing.Entry {
	side := func(ls *routing.LeafSet) []routing.Entry {
		if right {
			return ls.Right()
		}
		return ls.Left()
	}
	have := side(n.state.Leaves)
	if n.joinLeaves == nil {
		return append(dst, have...)
	}
	self := n.self.ID.U128()
	dist := func(x id.ID) id.U128 {
		if right {
			return x.U128().Sub(self)
		}
		return self.Sub(x.U128())
	}
	out := append(dst, have...)
	for _, e := range side(n.joinLeaves) {
		if containsHandle(out, e.ID) {
			continue
		}
		i := len(out)
		for i > 0 && dist(e.ID).Less(dist(out[i-1].ID)) {
			i--
		}
		out = append(out, routing.Entry{})
		copy(out[i+1:], out[i:])
		out[i] = e
	}
	return out
}
