package lookup

import (
	"fmt"
	"slices"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
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
)

var attackNames = []string{AttackDrop: "drop", AttackMisroute: "misroute", AttackFakeRoot: "fake-root", AttackSuppress: "suppress"}

func (a Attack) String() string {
	if int(a) < len(attackNames) && attackNames[a] != "" {
		return attackNames[a]
	}
	return fmt.Sprintf("Attack(%d)", a)
}

// ParseAttack reads an attack's name: drop, misroute, fake-root or
// suppress.
func ParseAttack(s string) (Attack, error) {
	for i, name := range attackNames {
		if name != "" && name == s {
			return Attack(i), nil
		}
	}
	return 0, fmt.Errorf("lookup: attack %q, want drop, misroute, fake-root or suppress", s)
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
	ep   *core.Endpoint
	opts AdversaryOptions
}

var _ core.Application = (*Adversary)(nil)

// RegisterAdversary registers an Adversary on m under AppID.
func RegisterAdversary(m *core.Machine, opts AdversaryOptions) (*Adversary, error) {
	switch {
	case opts.Attack < AttackDrop || opts.Attack > AttackSuppress:
		return nil, fmt.Errorf("lookup: %v, want one of the attacks", opts.Attack)
	case opts.Colluders == nil:
		return nil, fmt.Errorf("lookup: an adversary needs its Colluders")
	case opts.Attack == AttackSuppress && opts.Known == nil:
		return nil, fmt.Errorf("lookup: the suppress attack needs Known")
	}
	if opts.LeafSize <= 0 {
		opts.LeafSize = m.Config().LeafSetSize
	}
	opts.LeafSize = min(opts.LeafSize, MaxAnswerLeaves)
	a := &Adversary{opts: opts}
	ep, err := m.RegisterApplication(AppID, a)
	if err != nil {
		return nil, err
	}
	a.ep = ep
	return a, nil
}

// Forward attacks a request this node would forward.
func (a *Adversary) Forward(m *core.Message, next *id.Handle) bool {
	req, ok := parseRequest(m.Payload)
	if !ok {
		return true
	}
	switch a.opts.Attack {
	case AttackMisroute:
		if a.opts.Colluders.Contains(m.From.ID) {
			*next = a.ep.Self() // misrouted here: deliver, and answer (Deliver)
			return true
		}
		if c, ok := a.otherColluder(); ok {
			*next = c
			return true
		}
		return false
	case AttackFakeRoot, AttackSuppress:
		send(a.ep, m.Origin, reply(a.ep, m, req, a.fakeLeaves(m.Key)))
	}
	return false
}

// Deliver attacks a request delivered here (this node is the key's root,
// or a colluder misrouted it here).
func (a *Adversary) Deliver(m *core.Message) {
	req, ok := parseRequest(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	switch a.opts.Attack {
	case AttackMisroute:
		send(a.ep, m.Origin, reply(a.ep, m, req, ownLeaves(a.ep)))
	case AttackFakeRoot, AttackSuppress:
		send(a.ep, m.Origin, reply(a.ep, m, req, a.fakeLeaves(m.Key)))
	}
}

// Update is not used.
func (a *Adversary) Update(id.Handle, bool) {}

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
	if a.opts.Attack == AttackSuppress {
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
