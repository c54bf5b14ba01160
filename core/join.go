package core

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The join (Pastry paper, section 2.4), hardened against a hostile peer:
//
//   - The joiner's join carries a random nonce. Every node on the join's
//     path appends the rows of its table that fit the joiner (the first
//     hop also its neighbourhood set) to the join itself, and the root
//     adds its leaf set and answers with a JoinReply.
//   - The reply travels back along the join's path: each node sends it to
//     the node it got the join from (which it remembers for JoinTimeout),
//     so the first hop hands it to the joiner, the node that sent it the
//     join. A node that names another as the join's origin gets the answer
//     itself: a join cannot be reflected at a node that did not ask.
//   - The joiner takes a reply only for its current join (the nonce), and
//     only from the node it sent the join to. It admits nothing of it at
//     once: it announces itself to the nodes the reply names that its
//     state would take, and admits each when it answers (the same
//     first-hand admission as every other node's; see heard).
//   - The root remembers the joiners it answered, so that it takes a
//     joiner's announcement into its leaf set at once: the one first-hand
//     vouching for a newcomer, from which its other neighbours learn it.

// maxRelays bounds the joins a node remembers passing on (and the joiners
// it answered as root); beyond it further joins are not taken until
// entries expire.
const maxRelays = 1024

// joinRelay is a join this node passed on: where its reply goes back.
type joinRelay struct {
	prev id.Handle
	at   time.Duration
}

// Join starts joining the overlay that bootstrap belongs to. Pick a
// bootstrap node close by proximity: the first hop's neighbourhood set
// seeds this node's. Progress shows in Status.
func (n *Machine) Join(now time.Duration, bootstrap id.Handle) error {
	if n.status != StatusIdle {
		return fmt.Errorf("%w: join while %s", ErrState, n.status)
	}
	if bootstrap.ID == n.self.ID {
		return fmt.Errorf("%w: bootstrap node has this node's id", ErrState)
	}
	n.advance(now)
	n.status = StatusJoining
	n.bootstrap = bootstrap
	n.joinAttempt = 0
	n.sendJoin()
	n.flush()
	return nil
}

func (n *Machine) sendJoin() {
	n.joinAttempt++
	n.joinNonce = n.env.Uint64() | 1
	m := Message{Type: MsgJoin, Key: n.self.ID, Origin: n.self, Sent: n.stamp(),
		Payload: binary.BigEndian.AppendUint64(nil, n.joinNonce)}
	n.seen.add(fingerprint(&m), 0)
	n.forwardTo(&m, n.bootstrap, 0)
	n.arm(n.now+n.cfg.JoinTimeout, timerJoin, n.joinAttempt)
}

func (n *Machine) onJoinTimeout(attempt uint64) {
	if n.status != StatusJoining || attempt != n.joinAttempt {
		return
	}
	if int(attempt) > n.cfg.JoinRetries {
		n.status = StatusIdle // gave up; the driver may Join again
		return
	}
	n.stats.JoinRetries++
	n.sendJoin()
}

// onJoinHop is a node on a join's path: it remembers where the join came
// from, adds the rows of its table the joiner can use (rows 0 to the
// length of their shared prefix; the first hop also its neighbourhood
// set) to the join, then routes it on or, at the root, answers it.
func (n *Machine) onJoinHop(m *Message) {
	fp := fingerprint(m)
	if _, ok := n.relays[fp]; !ok {
		if len(n.relays) >= maxRelays {
			n.expireRelays()
		}
		if len(n.relays) >= maxRelays {
			n.stats.Dropped++
			return // the joiner retries
		}
		if n.relays == nil {
			n.relays = map[uint64]joinRelay{}
		}
		n.relays[fp] = joinRelay{prev: m.From, at: n.now}
	}
	joiner := m.Origin
	l := id.SharedPrefixLen(n.self.ID, joiner.ID, n.cfg.B)
	hs := m.Handles[:len(m.Handles):len(m.Handles)] // shared with the received message: copy on append
	for r := 0; r <= l && r < n.state.Table.Rows(); r++ {
		hs = n.rowHandles(r, hs)
	}
	if m.From.ID == joiner.ID {
		for _, e := range n.state.Neighbors.Members() {
			hs = append(hs, e.Handle)
		}
	}
	hs = append(hs, n.self)
	m.Handles = dedupe(hs, joiner.ID, n.cfg.MaxHandles)
	n.forward(m, 0)
}

