package lookup

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// The constrained table's secure fill (Castro et al., OSDI 2002, section
// 4.2; docs/decisions/0082). Slot (r, d) of a constrained table must hold
// the live node closest to the slot's point p (Point). The core offers
// the table every node it admits, and the table keeps the closest
// offered; but which nodes are offered is up to the nodes that send
// rows, leaf sets and announcements, and poisoning colluders offer
// colluders for every slot. So the closest node offered is often a
// colluder when an honest node closer to p was never offered.
//
// FillConstrained asks the overlay, for every slot whose point lies
// outside the leaf set's range (the leaf set routes the rest), which
// nodes are closest to p: a fill probe is routed securely (through the
// constrained tables) to p, and the node it is delivered at, p's root,
// answers the origin straight with the handles of the nodes of the
// slot's block closest to p among itself and its leaf set. The origin
// greets each of them that its table would take (a hello, which the
// node answers), so that the core probes it and admits it like any other
// node; the table then takes it if, and only if, it is closer to p than
// the occupant. A probe that brings no answer within FillTimeout (a
// dropping attacker on its route) is sent again through another first
// hop, a leaf-set member picked at random, up to FillAttempts in all.
//
// Nothing an answer says can displace a closer node: ids are certified
// (the simulator's attackers name only real nodes), an answered node
// enters only after it answered the core's probe, and a slot changes
// only for a node closer to its point. So a lying answer can hide the
// closest node, not put a farther one in its place, and one honest
// answer from p's neighbourhood puts the closest node in the slot for
// good.

// The fill's payloads:
//
//	fill probe:  [7][tag u64][row u8]                routed to the slot's point
//	fill answer: [8][tag u64][count u8][handles]     straight to the origin (core.AppendHandle)
//	hello:       [9]                                 straight, to a node an answer named
//	hello reply: [10]                                straight back
const (
	kindFillProbe  = 7
	kindFillAnswer = 8
	kindHello      = 9
	kindHelloReply = 10
)

// maxFillAnswer is the most handles a fill answer carries: the block's
// nodes closest to the point, on either side of it.
const maxFillAnswer = 2

// fillTag is the timer tag of the fill's retries, fillNextTag that of
// the next periodic fill (lookup ids are never densityTag, fillTag or
// fillNextTag).
const (
	fillTag     = 1
	fillNextTag = 2
)

// fillSlot is a slot whose fill probe waits for its answer.
type fillSlot struct {
	row, col int
	attempts int
}

// fill is the fill in progress.
type fill struct {
	slots   map[uint64]*fillSlot // by the probe's tag
	running bool
	next    bool // a periodic fill is scheduled
	retry   core.TimerID
}

// FillDelay is how long after registering a node with
// Options.FillInterval tries its first fill, and how often it tries again
// until it has joined: by then its leaf set has settled (the fill leaves
// out the points the leaf set covers).
const FillDelay = 30 * time.Second

// FillStats are the counts of the constrained-table fills this node ran.
type FillStats struct {
	Fills   int // fills started
	Probes  int // fill probes sent, retries included
	Answers int // answers taken
	Refused int // answers not credible (credibleFill), ignored
	Hellos  int // nodes greeted
}

// FillStats returns the counts of this node's fills.
func (a *App) FillStats() FillStats { return a.fillStats }

// FillConstrained starts a fill of this node's constrained table, if it
// has one and no fill is running, and reports whether it started; with
// Options.FillInterval > 0 the node fills its table again that long
// after each fill ends. A node that has not joined starts none.
func (a *App) FillConstrained() bool {
	st := a.ep.State()
	t := st.Constrained
	if t == nil || a.fill.running || a.ep.Status() != core.StatusJoined {
		return false
	}
	a.fill.running = true
	a.fill.slots = map[uint64]*fillSlot{}
	a.fillStats.Fills++
	self := a.ep.Self().ID
	b := st.B()
	for r := range t.Rows() {
		if r > 0 && t.RowFill(r) == 0 && st.Table.RowFill(r) == 0 {
			break // no known node shares r digits with this one: neither does any point's block
		}
		own := self.Digit(r, b)
		for c := range t.Cols() {
			p := t.Point(r, c)
			if c == own || st.Leaves.Covers(p) {
				continue
			}
			tag := a.ep.Rand().Uint64()
			a.fill.slots[tag] = &fillSlot{row: r, col: c}
			a.sendFill(tag, a.fill.slots[tag])
		}
	}
	if len(a.fill.slots) == 0 {
		a.endFill()
		return true
	}
	a.fill.retry, _ = a.ep.After(a.opts.FillTimeout, fillTag)
	return true
}

