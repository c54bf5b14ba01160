package core

import (
	"github.com/pastrynet/pastry/core/id"
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
// immediate neighbours have acknowledged its announcement (or been
// declared failed, or left its leaf set), then routes them again. Status reports
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
// keys towards one of them). Waiting for every leaf instead was measured
// in the loss scenarios (core/testdata/loss.txt): at 20% loss nearly
// every join then waited the whole ProbeTimeout, as one of its 8 leaves'
// announcement or acknowledgement was lost.
func (n *Node) startActivation() {
	n.activating = true
	n.awaiting = map[id.ID]struct{}{}
	for _, side := range [][]routing.Entry{n.state.Leaves.Left(), n.state.Leaves.Right()} {
		if len(side) > 0 {
			n.awaiting[side[0].ID] = struct{}{}
		}
	}
	n.arm(n.now+n.cfg.ProbeTimeout, timerActivate, n.joinAttempt)
	n.settleActivation(nil)
}

// hold keeps m for activation; it reports false when the hold is full.
func (n *Node) hold(m *Message) bool {
	if len(n.held) >= maxHeld {
		return false
	}
	n.held = append(n.held, *m)
	n.stats.Held++
	return true
}

// settleActivation strikes off the leaves that have acknowledged the
// announcement (m, when it is their MsgAnnounceAck), that were declared
// failed or that are no longer leaves, and activates when none is left.
func (n *Node) settleActivation(m *Message) {
	if m != nil && m.Type == MsgAnnounceAck {
		delete(n.awaiting, m.From.ID)
	}
	for x := range n.awaiting {
		if _, dead := n.dead[x]; dead || !n.state.Leaves.Contains(x) {
			delete(n.awaiting, x)
		}
	}
	if len(n.awaiting) == 0 {
		n.activate()
	}
}

// activate ends the wait: the held messages are routed again from here,
// which delivers them here unless a node closer to their keys is known by
// now.
func (n *Node) activate() {
	n.activating, n.awaiting = false, nil
	held := n.held
	n.held = nil
	for i := range held {
		n.forward(&held[i], 0)
	}
}
