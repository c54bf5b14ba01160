package simnet

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// LookupAppID is the application id Lookups registers under.
const LookupAppID core.AppID = 0xfeed

// Lookups measures routing: it registers an application on nodes, routes
// lookups for keys, and at each delivery records the hop count, the route's
// delay, and whether the delivering node was the key's true root (the live
// node numerically closest to the key at delivery time).
type Lookups struct {
	nw        *Network
	next      uint64
	inflight  map[uint64]lookup
	Issued    int
	Delivered int // first deliveries (duplicates from re-routing not counted)
	Correct   int
	Dups      int
	// Hops[h] counts deliveries after h hops.
	Hops []int
	// Deliveries records every first delivery, in order.
	Deliveries []Delivery
	// OnDeliver, if set, sees every first delivery.
	OnDeliver func(at *Host, m *core.Message, correct bool)
	// Trace, if set, records each lookup's path (core.FlagTrace) for
	// OnDeliver to see in the message's Path.
	Trace bool
	// OracleBlock, if > 0, is an analysis aid, not Pastry: a node whose
	// next routing-table slot for the key (the nodes sharing one digit more
	// with it than this node does) holds at most OracleBlock live nodes,
	// the root among them, forwards straight to the root, as if it knew
	// every member of small blocks. It bounds what extra state about the
	// last, sparse rows could save.
	OracleBlock int
}

// Delivery is one lookup's outcome.
type Delivery struct {
	Hops    uint16
	Correct bool
	// Delay is the route's delay; Direct the delay from the origin straight
	// to the node the lookup was delivered at (zero if it was the origin).
	Delay, Direct time.Duration
}

type lookup struct {
	key    id.ID
	origin int
	sent   time.Duration
}

// NewLookups returns a tracker for nw; call Attach for every node.
func NewLookups(nw *Network) *Lookups {
	return &Lookups{nw: nw, inflight: map[uint64]lookup{}}
}

// Attach registers the tracker's application on n.
func (l *Lookups) Attach(n *Host) error {
	return n.RegisterApplication(LookupAppID, &lookupApp{l: l, n: n})
}

// Lookup routes a lookup for key from node i.
func (l *Lookups) Lookup(i int, key id.ID) error {
	l.next++
	p := make([]byte, 8)
	binary.BigEndian.PutUint64(p, l.next)
	// Record first: a lookup rooted at its origin is delivered inside Route.
	l.inflight[l.next] = lookup{key: key, origin: i, sent: l.nw.now}
	m := core.Message{Key: key, App: LookupAppID, Payload: p}
	if l.Trace {
		m.Flags = core.FlagTrace
	}
	if err := l.nw.Route(i, m); err != nil {
		delete(l.inflight, l.next)
		return err
	}
	l.Issued++
	return nil
}

// Outstanding is the number of lookups issued and not yet delivered.
func (l *Lookups) Outstanding() int { return len(l.inflight) }

// MeanHops is the mean hop count over deliveries.
func (l *Lookups) MeanHops() float64 {
	var sum, n int
	for h, c := range l.Hops {
		sum += h * c
		n += c
	}
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}

type lookupApp struct {
	l *Lookups
	n *Host
}

func (a *lookupApp) Deliver(m *core.Message) {
	l := a.l
	if len(m.Payload) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(m.Payload)
	lk, ok := l.inflight[seq]
	if !ok {
		l.Dups++
		return
	}
	delete(l.inflight, seq)
	// The delivering node may have become a member in the very step that
	// delivers (a joiner's held messages, core/activate.go), before the
	// network collected it.
	l.nw.noteJoined(a.n)
	root, _ := l.nw.Root(m.Key)
	correct := root != nil && root.Index == a.n.Index
	l.Delivered++
	if correct {
		l.Correct++
	}
	for len(l.Hops) <= int(m.Hops) {
		l.Hops = append(l.Hops, 0)
	}
	l.Hops[m.Hops]++
	var direct time.Duration
	if lk.origin != a.n.Index {
		direct = l.nw.opts.Topology.Delay(lk.origin, a.n.Index)
	}
	l.Deliveries = append(l.Deliveries, Delivery{Hops: m.Hops, Correct: correct, Delay: l.nw.now - lk.sent, Direct: direct})
	if l.OnDeliver != nil {
		l.OnDeliver(a.n, m, correct)
	}
}

func (a *lookupApp) Forward(m *core.Message, next *id.Handle) bool {
	if a.l.OracleBlock > 0 {
		a.l.oracle(a.n, m, next)
	}
	return true
}

// oracle is OracleBlock's routing step at node n.
func (l *Lookups) oracle(n *Host, m *core.Message, next *id.Handle) {
	b := n.Config().B
	root, ok := l.nw.Root(m.Key)
	if !ok || root.Index == n.Index {
		return
	}
	p := id.SharedPrefixLen(n.Self().ID, m.Key, b) + 1 // the slot's block: keys sharing p digits
	if id.SharedPrefixLen(root.Self().ID, m.Key, b) < p {
		return
	}
	w := id.Bits - b*p
	k := m.Key.U128()
	lo := k.Sub(k.Low(w))
	cmp := func(x id.ID, u id.U128) int { return x.U128().Cmp(u) }
	live := l.nw.Live()
	i, _ := slices.BinarySearchFunc(live, lo, cmp)
	j := len(live)
	if hi := lo.Add(id.Pow2(w)); !hi.IsZero() {
		j, _ = slices.BinarySearchFunc(live, hi, cmp)
	}
	if j-i <= l.OracleBlock {
		*next = root.Self()
	}
}
func (a *lookupApp) Update(id.Handle, bool) {}