// sendFill routes slot s's fill probe: through the constrained table
// the first time, then through a leaf-set member picked at random.
func (a *App) sendFill(tag uint64, s *fillSlot) {
	st := a.ep.State()
	s.attempts++
	var hint *id.Handle
	if s.attempts > 1 {
		if ms := st.Leaves.Members(nil); len(ms) > 0 {
			h := ms[a.ep.Rand().IntN(len(ms))].Handle
			hint = &h
		}
	}
	b := binary.BigEndian.AppendUint64([]byte{kindFillProbe}, tag)
	b = append(b, byte(s.row))
	if a.ep.RouteMessage(core.Message{Key: st.Constrained.Point(s.row, s.col), Flags: core.FlagSecure, Payload: b}, hint) == nil {
		a.fillStats.Probes++
	}
}

// fillNext starts the next periodic fill.
func (a *App) fillNext() {
	if a.fill.next {
		a.fill.next = false
		if !a.FillConstrained() && !a.fill.running {
			a.fill.next = true // not joined yet: try again later
			_, _ = a.ep.After(FillDelay, fillNextTag)
		}
	}
}

// fillTimer retries the probes that brought no answer.
func (a *App) fillTimer() {
	if !a.fill.running {
		return
	}
	tags := make([]uint64, 0, len(a.fill.slots))
	for tag := range a.fill.slots {
		tags = append(tags, tag)
	}
	slices.Sort(tags) // map order is random; the simulator's runs are not
	for _, tag := range tags {
		s := a.fill.slots[tag]
		if s.attempts >= a.opts.FillAttempts {
			delete(a.fill.slots, tag)
			continue
		}
		a.sendFill(tag, s)
	}
	if len(a.fill.slots) == 0 {
		a.endFill()
		return
	}
	a.fill.retry, _ = a.ep.After(a.opts.FillTimeout, fillTag)
}

// endFill ends the fill, and schedules the next with FillInterval.
func (a *App) endFill() {
	a.ep.Cancel(a.fill.retry)
	a.fill.running, a.fill.slots, a.fill.retry = false, nil, 0
	if a.opts.FillInterval > 0 && !a.fill.next {
		a.fill.next = true
		_, _ = a.ep.After(a.opts.FillInterval, fillNextTag)
	}
}

// fillProbe answers a fill probe delivered here, at the root of its
// point: the handles of the nodes of the slot's block (the ids sharing
// row+1 digits with the point) closest to the point, among this node
// and its leaf set.
func (a *App) fillProbe(m *core.Message) {
	tag, row, ok := parseFillProbe(m.Payload)
	if !ok || m.Type != core.MsgRoute || m.Origin.ID == a.ep.Self().ID {
		return
	}
	_ = a.ep.Send(m.Origin, appendFillAnswer(nil, tag, fillCandidates(a.ep, m.Key, row, a.ep.Self())))
}

// fillCandidates returns up to maxFillAnswer handles, among self and
// ep's leaf set, sharing row+1 digits with p, the closest to p first.
func fillCandidates(ep *core.Endpoint, p id.ID, row int, self id.Handle) []id.Handle {
	b := ep.State().B()
	var in []id.Handle
	if id.SharedPrefixLen(self.ID, p, b) > row {
		in = append(in, self)
	}
	for _, e := range ep.State().Leaves.Members(nil) {
		if id.SharedPrefixLen(e.ID, p, b) > row {
			in = append(in, e.Handle)
		}
	}
	slices.SortFunc(in, func(x, y id.Handle) int {
		switch {
		case x.ID == y.ID:
			return 0
		case id.Closer(p, x.ID, y.ID):
			return -1
		}
		return 1
	})
	return in[:min(len(in), maxFillAnswer)]
}

