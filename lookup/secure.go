package lookup

import (
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Secure lookups (Castro et al., OSDI 2002, sections 4 and 5): the same
// lookup, in a mode that routes through the constrained routing tables
// (core.FlagSecure), runs the routing failure test on the root's answer
// and asks the answer's witnesses (witness.go) whether they know a node
// closer to the key than its root, and when the test or the witnesses
// fail, when no answer comes within Options.SecureTimeout, or always
// when the operation asks for it (StartOptions.Redundant), falls back to
// redundant routing:
//
//   - a round sends Options.Redundancy copies of a probe for the key, each
//     through a different first hop (the origin's leaf-set members, then
//     its constrained-table entries: neighbour-set anycast), each routed
//     securely towards the key;
//   - every node a copy reaches whose leaf set covers the key (the last
//     hops, and the root) sends the origin a claim: its id and its leaf
//     set, signed when routed, verified as an answer is;
//   - when the round's Options.RoundTimeout is up, the origin takes the
//     union of the ids in the verified claims (and in the answer, if one
//     came), picks the id closest to the key as the root, and checks the
//     union's neighbourhood of the key with the failure test; it stops
//     when the test passes and at least two claims name that root as the
//     closest id they know (minAgreeing), after Options.Rounds rounds in
//     any case.
//
// Nodes cannot make up ids (ids are certified; the simulator's attackers
// report only real ones), so the id closest to the key in the union is
// the key's root whenever one honest node near the key got a copy and
// its claim came back: attackers can leave ids out of what they report,
// not add closer ones.

// StartOptions ask for more than a plain lookup (StartWith).
type StartOptions struct {
	// Secure routes the lookup through the constrained routing tables,
	// runs the failure test on the answer, and falls back to redundant
	// routing when it fails or no answer comes in time.
	Secure bool
	// Redundant, with Secure, runs redundant routing whatever the answer
	// (operations that must not trust one route, such as writes).
	Redundant bool
}

// secureState is a secure lookup's progress.
type secureState struct {
	redundant bool // redundant routing has started
	always    bool
	awaiting  bool // the answer waits for the density refresh
	answered  bool
	ansTest   FailureTest
	rounds    int
	probes    int
	answer    *answer // the routed answer, once verified
	claims    map[id.ID]id.Handle
	closest   map[id.ID]id.ID   // by claimer: the id of its claim closest to the key
	sets      map[id.ID][]id.ID // by claimer: the ids it reported
	union     map[id.ID]struct{}
	test      FailureTest
	firstHops []id.Handle // the first hops used so far, by round
	wit       witnessState
}

// secureDefaults fills in the secure lookup's options.
func (o *Options) secureDefaults(leafSize int) {
	if o.SecureTimeout == 0 {
		o.SecureTimeout = 2 * time.Second
	}
	if o.RoundTimeout == 0 {
		o.RoundTimeout = 2 * time.Second
	}
	if o.Redundancy == 0 {
		o.Redundancy = max(1, leafSize/2)
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Witnesses == 0 {
		o.Witnesses = DefaultWitnesses
	}
}

// startSecure begins the secure part of lookup req: redundant routing at
// once if asked for, else a wait for the answer.
func (a *App) startSecure(req uint64, p *pending) {
	if p.sec.always {
		a.redundantRound(req, p)
		return
	}
	p.timer, _ = a.ep.After(a.opts.SecureTimeout, req)
}

// secureTimer: the answer (or its witnesses' replies) did not come in
// time, or a round is over.
func (a *App) secureTimer(req uint64, p *pending) {
	s := p.sec
	if s.answer != nil && !s.redundant {
		s.wit.expired = true // the witnesses that have not replied will not count
	}
	if s.awaiting { // the refresh did not end in time: test with what there is
		s.awaiting = false
		a.testAnswer(req, p)
		return
	}
	if !s.redundant {
		if s.answered {
			a.settle(req, p)
			return
		}
		a.redundantRound(req, p)
		return
	}
	if a.decide(p) || p.sec.rounds >= a.opts.Rounds {
		a.finishSecure(req, p)
		return
	}
	a.redundantRound(req, p)
}

// secureAnswer takes the verified answer of secure lookup req.
func (a *App) secureAnswer(req uint64, p *pending, ans *answer, sender id.Handle) {
	s := p.sec
	if s.answer != nil {
		return
	}
	s.answer = ans
	s.addClaim(p.key, sender, ans.leaves)
	if !s.redundant {
		// The witnesses are asked at once, beside the density refresh;
		// the timer now bounds their replies.
		a.askWitnesses(ans.req, p)
		a.ep.Cancel(p.timer)
		p.timer, _ = a.ep.After(a.opts.SecureTimeout, req)
	}
	if a.dens.refreshing {
		s.awaiting = true
		a.dens.waiters = append(a.dens.waiters, req)
		return
	}
	a.testAnswer(req, p)
}

// testAnswer runs the failure test on secure lookup req's answer, and
// ends the lookup if it passed, or starts redundant routing.
func (a *App) testAnswer(req uint64, p *pending) {
	s := p.sec
	ans := s.answer
	s.test = CheckRouteSpacing(ans.key, ans.root, ans.leaves, a.ownSpacing(), a.opts.Gamma)
	if root, ok := a.ringRoot(ans.key); ok {
		// This node knows every node: the root is checked, not estimated.
		s.test.Closest, s.test.Covers, s.test.Passed = ans.root == root, true, ans.root == root
	}
	s.ansTest, s.answered = s.test, true
	if s.redundant {
		return // its ids have joined the union; the round's end decides
	}
	a.settle(req, p)
}

// settle acts on secure lookup req's answer once it has been tested: it
// ends the lookup when the test and the witnesses passed it, starts
// redundant routing when either failed it, and otherwise waits for the
// witnesses (witness.go).
func (a *App) settle(req uint64, p *pending) {
	s := p.sec
	if s.redundant || !s.answered {
		return
	}
	w := &s.wit
	switch {
	case !s.test.Passed || s.always || w.settled() && !w.ok():
		a.ep.Cancel(p.timer)
		a.redundantRound(req, p)
	case w.settled():
		a.ep.Cancel(p.timer)
		a.finishSecure(req, p)
	}
}

// redundantRound sends the next round's copies.
func (a *App) redundantRound(req uint64, p *pending) {
	s := p.sec
	s.redundant = true
	s.rounds++
	hops := a.firstHops(s)
	probe := append([]byte{kindProbe}, appendRequest(nil, req)[1:]...)
	flags := core.FlagSecure
	if s.rounds > 1 && s.rounds == a.opts.Rounds {
		flags = 0 // the last round through the proximity tables
	}
	for i := range hops {
		if err := a.ep.RouteMessage(core.Message{Key: p.key, Flags: flags, Payload: probe}, &hops[i]); err == nil {
			s.probes++
		}
	}
	s.firstHops = append(s.firstHops, hops...)
	p.timer, _ = a.ep.After(a.opts.RoundTimeout, req)
}

// firstHops picks the next Options.Redundancy first hops not used yet:
// the leaf set's members, closest first, alternating sides, then the
// constrained table's entries (the proximity table's where there is no
// constrained table), row by row.
func (a *App) firstHops(s *secureState) []id.Handle {
	st := a.ep.State()
	var cands []id.Handle
	left, right := st.Leaves.Left(), st.Leaves.Right()
	for i := range max(len(left), len(right)) {
		if i < len(left) {
			cands = append(cands, left[i].Handle)
		}
		if i < len(right) {
			cands = append(cands, right[i].Handle)
		}
	}
	t := st.Constrained
	if t == nil {
		t = st.Table
	}
	for r := range t.Rows() {
		cands = t.AppendRowHandles(r, cands)
	}
	out := make([]id.Handle, 0, a.opts.Redundancy)
	for _, h := range cands {
		if len(out) == a.opts.Redundancy {
			break
		}
		used := slices.ContainsFunc(s.firstHops, func(x id.Handle) bool { return x.ID == h.ID }) ||
			slices.ContainsFunc(out, func(x id.Handle) bool { return x.ID == h.ID })
		if !used {
			out = append(out, h)
		}
	}
	return out
}

// addClaim adds a verified claim for key: from claimer, reporting
// leaves.
func (s *secureState) addClaim(key id.ID, claimer id.Handle, leaves []id.ID) {
	if s.claims == nil {
		s.claims, s.union, s.closest, s.sets = map[id.ID]id.Handle{}, map[id.ID]struct{}{}, map[id.ID]id.ID{}, map[id.ID][]id.ID{}
	}
	if _, ok := s.claims[claimer.ID]; !ok && len(s.claims) >= maxClaims {
		return // bounded: the nodes a lookup's probes reached could all claim
	}
	s.sets[claimer.ID] = append(slices.Clip(leaves), claimer.ID)
	s.claims[claimer.ID] = claimer
	s.union[claimer.ID] = struct{}{}
	best := claimer.ID
	for _, x := range leaves {
		s.union[x] = struct{}{}
		if id.Closer(key, x, best) {
			best = x
		}
	}
	s.closest[claimer.ID] = best
}

// agreeing is how many claims name root as the id closest to the key
// they know of, with a set that passes the failure test on its own (a
// set of colluders posing as the key's neighbourhood is too sparse to).
func (s *secureState) agreeing(key, root id.ID, mu, gamma float64) int {
	n := 0
	for c, x := range s.closest {
		if x == root && brackets(key, root, s.sets[c]) && CheckRouteSpacing(key, root, s.sets[c], mu, gamma).Passed {
			n++
		}
	}
	return n
}

// brackets reports whether set holds an id on the other side of the key
// from root at least as far from the key as root: a leaf set that
// reaches that far past the key holds every node between, so no node is
// closer to the key than root. An honest node whose leaf set ends just
// past the key, short of the true root on the far side, names the
// closest node it knows on its own side; this keeps its claim from
// agreeing with a suppressing fake root that names itself.
func brackets(key, root id.ID, set []id.ID) bool {
	d := id.RingDistance(key, root)
	if d.IsZero() {
		return true
	}
	side := id.Clockwise(key, root).Less(id.Clockwise(root, key))
	for _, z := range set {
		if z == root {
			continue
		}
		if zs := id.Clockwise(key, z).Less(id.Clockwise(z, key)); zs != side && !id.RingDistance(key, z).Less(d) {
			return true
		}
	}
	return false
}

// minAgreeing is how many claims must name the union's root before a
// round may end redundant routing early: every honest node whose leaf
// set covers the key names the true root, while an attacker that
// suppresses the nodes closer to the key than itself names itself, so a
// lone liar cannot end it; and a claim counts only if its own set passes
// the failure test, so fake roots that all report the same colluders
// cannot either. (Attackers that agree on one liar and all
// suppress the same nodes could; see docs/decisions/0067.)
const minAgreeing = 2

// maxClaims bounds the claimers one secure lookup keeps: four times the
// most copies it sends with the default options.
const maxClaims = 4 * 16 * 3

// decide runs the failure test on the union's neighbourhood of the key
// (its id closest to the key as the root, with half the leaf set's size
// closest on each side) and reports whether it passed and at least
// minAgreeing claims name that root.
func (a *App) decide(p *pending) bool {
	s := p.sec
	root, set, ok := s.pick(p.key, a.ep.Config().LeafSetSize/2)
	if !ok {
		return false
	}
	s.test = CheckRouteSpacing(p.key, root, set, a.ownSpacing(), a.opts.Gamma)
	if want, ok := a.ringRoot(p.key); ok {
		s.test.Closest, s.test.Covers, s.test.Passed = root == want, true, root == want
		return s.test.Passed
	}
	return s.test.Passed && s.agreeing(p.key, root, a.ownSpacing(), a.opts.Gamma) >= minAgreeing
}

// ringRoot returns key's root when this node's leaf set holds every node
// of the overlay (routing.LeafSet.Ring: a small overlay): the closest to
// the key of this node and its leaves. The failure test's density
// estimate is then not needed, and in an overlay of a few nodes it is
// poor (a handful of gaps, and a key in the ring's largest gap looks
// uncovered), so a secure lookup checks the answer's root against it
// instead.
func (a *App) ringRoot(key id.ID) (id.ID, bool) {
	ls := a.ep.State().Leaves
	if !ls.Ring() {
		return id.ID{}, false
	}
	root := a.ep.Self().ID
	for _, e := range ls.Members(nil) {
		if id.Closer(key, e.ID, root) {
			root = e.ID
		}
	}
	return root, true
}

// pick returns the union's id closest to key, and the half closest on
// each side of it (sorted), false if the union is empty.
func (s *secureState) pick(key id.ID, half int) (id.ID, []id.ID, bool) {
	if len(s.union) == 0 {
		return id.ID{}, nil, false
	}
	ids := make([]id.ID, 0, len(s.union))
	for x := range s.union {
		ids = append(ids, x)
	}
	slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })
	root := ids[0]
	for _, x := range ids[1:] {
		if id.Closer(key, x, root) {
			root = x
		}
	}
	i, _ := slices.BinarySearchFunc(ids, root, func(x, y id.ID) int { return x.Cmp(y) })
	set := []id.ID{root}
	n := len(ids)
	for k := 1; k <= half && k < n; k++ {
		set = append(set, ids[(i+k)%n])
		if j := ((i-k)%n + n) % n; j != (i+k)%n {
			set = append(set, ids[j])
		}
	}
	return root, ringSet(set), true
}