// onJoinAtRoot answers a join whose key this node is the root of: the
// rows gathered on the way and its leaf set, back to where the join came
// from.
func (n *Machine) onJoinAtRoot(m *Message) {
	// The leaf set first: kept whole under MaxHandles, and counted (Row),
	// as only it vouches for the joiner's leaves (see announce).
	leaves := dedupe(n.leafHandles(true), m.Origin.ID, n.cfg.MaxHandles)
	hs := append(leaves[:len(leaves):len(leaves)], m.Handles...)
	if n.state.Knows(m.Origin.ID) {
		// A node that answered us before joins again (rejoin): a leaf now,
		// and the leaves hear of it.
		if !n.state.Leaves.Contains(m.Origin.ID) {
			n.admit(m.Origin, true)
			n.pushLeaves()
		}
	} else {
		if n.rooted == nil {
			n.rooted = map[id.ID]time.Duration{}
		}
		if len(n.rooted) < maxRelays {
			n.rooted[m.Origin.ID] = n.now
		}
	}
	n.replyJoin(m, dedupe(hs, m.Origin.ID, n.cfg.MaxHandles), len(leaves))
}

// replyJoin sends the reply to join m back to where m came from: hs, of
// which the first leaves are the root and its leaf set.
func (n *Machine) replyJoin(m *Message, hs []id.Handle, leaves int) {
	fp := fingerprint(m)
	r, ok := n.relays[fp]
	if !ok {
		return
	}
	delete(n.relays, fp)
	// Acknowledged and sent once more if not, as a Send is: one loss on
	// the way back would cost the joiner a whole JoinTimeout.
	reply := Message{Type: MsgJoinReply, Key: m.Key, Origin: m.Origin, Sent: m.Sent, Payload: m.Payload, Handles: hs, Row: int16(leaves)}
	n.sendHop(&reply, r.prev, 0, false)
}

// dedupe drops duplicates and the joiner, and truncates to limit.
func dedupe(hs []id.Handle, drop id.ID, limit int) []id.Handle {
	out := hs[:0]
	for i, h := range hs {
		dup := h.ID == drop
		for _, g := range hs[:i] {
			if g.ID == h.ID {
				dup = true
				break
			}
		}
		if !dup && len(out) < limit {
			out = append(out, h)
		}
	}
	return out
}

// onJoinReply relays a join's reply back towards its joiner, or, at the
// joiner, completes the join.
func (n *Machine) onJoinReply(m *Message) {
	if m.Seq != 0 {
		n.send(Message{Type: MsgRouteAck, To: m.From, Seq: m.Seq})
	}
	if m.Origin.ID != n.self.ID {
		join := *m
		join.Type = MsgJoin // the reply names its join: origin, key, send time
		n.replyJoin(&join, m.Handles, int(m.Row))
		return
	}
	if n.status == StatusJoined && n.rejoinAt != 0 && m.From.ID == n.rejoinVia.ID && len(m.Payload) == 8 &&
		binary.BigEndian.Uint64(m.Payload) == n.joinNonce {
		// A rejoin's reply: the root and its leaf set first. The root takes
		// this node when it hears from it first-hand (onJoinAtRoot).
		n.learnAll(m.Handles[:m.Row], true, false)
		n.learnAll(m.Handles[m.Row:], false, false)
		if m.Row > 0 {
			n.send(Message{Type: MsgAnnounce, To: m.Handles[0], Flags: FlagWantReply})
		}
		return
	}
	if n.status != StatusJoining || m.From.ID != n.bootstrap.ID || len(m.Payload) != 8 ||
		binary.BigEndian.Uint64(m.Payload) != n.joinNonce {
		return // not the answer to this node's join, or not from where it sent it
	}
	n.becomeJoined()
	n.announce(m.Handles, int(m.Row))
	n.startActivation()
}

