package lookup

import (
	"fmt"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Attack is what a malicious node does with the lookup requests routed
// through it (Adversary).
type Attack uint8

// The attacks of Castro et al. (OSDI 2002) on plain routing, and the
// fake root's two ways to pass the routing failure test.
const (
	// AttackDrop acknowledges the hop (the core does, before the
	// application sees the message) and does nothing more.
	AttackDrop Attack = iota + 1
	// AttackMisroute forwards the request to a random colluder instead of
	// the next hop; the colluder that receives a misrouted request answers
	// as its root, reporting its own leaf set.
	AttackMisroute
	// AttackFakeRoot answers as the root, naming itself, and reports as
	// its leaf set the colluders closest to the key: the densest set it
	// can make of its own nodes.
	AttackFakeRoot
	// AttackSuppress answers as the root, naming itself, and reports as
	// its leaf set the nodes closest to the key, honest ones included,
	// with every one closer to the key than itself suppressed: a set that
	// passes the closeness and coverage checks and is as dense as the
	// adversary can make it (AdversaryOptions.Known).
	AttackSuppress
	// AttackPoison poisons routing state: every PoisonInterval the node
	// fills its own routing table's slots and its neighbourhood set with
	// colluders, posing as the nearest by proximity (0), so that the rows
	// and sets it hands out (join replies, row exchanges, announcements'
	// replies, all the core's, unchanged) name only colluders where it has
	// any; and it drops the lookups routed through it, so that the
	// poisoned entries cost the lookups that take them.
	AttackPoison
	// AttackMix: each attacker node runs one of the other five attacks,
	// chosen from its own random stream as it registers.
	AttackMix
)

// PoisonInterval is how often a poisoning node refills its routing
// state with colluders.
const PoisonInterval = 10 * time.Second

var attackNames = []string{AttackDrop: "drop", AttackMisroute: "misroute", AttackFakeRoot: "fake-root", AttackSuppress: "suppress",
	AttackPoison: "poison", AttackMix: "mix"}

func (a Attack) String() string {
	if int(a) < len(attackNames) && attackNames[a] != "" {
		return attackNames[a]
	}
	return fmt.Sprintf("Attack(%d)", a)
}

// ParseAttack reads an attack's name: drop, misroute, fake-root,
// suppress, poison or mix.
func ParseAttack(s string) (Attack, error) {
	for i, name := range attackNames {
		if name != "" && name == s {
			return Attack(i), nil
		}
	}
	return 0, fmt.Errorf("lookup: attack %q, want drop, misroute, fake-root, suppress, poison or mix", s)
}

// Colluders is the set of nodes an adversary controls, shared by all its
// nodes. Add nodes as they are created; lookups sort the set when it has
// changed.
type Colluders struct {
	hs     []id.Handle
	sorted bool
}

// Add adds h to the set.
func (c *Colluders) Add(h id.Handle) { c.hs = append(c.hs, h); c.sorted = false }

// Len is the number of colluders.
func (c *Colluders) Len() int { return len(c.hs) }

func (c *Colluders) sort() {
	if !c.sorted {
		slices.SortFunc(c.hs, func(a, b id.Handle) int { return a.ID.Cmp(b.ID) })
		c.sorted = true
	}
}

// Contains reports whether x is a colluder.
func (c *Colluders) Contains(x id.ID) bool {
	c.sort()
	_, ok := slices.BinarySearchFunc(c.hs, x, func(h id.Handle, x id.ID) int { return h.ID.Cmp(x) })
	return ok
}

// AdversaryOptions configure an Adversary.
type AdversaryOptions struct {
	Attack    Attack
	Colluders *Colluders // required; this node among them
	// LeafSize is how many ids a fake root reports (MaxAnswerLeaves at
	// most); default the node's leaf-set size.
	LeafSize int
	// Known, with AttackSuppress, returns the sorted ids of every node the
	// adversary knows of. The simulator passes every live node's: an
	// adversary that knows the whole overlay, the strongest.
	Known func() []id.ID
}

// Adversary is the lookup application of a malicious node: registered
// under AppID in place of App on the nodes an attacker controls, in the
// simulator and in tests, so that no honest node's code has a path for
// attackers. It never starts lookups; it attacks the requests it
// receives, and lets everything else through.
type Adversary struct {
	ep     *core.Endpoint
	opts   AdversaryOptions
	attack Attack // opts.Attack, or with AttackMix the one drawn
}

var (
	_ core.Application  = (*Adversary)(nil)
	_ core.TimerHandler = (*Adversary)(nil)
)

// Attack is what this node does: AdversaryOptions.Attack, or with
// AttackMix the attack drawn for it.
func (a *Adversary) Attack() Attack { return a.attack }

// RegisterAdversary registers an Adversary on m under AppID.
func RegisterAdversary(m *core.Machine, opts AdversaryOptions) (*Adversary, error) {
	switch {
	case opts.Attack < AttackDrop || opts.Attack > AttackMix:
		return nil, fmt.Errorf("lookup: %v, want one of the attacks", opts.Attack)
	case opts.Colluders == nil:
		return nil, fmt.Errorf("lookup: an adversary needs its Colluders")
	case (opts.Attack == AttackSuppress || opts.Attack == AttackMix) && opts.Known == nil:
		return nil, fmt.Errorf("lookup: the suppress attack needs Known")
	}
	if opts.LeafSize <= 0 {
		opts.LeafSize = m.Config().LeafSetSize
	}
	opts.LeafSize = min(opts.LeafSize, MaxAnswerLeaves)
	a := &Adversary{opts: opts, attack: opts.Attack}
	ep, err := m.RegisterApplication(AppID, a)
	if err != nil {
		return nil, err
	}
	a.ep = ep
	if a.attack == AttackMix {
		a.attack = AttackDrop + Attack(ep.Rand().IntN(int(AttackPoison)))
	}
	if a.attack == AttackPoison {
		_, _ = ep.After(PoisonInterval, 0)
	}
	return a, nil
}

// Timer poisons this node's routing state again.
func (a *Adversary) Timer(uint64) {
	a.poison()
	_, _ = a.ep.After(PoisonInterval, 0)
}

// poison puts a colluder in every slot of the node's routing table for
// which it knows one (the first colluder in the slot's block of ids),
// and colluders in its neighbourhood set, all at proximity 0, which no
// honest entry beats.
func (a *Adversary) poison() {
	st := a.ep.State()
	c := a.opts.Colluders
	c.sort()
	if len(c.hs) < 2 {
		return
	}
	self := a.ep.Self().ID
	b := st.B()
	t := st.Table
	var es []routing.Entry
	cmp := func(h id.Handle, u id.U128) int { return h.ID.U128().Cmp(u) }
	for r := range t.Rows() {
		w := id.Bits - b*(r+1)
		if w < 0 || r > 0 && t.RowFill(r-1) == 0 && t.RowFill(r) == 0 {
			break
		}
		for d := range t.Cols() {
			p := self.WithDigit(r, b, d).U128()
			lo := p.Sub(p.Low(w))
			i, _ := slices.BinarySearchFunc(c.hs, lo, cmp)
			for ; i < len(c.hs) && c.hs[i].ID.U128().Sub(lo).Less(id.Pow2(w)) && !c.hs[i].ID.U128().Less(lo); i++ {
				if h := c.hs[i]; h.ID != self {
					es = append(es, routing.Entry{Handle: h, Prox: 0})
					break
				}
			}
		}
	}
	t.ConsiderAll(es)
	for range min(32, len(c.hs)) {
		if h := c.hs[a.ep.Rand().IntN(len(c.hs))]; h.ID != self {
			st.Neighbors.Consider(routing.Entry{Handle: h, Prox: 0})
		}
	}
}

// Forward attacks a request (or a probe of redundant routing) this node
// would forward.
func (a *Adversary) Forward(m *core.Message, next *id.Handle) bool {
	if len(m.Payload) > 0 && m.Payload[0] == kindFillProbe {
		return a.forwardFill(m, next)
	}
	if len(m.Payload) > 0 && m.Payload[0] == kindWitnessRequest {
		// A witness request for a lookup's answer (witness.go): droppers
		// and poisoners drop it, misrouters send it to a colluder (who
		// vouches, but is not the witness asked); fake roots and
		// suppressors let it go on: the witness replies from its own id,
		// which they cannot forge, and a request that does not arrive
		// fails the answer as a contradiction does.
		switch a.attack {
		case AttackDrop, AttackPoison:
			return false
		case AttackMisroute:
			return a.misroute(m, next)
		}
		return true
	}
	req, kind, ok := parseAnyRequest(m.Payload)
	if !ok {
		return true
	}
	switch a.attack {
	case AttackMisroute:
		return a.misroute(m, next)
	case AttackFakeRoot, AttackSuppress:
		send(a.ep, m.Origin, replyKind(a.ep, m, req, kind, a.fakeLeaves(m.Key)))
	}
	return false
}

// Deliver attacks a request delivered here (this node is the key's root,
// or a colluder misrouted it here).
func (a *Adversary) Deliver(m *core.Message) {
	if len(m.Payload) > 0 && m.Payload[0] == kindLeavesRequest && a.attack != AttackDrop {
		// Asked for its leaf set to estimate the density with: it reports
		// every other id, to look twice as sparse and so raise the
		// asker's μ_p, which lets fake roots pass its test.
		var thin []id.ID
		for i, x := range ownLeaves(a.ep) {
			if i%2 == 0 {
				thin = append(thin, x)
			}
		}
		answerLeaves(a.ep, m, thin)
		return
	}
	if len(m.Payload) > 0 && m.Payload[0] == kindFillProbe {
		if a.attack != AttackDrop && a.attack != AttackPoison {
			a.answerFill(m)
		}
		return
	}
	if len(m.Payload) > 0 && m.Payload[0] == kindWitnessRequest {
		if a.attack != AttackDrop && a.attack != AttackPoison {
			a.vouch(m)
		}
		return
	}
	if len(m.Payload) == 1 && m.Payload[0] == kindHello && m.Type == core.MsgDirect {
		_ = a.ep.Send(m.From, []byte{kindHelloReply}) // glad to be taken
		return
	}
	req, kind, ok := parseAnyRequest(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	switch a.attack {
	case AttackMisroute:
		send(a.ep, m.Origin, replyKind(a.ep, m, req, kind, ownLeaves(a.ep)))
	case AttackFakeRoot, AttackSuppress:
		send(a.ep, m.Origin, replyKind(a.ep, m, req, kind, a.fakeLeaves(m.Key)))
	}
}

// Update is not used.
func (a *Adversary) Update(id.Handle, bool) {}

// forwardFill attacks a fill probe of a constrained table (fill.go)
// this node would forward: droppers and poisoners drop it, misrouters
// send it to a colluder, fake roots answer it at once with the
// colluders closest to the slot's point.
func (a *Adversary) forwardFill(m *core.Message, next *id.Handle) bool {
	switch a.attack {
	case AttackMisroute:
		return a.misroute(m, next)
	case AttackFakeRoot, AttackSuppress:
		a.answerFill(m)
	}
	return false
}

// misroute sends m to a colluder: here, when a colluder sent it (this node
// delivers and answers it: Deliver), else to another colluder. It reports
// false, forwarding m as routed, when there is no other colluder.
func (a *Adversary) misroute(m *core.Message, next *id.Handle) bool {
	if a.opts.Colluders.Contains(m.From.ID) {
		*next = a.ep.Self()
		return true
	}
	if c, ok := a.otherColluder(); ok {
		*next = c
		return true
	}
	return false
}

// answerFill answers a fill probe with the colluders of the slot's
// block closest to its point: the poisoned offer the fill must resist.
func (a *Adversary) answerFill(m *core.Message) {
	tag, row, ok := parseFillProbe(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	c := a.opts.Colluders
	c.sort()
	b := a.ep.State().B()
	var in []id.Handle
	i, _ := slices.BinarySearchFunc(c.hs, m.Key, func(h id.Handle, x id.ID) int { return h.ID.Cmp(x) })
	for j := i - maxFillAnswer; j < i+maxFillAnswer; j++ { // the colluders either side of the point
		if j >= 0 && j < len(c.hs) && id.SharedPrefixLen(c.hs[j].ID, m.Key, b) > row {
			in = append(in, c.hs[j])
		}
	}
	slices.SortFunc(in, func(x, y id.Handle) int {
		switch {
		case x.ID == y.ID:
			return 0
		case id.Closer(m.Key, x.ID, y.ID):
			return -1
		}
		return 1
	})
	_ = a.ep.Send(m.Origin, appendFillAnswer(nil, tag, in[:min(len(in), maxFillAnswer)]))
}

// vouch answers a witness request as a colluder: it names no node
// closer to the key than itself (it does not know which root the
// origin is checking, and any honest id it named could be closer than
// a suppressing colluder's), so it contradicts no colluder's answer that
// reported it.
func (a *Adversary) vouch(m *core.Message) {
	req, key, ok := parseWitnessRequest(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	self := a.ep.Self().ID
	ans := answer{kind: kindWitnessReply, req: req, key: key, hops: m.Hops, root: self, leaves: []id.ID{self}}
	send(a.ep, m.Origin, ans.append(nil))
}

// otherColluder picks a colluder other than this node at random.
func (a *Adversary) otherColluder() (id.Handle, bool) {
	hs := a.opts.Colluders.hs
	if len(hs) < 2 {
		return id.Handle{}, false
	}
	for {
		if h := hs[a.ep.Rand().IntN(len(hs))]; h.ID != a.ep.Self().ID {
			return h, true
		}
	}
}

// fakeLeaves is the leaf set a fake root reports for key.
func (a *Adversary) fakeLeaves(key id.ID) []id.ID {
	self := a.ep.Self().ID
	half := a.opts.LeafSize / 2
	if a.attack == AttackSuppress {
		// Nothing closer to the key than this node: from the key's
		// distance to this node outwards, on both sides.
		d := id.RingDistance(key, self)
		k := key.U128()
		return around(a.opts.Known(), k.Add(d), k.Sub(d), half, func(x id.ID) bool {
			return x != self && !id.Closer(key, x, self) // an id as far away on the other side can win the tie
		})
	}
	c := a.opts.Colluders
	c.sort()
	ids := make([]id.ID, len(c.hs))
	for i, h := range c.hs {
		ids[i] = h.ID
	}
	k := key.U128()
	return around(ids, k, k, half, func(x id.ID) bool { return x != self })
}

// around returns up to half ids of the sorted set ids clockwise from
// right (included) and up to half counter-clockwise from left
// (included), only ids keep accepts, each once.
func around(ids []id.ID, right, left id.U128, half int, keep func(id.ID) bool) []id.ID {
	if len(ids) == 0 {
		return nil
	}
	cmp := func(x id.ID, u id.U128) int { return x.U128().Cmp(u) }
	var out []id.ID
	i, _ := slices.BinarySearchFunc(ids, right, cmp) // first id >= right
	for n, taken := 0, 0; taken < half && n < len(ids); n++ {
		if x := ids[(i+n)%len(ids)]; keep(x) {
			out = append(out, x)
			taken++
		}
	}
	j, found := slices.BinarySearchFunc(ids, left, cmp)
	if !found {
		j-- // last id < left
	}
	for n, taken := 0, 0; taken < half && n < len(ids); n++ {
		if x := ids[((j-n)%len(ids)+len(ids))%len(ids)]; keep(x) && !slices.Contains(out, x) {
			out = append(out, x)
			taken++
		}
	}
	return out
}
