package simnet

import (
	"fmt"
	"slices"
	"time"

	"github.com/pastrynet/pastry/lookup"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Lookups measures routing with the project's lookup application
// (package lookup), the same code the libp2p runtime runs: it registers
// the application on nodes, starts lookups for keys, and at each node
// that answers one as its root records the hop count, the route's delay,
// and whether that node was the key's true root (the live node
// numerically closest to the key at delivery time). The roots' answers
// travel back to the origins as they do in the daemon.
type Lookups struct {
	nw        *Network
	apps      []*lookup.App // by node index; nil where none is attached
	next      uint64
	inflight  map[uint64]lookupStart // by request id
	Issued    int
	Delivered int // first deliveries (duplicates from re-routing not counted)
	Correct   int
	Dups      int
	// Answered counts lookups whose answer reached their origin.
	Answered int
	// Hops[h] counts deliveries after h hops.
	Hops []int
	// Deliveries records every first delivery, in order.
	Deliveries []Delivery
	// OnDeliver, if set, sees every first delivery: num is the lookup's
	// number (1, 2, ... in the order Lookup issued them), m the request at
	// its root, with its Path.
	OnDeliver func(at *Host, num uint64, m *core.Message, correct bool)
	// OnAnswer, if set, sees every lookup's end at its origin: the
	// lookup's number, its origin's index, its key, and the result or
	// the error (lookup.ErrTimeout).
	OnAnswer func(num uint64, origin int, key id.ID, r lookup.Result, err error)
	// OracleBlock, if > 0, is an analysis aid, not Pastry: a node whose
	// next routing-table slot for the key (the nodes sharing one digit more
	// with it than this node does) holds at most OracleBlock live nodes,
	// the root among them, forwards straight to the root, as if it knew
	// every member of small blocks. It bounds what extra state about the
	// last, sparse rows could save.
	OracleBlock int
	// Gamma is the failure test's threshold the applications Attach
	// registers use (0: lookup.DefaultGamma).
	Gamma float64
}

// Delivery is one lookup's outcome.
type Delivery struct {
	Hops    uint16
	Correct bool
	// Delay is the route's delay; Direct the delay from the origin straight
	// to the node the lookup was delivered at (zero if it was the origin).
	Delay, Direct time.Duration
}

type lookupStart struct {
	num    uint64
	key    id.ID
	origin int
	sent   time.Duration
}

// NewLookups returns a tracker for nw; call Attach for every node.
func NewLookups(nw *Network) *Lookups {
	return &Lookups{nw: nw, inflight: map[uint64]lookupStart{}}
}

// Attach registers the lookup application on n.
func (l *Lookups) Attach(n *Host) error {
	a, err := lookup.Register(n.Machine, lookup.Options{
		AtRoot:  func(r lookup.Request) { l.atRoot(n, r) },
		Forward: func(m *core.Message, next *id.Handle) { l.forward(n, m, next) },
		Gamma:   l.Gamma,
	})
	if err != nil {
		return err
	}
	for len(l.apps) <= n.Index {
		l.apps = append(l.apps, nil)
	}
	l.apps[n.Index] = a
	return nil
}

// App is node i's lookup application, nil if it has none (an attacker's
// node, or one not attached).
func (l *Lookups) App(i int) *lookup.App { return l.apps[i] }

// AttachAdversary registers on n, instead of the lookup application, the
// adversary's (lookup.Adversary): n is then one of the attacker's nodes.
// It answers or drops the requests routed through it as opts.Attack
// says, and starts no lookups.
func (l *Lookups) AttachAdversary(n *Host, opts lookup.AdversaryOptions) error {
	_, err := lookup.RegisterAdversary(n.Machine, opts)
	return err
}

// Lookup starts a lookup for key from node i and returns its number.
func (l *Lookups) Lookup(i int, key id.ID) (uint64, error) {
	return l.LookupWith(i, key, lookup.StartOptions{})
}

// LookupWith is Lookup with the lookup's options (a secure lookup).
func (l *Lookups) LookupWith(i int, key id.ID, so lookup.StartOptions) (uint64, error) {
	var a *lookup.App
	if i >= 0 && i < len(l.apps) {
		a = l.apps[i]
	}
	if a == nil {
		return 0, fmt.Errorf("simnet: no lookup application on node %d", i)
	}
	if !l.nw.nodes[i].alive {
		return 0, fmt.Errorf("simnet: node %d is down", i)
	}
	l.next++
	num, sent := l.next, l.nw.now
	var err error
	l.nw.RunOn(i, func() {
		var req uint64
		// Recorded inside RunOn, before the upcalls Start causes run: a
		// lookup rooted at its origin is delivered there as RunOn ends.
		req, err = a.StartWith(key, so, func(r lookup.Result, err error) {
			if err == nil {
				l.Answered++
			}
			if l.OnAnswer != nil {
				l.OnAnswer(num, i, key, r, err)
			}
		})
		if err == nil {
			l.inflight[req] = lookupStart{num: num, key: key, origin: i, sent: sent}
		}
	})
	if err != nil {
		return 0, err
	}
	l.Issued++
	return num, nil
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

func (l *Lookups) atRoot(n *Host, r lookup.Request) {
	m := r.Msg
	lk, ok := l.inflight[r.ID]
	if !ok {
		l.Dups++
		return
	}
	delete(l.inflight, r.ID)
	// The delivering node may have become a member in the very step that
	// delivers (a joiner's held messages, core/activate.go), before the
	// network collected it.
	l.nw.noteJoined(n)
	root, _ := l.nw.Root(m.Key)
	correct := root != nil && root.Index == n.Index
	l.Delivered++
	if correct {
		l.Correct++
	}
	for len(l.Hops) <= int(m.Hops) {
		l.Hops = append(l.Hops, 0)
	}
	l.Hops[m.Hops]++
	var direct time.Duration
	if lk.origin != n.Index {
		direct = l.nw.opts.Topology.Delay(lk.origin, n.Index)
	}
	l.Deliveries = append(l.Deliveries, Delivery{Hops: m.Hops, Correct: correct, Delay: l.nw.now - lk.sent, Direct: direct})
	if l.OnDeliver != nil {
		l.OnDeliver(n, lk.num, m, correct)
	}
}

func (l *Lookups) forward(n *Host, m *core.Message, next *id.Handle) {
	if l.OracleBlock > 0 {
		l.oracle(n, m, next)
	}
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

// Path is the route a message for key would take from node i through
// the nodes' routing state as it stands, with nobody interfering: the
// indices of the nodes after i, the root last (nil if i is the root). It
// reads the routing state without sending anything, for measurements
// that compare a run with what its routes would have been; it stops
// after limit hops.
func (nw *Network) Path(i int, key id.ID, limit int) []int {
	var path []int
	for n := nw.nodes[i]; len(path) < limit; {
		h, ok := n.State().NextHop(key, nil)
		if !ok {
			break
		}
		j, ok := nw.index(h)
		if !ok {
			break
		}
		path = append(path, int(j))
		n = nw.nodes[j]
	}
	return path
}