// announce tells the nodes the join's reply names that this node has
// joined: those the state would take (a trial state built from them
// shows which; its leaf set only from the first leaves, the root's). Leaf-set members are asked to reply, which admits them;
// routing-table entries of row r are asked for their row r, the second,
// locality phase of the join (Pastry paper section 2.5), which offers this
// node every node its row-r peers know for that row, so the
// proximity-closest can win each slot; their reply admits them too.
func (n *Machine) announce(hs []id.Handle, leaves int) {
	trial, _ := routing.NewState(n.self, n.cfg.B, n.cfg.LeafSetSize, n.cfg.NeighborhoodSize)
	es := make([]routing.Entry, 0, len(hs))
	vouched := 0 // es[:vouched] came from the root's leaf set
	for i, h := range hs {
		if h.ID != n.self.ID {
			es = append(es, routing.Entry{Handle: h, Prox: n.env.Proximity(h)})
			if i < leaves {
				vouched++
			}
		}
	}
	// Only the root's leaf set vouches for leaves: the rows of the other
	// nodes on the path go to the table and neighbourhood set.
	trial.Leaves.ConsiderAll(es[:vouched])
	if n.cfg.ConstrainedTable {
		trial.EnableConstrained()
	}
	trial.ConsiderTableAll(es)
	trial.Neighbors.ConsiderAll(es)
	n.joinLeaves = trial.Leaves
	seen := map[id.ID]bool{}
	visit := func(e routing.Entry, row int) {
		if seen[e.ID] {
			return
		}
		seen[e.ID] = true
		msg := Message{Type: MsgAnnounce, To: e.Handle}
		if trial.Leaves.Contains(e.ID) {
			msg.Flags = FlagWantReply
			n.expectReply(e.Handle, true)
		}
		if row >= 0 {
			msg.Flags |= FlagWantRow
			msg.Row = int16(row)
			if msg.Flags&FlagWantReply == 0 {
				n.expectReply(e.Handle, false)
			}
		}
		n.send(msg)
	}
	trial.Table.ForEach(func(r, _ int, e routing.Entry) bool { visit(e, r); return true })
	if trial.Constrained != nil {
		trial.Constrained.ForEach(func(r, _ int, e routing.Entry) bool { visit(e, r); return true })
	}
	for _, e := range trial.Leaves.Members(nil) {
		visit(e, -1)
	}
	for _, e := range trial.Neighbors.Members() {
		if !seen[e.ID] {
			seen[e.ID] = true
			n.expectReply(e.Handle, false)
			n.send(Message{Type: MsgAnnounce, To: e.Handle, Flags: FlagWantReply})
		}
	}
}

// onAnnounce: a node says it has joined. If this node answered its join
// as root, it is a leaf at once (heard admitted it); otherwise heard
// started probing it. Reply with the leaf set if asked or if it is a leaf
// by now, and with row Row if asked.
func (n *Machine) onAnnounce(m *Message) {
	defer n.sendUnsentProbe(m.From) // when no reply carried it
	ack := func() {
		r := Message{Type: MsgAnnounceAck, To: m.From, Handles: n.leafHandles(true)}
		n.probeOn(&r, m.From)
		n.send(r)
	}
	switch {
	case n.state.Leaves.Contains(m.From.ID):
		ack()
	case m.Flags&FlagWantReply != 0 && n.state.Leaves.Wants(m.From.ID):
		// A would-be leaf: it is answered once it is one, so that its
		// activation waits for this node to take it (activate.go).
		if len(n.ackOnAdmit) < maxRelays {
			if n.ackOnAdmit == nil {
				n.ackOnAdmit = map[id.ID]time.Duration{}
			}
			n.ackOnAdmit[m.From.ID] = n.now
		}
	case m.Flags&FlagWantReply != 0:
		ack()
	}
	if m.Flags&FlagWantRow != 0 && m.Row >= 0 && int(m.Row) < n.state.Table.Rows() {
		// Only row Row: sending rows 0..Row and the neighbourhood set as
		// well was measured (bench/sim, 1k and 10k nodes) to leave the
		// route/direct distance unchanged at 3x the cost.
		r := Message{Type: MsgRowReply, To: m.From, Row: m.Row, Handles: n.rowHandles(int(m.Row), nil)}
		n.probeOn(&r, m.From)
		n.send(r)
	}
}

// expireRelays forgets joins passed on, and joiners answered as root,
// longer ago than JoinTimeout.
func (n *Machine) expireRelays() {
	for fp, r := range n.relays {
		if n.now-r.at >= n.cfg.JoinTimeout {
			delete(n.relays, fp)
		}
	}
	if len(n.relays) == 0 {
		n.relays = nil
	}
	for _, m := range []map[id.ID]time.Duration{n.rooted, n.ackOnAdmit} {
		for x, at := range m {
			if n.now-at >= n.cfg.JoinTimeout {
				delete(m, x)
			}
		}
	}
	if len(n.rooted) == 0 {
		n.rooted = nil
	}
	if len(n.ackOnAdmit) == 0 {
		n.ackOnAdmit = nil
	}
}
