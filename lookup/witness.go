package lookup

import (
	"encoding/binary"
	"slices"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Witnesses of a secure lookup's answer (docs/decisions/0089). The
// failure test's density check cannot see suppression: an attacker near
// the key that answers as the root and reports the key's neighbourhood
// with every node closer to the key than itself left out reports a set
// as dense as the true one, short by one or two ids (Castro et al., OSDI
// 2002, section 5.2, say as much). But to be dense the set must name the
// real nodes around the key, honest ones among them, and every honest
// node near the key has the true root in its leaf set. So once the
// answer's set passes the closeness and coverage checks, the origin asks
// Options.Witnesses of the ids it reports, picked at random among the
// twice as many closest to the key, which id closest to the key they
// know: a witness request is routed securely to each witness's id, and
// the node it is delivered at replies to the origin with its closest id
// among itself and its leaf set, in an answer's format (straight, or
// routed and signed, as an answer is).
//
// The test passes only when every witness asked replied (the reply comes
// from the witness's own id: a colluder on a route can drop a request
// but cannot answer for the node) and no reply, from a witness or from
// whichever node a request reached, names an id closer to the key than
// the answer's root; otherwise, or when the replies are not all in within
// Options.SecureTimeout, redundant routing runs. Colluders asked vouch
// for the root, so a suppressing root passes only when every witness
// picked is a colluder: about F^Witnesses of the time (0.001 at F=0.25
// with 5), against about a third of the suppressing answers before.
//
// The witnesses are asked as soon as the answer comes, beside the density
// refresh when one runs; an honest overlay pays their routed requests and
// replies (about hops+1 messages each) on every secure lookup whose answer
// passes the first two checks.

// The witness request, routed to a witness's id (FlagSecure):
//
//	witness request: [11][request id u64][key 16]
//	witness reply:   [12] then as an answer (lookup.go), naming the replier
//	                 in the root field, its id closest to the key as its one leaf
const (
	kindWitnessRequest = 11
	kindWitnessReply   = 12
)

// DefaultWitnesses is Options.Witnesses' default.
const DefaultWitnesses = 5

// witnessState is the witnesses' progress for one secure lookup.
type witnessState struct {
	asked   map[id.ID]bool // the witnesses asked that have not replied
	n       int            // witnesses asked
	replied int
	// contradicted: a reply named an id closer to the key than the
	// answer's root; expired: the time for the replies is up.
	contradicted, expired bool
}

// ok reports whether the witnesses passed the answer: all replied, none
// contradicted it.
func (w *witnessState) ok() bool { return !w.contradicted && w.replied >= w.n }

// settled reports whether the witnesses' verdict is known.
func (w *witnessState) settled() bool { return w.contradicted || w.expired || w.replied >= w.n }

// askWitnesses sends the witness requests of secure lookup req, whose
// answer has come: none when the answer fails the closeness or coverage
// check anyway, when this node is the root or knows the whole ring, or
// when Options.Witnesses < 0.
func (a *App) askWitnesses(req uint64, p *pending) {
	s := p.sec
	ans := s.answer
	self := a.ep.Self().ID
	if a.opts.Witnesses < 0 || ans.root == self {
		return
	}
	if _, ok := a.ringRoot(ans.key); ok {
		return
	}
	if t := CheckRouteSpacing(ans.key, ans.root, ans.leaves, 1, a.opts.Gamma); !t.Closest || !t.Covers {
		return
	}
	ws := pickWitnesses(ans.key, ans.root, self, ans.leaves, a.opts.Witnesses, a.ep.Rand().IntN)
	msg := binary.BigEndian.AppendUint64([]byte{kindWitnessRequest}, req)
	msg = append(msg, ans.key[:]...)
	s.wit.asked = map[id.ID]bool{}
	for _, w := range ws {
		if a.ep.RouteMessage(core.Message{Key: w, Flags: core.FlagSecure, Payload: msg}, nil) == nil {
			s.wit.asked[w] = true
			s.wit.n++
		}
	}
}

// pickWitnesses picks k of the ids of set (not root, not self) among the
// 2k closest to key, at random (intn).
func pickWitnesses(key, root, self id.ID, set []id.ID, k int, intn func(int) int) []id.ID {
	cands := slices.DeleteFunc(ringSet(set), func(x id.ID) bool { return x == root || x == self })
	slices.SortStableFunc(cands, func(x, y id.ID) int {
		switch {
		case id.Closer(key, x, y):
			return -1
		case id.Closer(key, y, x):
			return 1
		}
		return 0
	})
	cands = cands[:min(len(cands), 2*k)]
	for i := range min(k, len(cands)) { // a partial Fisher-Yates shuffle
		j := i + intn(len(cands)-i)
		cands[i], cands[j] = cands[j], cands[i]
	}
	return cands[:min(k, len(cands))]
}

// witnessRequest answers a witness request delivered here: the id
// closest to the key among this node and its leaf set, to the origin.
func (a *App) witnessRequest(m *core.Message) {
	req, key, ok := parseWitnessRequest(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	closest := a.ep.Self().ID
	for _, e := range a.ep.State().Leaves.Members(nil) {
		if id.Closer(key, e.ID, closest) {
			closest = e.ID
		}
	}
	ans := answer{kind: kindWitnessReply, req: req, key: key, hops: m.Hops, root: a.ep.Self().ID, leaves: []id.ID{closest}}
	send(a.ep, m.Origin, ans.append(nil))
}

// witnessReply takes a verified witness reply for secure lookup req, from
// sender.
func (a *App) witnessReply(req uint64, p *pending, ans *answer, sender id.Handle) {
	s := p.sec
	if s.answer == nil || s.wit.asked == nil {
		return
	}
	w := &s.wit
	for _, x := range ans.leaves {
		if id.Closer(p.key, x, s.answer.root) {
			w.contradicted = true
		}
	}
	if w.asked[sender.ID] {
		delete(w.asked, sender.ID)
		w.replied++
	}
	a.settle(req, p)
}

// parseWitnessRequest reads a witness request: the lookup's id and key.
func parseWitnessRequest(b []byte) (uint64, id.ID, bool) {
	var key id.ID
	if len(b) != 1+8+id.Len || b[0] != kindWitnessRequest {
		return 0, key, false
	}
	copy(key[:], b[9:])
	return binary.BigEndian.Uint64(b[1:]), key, true
}