// fillAnswer takes a fill probe's answer at its origin, if it is
// credible: each node it names that the slot would take is greeted, so
// that the core probes and admits it (the answer's sender was heard from
// already), and the slot's probe is done. An answer that is not credible
// is ignored: the probe is sent again at the next retry.
func (a *App) fillAnswer(m *core.Message) {
	tag, hs, ok := parseFillAnswer(m.Payload)
	if !ok || m.Type != core.MsgDirect || !a.fill.running {
		return
	}
	s := a.fill.slots[tag]
	if s == nil {
		return
	}
	t := a.ep.State().Constrained
	if !credibleFill(t, s, m.From.ID, hs) {
		a.fillStats.Refused++
		return
	}
	delete(a.fill.slots, tag)
	a.fillStats.Answers++
	for _, h := range hs {
		r, c, ok := t.Position(h.ID)
		if !ok || r != s.row || c != s.col || h.ID == m.From.ID || !a.ep.ValidHandle(h) || !t.Wants(routing.Entry{Handle: h}) {
			continue
		}
		if a.ep.Send(h, []byte{kindHello}) == nil {
			a.fillStats.Hellos++
		}
	}
	if len(a.fill.slots) == 0 {
		a.endFill()
	}
}

// credibleFill reports whether an answer from answerer naming hs could
// come from the root of slot s's point p: p's root is the live node
// closest to p, so it is at least as close to p as every node it names
// and as the slot's occupant. A node that answers a probe routed through
// it, far from p, in p's root's place (a fake root) fails this unless it
// names only nodes farther from p than itself and the occupant, which
// plants nothing; so the colluders it would plant, closer to p than the
// occupant but not the closest, are never greeted, and the probe is sent
// again through another first hop.
func credibleFill(t *routing.RoutingTable, s *fillSlot, answerer id.ID, hs []id.Handle) bool {
	p := t.Point(s.row, s.col)
	for _, h := range hs {
		if h.ID != answerer && id.Closer(p, h.ID, answerer) {
			return false
		}
	}
	cur, ok := t.Get(s.row, s.col)
	return !ok || cur.ID == answerer || !id.Closer(p, cur.ID, answerer)
}

// hello answers a greeting: the reply is what makes the greeter's core
// probe this node.
func (a *App) hello(m *core.Message) {
	if m.Type == core.MsgDirect && len(m.Payload) == 1 {
		_ = a.ep.Send(m.From, []byte{kindHelloReply})
	}
}

func appendFillAnswer(b []byte, tag uint64, hs []id.Handle) []byte {
	b = binary.BigEndian.AppendUint64(append(b, kindFillAnswer), tag)
	k := min(len(hs), maxFillAnswer)
	b = append(b, byte(k))
	for _, h := range hs[:k] {
		if len(h.Addr) > 255 {
			h.Addr = ""
		}
		b = core.AppendHandle(b, h)
	}
	return b
}

// parseFillProbe reads a fill probe: its tag and its row.
func parseFillProbe(b []byte) (uint64, int, bool) {
	if len(b) != 10 || b[0] != kindFillProbe || int(b[9]) >= id.Digits(1) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[1:]), int(b[9]), true
}

// parseFillAnswer reads what appendFillAnswer wrote.
func parseFillAnswer(b []byte) (uint64, []id.Handle, bool) {
	r := core.NewPayloadReader(b)
	if r.U8() != kindFillAnswer {
		return 0, nil, false
	}
	tag := r.U64()
	k := int(r.U8())
	if k > maxFillAnswer {
		return 0, nil, false
	}
	hs := make([]id.Handle, 0, k)
	for range k {
		hs = append(hs, r.Handle())
	}
	if r.Bad() || r.Len() != 0 {
		return 0, nil, false
	}
	return tag, hs, true
}

// fillDefaults fills in the fill's options.
func (o *Options) fillDefaults() {
	if o.FillTimeout == 0 {
		o.FillTimeout = 2 * time.Second
	}
	if o.FillAttempts == 0 {
		o.FillAttempts = 3
	}
}