// finishSecure ends secure lookup req with the root it found: the
// answer's root when its test passed without redundant routing, else
// the union's id closest to the key; ErrTimeout when nothing came.
func (a *App) finishSecure(req uint64, p *pending) {
	delete(a.pending, req)
	s := p.sec
	if p.done == nil {
		return
	}
	ansTest := s.ansTest
	ansTest.Witnesses, ansTest.WitnessReplies, ansTest.Contradicted = s.wit.n, s.wit.replied, s.wit.contradicted
	ansTest.Passed = ansTest.Passed && s.wit.ok()
	res := Result{Key: p.key, Took: a.ep.Now() - p.start, Secure: true, Redundant: s.redundant,
		Rounds: s.rounds, Probes: s.probes, Claims: len(s.claims), FailureTest: s.test,
		AnswerTest: ansTest, Answered: s.answered}
	if !s.redundant {
		res.FailureTest = ansTest
	}
	if s.answer != nil {
		res.AnswerRoot = s.answer.root
	}
	if s.answer != nil {
		res.Hops, res.Path = int(s.answer.hops), s.answer.path
	}
	if !s.redundant {
		res.Root = s.claims[s.answer.root]
		res.Leaves = s.answer.leaves
		p.done(res, nil)
		return
	}
	root, set, ok := s.pick(p.key, a.ep.Config().LeafSetSize/2)
	if !ok {
		p.done(Result{}, ErrTimeout)
		return
	}
	res.Root = id.Handle{ID: root}
	if h, ok := s.claims[root]; ok {
		res.Root = h
	}
	res.Leaves = slices.DeleteFunc(set, func(x id.ID) bool { return x == root })
	p.done(res, nil)
}

// probe handles a probe of redundant routing at a node a copy reached:
// a node whose leaf set covers the key claims it; at the root the probe
// ends (m delivered here).
func (a *App) probe(m *core.Message, req uint64, delivered bool) {
	if m.Origin.ID == a.ep.Self().ID || !delivered && !a.ep.State().Leaves.Covers(m.Key) {
		return
	}
	ans := answer{kind: kindClaim, req: req, key: m.Key, hops: m.Hops, root: a.ep.Self().ID, leaves: ownLeaves(a.ep)}
	send(a.ep, m.Origin, ans.append(nil))
}
