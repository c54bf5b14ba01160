package simnet

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Options configure a Network.
type Options struct {
	Seed     uint64
	Node     core.Config // every node's config
	Topology Topology    // default Constant(10ms)
	// DropRate is the probability that any one message is lost.
	DropRate float64
	// OnSend, if set, sees every message a node hands to the network, with
	// the sender's index, before loss is applied.
	OnSend func(from int, m *core.Message)
	// AddrGroups, if set, gives node i an address block (group, true) or
	// none (false), for the admission policy's address diversity
	// (core.AddressGrouper). Unset, no node has one: the policy is off.
	AddrGroups func(i int) (group uint64, ok bool)
}

// Network is a set of simulated nodes and the messages between them.
type Network struct {
	opts  Options
	rng   *rand.Rand
	now   time.Duration
	nodes []*Host
	ids   []id.ID  // ids[i] is node i's id: one cache line, not two pointer hops
	addrs []string // node addresses, 65,536 to a string (see addrOf)
	byID  map[id.ID]int32
	q     msgHeap
	wakes wakeHeap
	seq   uint64
	slab  []core.Message
	free  []int32
	group []int // partition group per node; nil when healed
	// stallUntil: messages sent before it arrive no earlier than it (Stall).
	stallUntil time.Duration

	live      []id.ID // sorted live joined ids, rebuilt lazily
	liveDirty bool
	keys      map[int]ed25519.PrivateKey // signing keys, made when first used

	// Counters.
	Events, Sent, Lost, Rejected uint64
}

// Host is one simulated node.
type Host struct {
	*core.Machine
	Index int
	alive bool
	// refuses: the node is down and its host refuses connections, so
	// messages to it fail at once and their senders are told (Refuse).
	refuses bool
	env     *env
}

// Alive reports whether the node is running (not crashed or left).
func (n *Host) Alive() bool { return n.alive }

type env struct {
	net *Network
	idx int
}

func (e *env) Uint64() uint64 { return e.net.rng.Uint64() }

func (e *env) Proximity(h id.Handle) uint32 {
	j, ok := e.net.index(h)
	if !ok {
		return routing.UnknownProximity
	}
	rtt := 2 * e.net.opts.Topology.Delay(e.idx, int(j))
	return uint32(min(rtt.Microseconds(), routing.UnknownProximity-1))
}

// Sign implements core.Signer with an Ed25519 key derived from the
// network's seed and the node's index, made when first used: applications
// that sign (owner-signed topics) run in the simulator as over libp2p.
func (e *env) Sign(data []byte) ([]byte, error) {
	return ed25519.Sign(e.net.key(e.idx), data), nil
}

// Verify implements core.Signer: sig must be data's signature by the key
// of the node h names.
func (e *env) Verify(h id.Handle, data, sig []byte) bool {
	j, ok := e.net.index(h)
	return ok && ed25519.Verify(e.net.key(int(j)).Public().(ed25519.PublicKey), data, sig)
}

// AddrGroup implements core.AddressGrouper with Options.AddrGroups.
func (e *env) AddrGroup(h id.Handle) (uint64, bool) {
	if e.net.opts.AddrGroups == nil {
		return 0, false
	}
	j, ok := e.net.index(h)
	if !ok {
		return 0, false
	}
	return e.net.opts.AddrGroups(int(j))
}

// ValidHandle implements core.HandleChecker: h names a node of the
// network.
func (e *env) ValidHandle(h id.Handle) bool { _, ok := e.net.index(h); return ok }

// key is node i's signing key: SHA-256 of the seed and i as its seed.
func (nw *Network) key(i int) ed25519.PrivateKey {
	if nw.keys == nil {
		nw.keys = map[int]ed25519.PrivateKey{}
	}
	k := nw.keys[i]
	if k == nil {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], nw.opts.Seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		seed := sha256.Sum256(append([]byte("simnet key\x00"), b[:]...))
		k = ed25519.NewKeyFromSeed(seed[:])
		nw.keys[i] = k
	}
	return k
}

// A simulated node's address is its index, 4 bytes big-endian: resolving a
// handle is then a decode rather than a map lookup on every message (the
// map is the fallback for handles with another address). The addresses are
// substrings of one string per 65,536 nodes rather than an allocation each,
// so that reading a handle's address touches memory shared by its
// neighbours' (decoding addresses was 5% of a 100,000-node run, nearly all
// of it cache misses on scattered 4-byte strings).
func (nw *Network) addrOf(i int) string {
	const chunk = 1 << 16
	if i/chunk >= len(nw.addrs) {
		b := make([]byte, 0, 4*chunk)
		for j := i / chunk * chunk; j < (i/chunk+1)*chunk; j++ {
			b = append(b, byte(j>>24), byte(j>>16), byte(j>>8), byte(j))
		}
		nw.addrs = append(nw.addrs, string(b))
	}
	off := 4 * (i % chunk)
	return nw.addrs[i/chunk][off : off+4]
}

func (nw *Network) index(h id.Handle) (int32, bool) {
	if a := h.Addr; len(a) == 4 {
		i := int32(a[0])<<24 | int32(a[1])<<16 | int32(a[2])<<8 | int32(a[3])
		if int(i) < len(nw.ids) && nw.ids[i] == h.ID {
			return i, true
		}
	}
	i, ok := nw.byID[h.ID]
	return i, ok
}

// New returns an empty network.
func New(opts Options) (*Network, error) {
	if err := opts.Node.Validate(); err != nil {
		return nil, err
	}
	if opts.Topology == nil {
		opts.Topology = Constant(10 * time.Millisecond)
	}
	if opts.DropRate < 0 || opts.DropRate >= 1 {
		return nil, fmt.Errorf("simnet: drop rate %v, want [0, 1)", opts.DropRate)
	}
	return &Network{
		opts: opts,
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		byID: map[id.ID]int32{},
	}, nil
}

// SetOnSend replaces Options.OnSend: f sees every message a node hands
// to the network from now on.
func (nw *Network) SetOnSend(f func(from int, m *core.Message)) { nw.opts.OnSend = f }

// Rand is the network's generator, for workloads that must share its seed.
func (nw *Network) Rand() *rand.Rand { return nw.rng }

// Now is the virtual time.
func (nw *Network) Now() time.Duration { return nw.now }

// Nodes returns every node ever added, by index.
func (nw *Network) Nodes() []*Host { return nw.nodes }

// Node returns node i.
func (nw *Network) Node(i int) *Host { return nw.nodes[i] }

// Lookup returns the node with id x.
func (nw *Network) Lookup(x id.ID) (*Host, bool) {
	i, ok := nw.byID[x]
	if !ok {
		return nil, false
	}
	return nw.nodes[i], true
}

// Topology is the network's topology.
func (nw *Network) Topology() Topology { return nw.opts.Topology }

// AddNode creates a node with a random id (not yet joined) and places it.
func (nw *Network) AddNode() *Host {
	for {
		x := id.Random(nw.rng)
		if _, dup := nw.byID[x]; !dup {
			return nw.AddNodeWithID(x)
		}
	}
}

// AddNodeWithID creates a node with id x. It panics if x is taken: ids are
// the caller's to choose in tests.
func (nw *Network) AddNodeWithID(x id.ID) *Host {
	if _, dup := nw.byID[x]; dup {
		panic(fmt.Sprintf("simnet: id %s added twice", x))
	}
	i := len(nw.nodes)
	e := &env{net: nw, idx: i}
	cn, err := core.NewMachine(nw.opts.Node, id.Handle{ID: x, Addr: nw.addrOf(i)}, e)
	if err != nil {
		panic(err) // config validated in New
	}
	// One goroutine steps every node and reads their state only between
	// inputs: superseded routing snapshots can be reused (routing.State.
	// Exclusive; Machine.Advance quiesces the state after each input).
	cn.State().Exclusive()
	nw.opts.Topology.Place(i, nw.rng)
	n := &Host{Machine: cn, Index: i, alive: true, env: e}
	nw.nodes = append(nw.nodes, n)
	nw.ids = append(nw.ids, x)
	nw.byID[x] = int32(i)
	return n
}

// Bootstrap makes node i the first member of a new overlay.
func (nw *Network) Bootstrap(i int) error {
	n := nw.nodes[i]
	if err := n.Bootstrap(nw.now); err != nil {
		return err
	}
	nw.liveDirty = true
	nw.collect(n)
	return nil
}

// Join starts node i joining through node via.
func (nw *Network) Join(i, via int) error {
	n := nw.nodes[i]
	if err := n.Join(nw.now, nw.nodes[via].Self()); err != nil {
		return err
	}
	nw.collect(n)
	return nil
}

// RouteFrom has node i route m for the application m.App, which must be
// registered there: Key, Payload and Flags are taken from m.
func (nw *Network) RouteFrom(i int, m core.Message) error {
	n := nw.nodes[i]
	if !n.alive {
		return fmt.Errorf("simnet: node %d is down", i)
	}
	ep := n.Endpoint(m.App)
	if ep == nil {
		return fmt.Errorf("simnet: node %d has no application %d", i, m.App)
	}
	var err error
	nw.RunOn(i, func() { err = ep.RouteMessage(m, nil) })
	return err
}

// RunOn runs f on node i at the network's time, as the node's driver does
// (core.Machine.Run: f may call the node's Endpoints), then collects what
// it sent.
func (nw *Network) RunOn(i int, f func()) {
	n := nw.nodes[i]
	n.Machine.Run(nw.now, f)
	nw.collect(n)
}

// Crash stops node i silently.
func (nw *Network) Crash(i int) {
	nw.nodes[i].alive = false
	nw.wakes.remove(int32(i))
	nw.liveDirty = true
}

// Refuse stops node i as Crash does, but as a process whose host is
// still up: connecting to it is refused, so every message sent to it
// fails at once and its sender's transport tells the sender
// (core.Machine.Unsent) instead of losing it silently.
func (nw *Network) Refuse(i int) {
	nw.Crash(i)
	nw.nodes[i].refuses = true
}

// Leave has node i leave gracefully, then stops it.
func (nw *Network) Leave(i int) error {
	n := nw.nodes[i]
	if err := n.Leave(nw.now); err != nil {
		return err
	}
	nw.collect(n)
	n.alive = false
	nw.liveDirty = true
	return nil
}

// Partition splits the network: messages between nodes of different groups
// are lost. Nodes not named form one more group.
func (nw *Network) Partition(groups ...[]int) {
	nw.group = make([]int, len(nw.nodes))
	for g, members := range groups {
		for _, i := range members {
			nw.group[i] = g + 1
		}
	}
}

// Heal removes any partition.
func (nw *Network) Heal() { nw.group = nil }

// Stall models every node's process freezing for d (a long GC pause, a
// CPU-starved host) while the nodes' timers keep firing on time: messages
// already on their way wait at their receivers until the stall ends, and
// messages sent during it leave when it ends.
func (nw *Network) Stall(d time.Duration) {
	nw.stallUntil = max(nw.stallUntil, nw.now+d)
	for i := range nw.q {
		nw.q[i].at = max(nw.q[i].at, nw.stallUntil)
	}
	nw.q.fix() // equal times now order by seq
}

// noteJoined marks the live set stale if n has become a joined member
// since it was built (a node that stops being one is marked by Crash and
// Leave).
func (nw *Network) noteJoined(n *Host) {
	if n.Status() == core.StatusJoined && !nw.liveDirty {
		if _, found := slices.BinarySearchFunc(nw.live, n.Self().ID, func(a, b id.ID) int { return a.Cmp(b) }); !found {
			nw.liveDirty = true
		}
	}
}

// collect takes a node's Ready: queue its messages and its wake-up.
func (nw *Network) collect(n *Host) {
	rd := n.Ready()
	nw.noteJoined(n)
	var refused []core.Message
	for k := range rd.Messages {
		m := &rd.Messages[k]
		nw.Sent++
		if nw.opts.OnSend != nil {
			nw.opts.OnSend(n.Index, m)
		}
		to, ok := nw.index(m.To)
		if ok && nw.nodes[to].refuses && !nw.nodes[to].alive {
			nw.Lost++
			refused = append(refused, *m)
			continue
		}
		if !ok || nw.lost(n.Index, int(to)) {
			nw.Lost++
			continue
		}
		slot := nw.alloc(m)
		at := max(nw.now, nw.stallUntil) + nw.opts.Topology.Delay(n.Index, int(to))
		nw.push(event{at: at, node: to, msg: slot})
	}
	n.Advance()
	if len(refused) > 0 {
		for _, m := range refused {
			n.Unsent(nw.now, m.To.ID, m.Type, m.Seq)
		}
		nw.collect(n) // what the failures caused
		return
	}
	nw.scheduleWake(int32(n.Index), rd.WakeAt)
}

// scheduleWake makes at (0: none) node i's one wake-up.
func (nw *Network) scheduleWake(i int32, at time.Duration) {
	cur := nw.wakes.at(i)
	switch {
	case at == 0:
		if cur != 0 {
			nw.wakes.remove(i)
		}
	case at != cur:
		nw.seq++
		nw.wakes.set(i, max(at, nw.now), nw.seq)
	}
}

func (nw *Network) lost(a, b int) bool {
	if nw.group != nil && groupOf(nw.group, a) != groupOf(nw.group, b) {
		return true
	}
	return nw.opts.DropRate > 0 && nw.rng.Float64() < nw.opts.DropRate
}

func groupOf(g []int, i int) int {
	if i < len(g) {
		return g[i]
	}
	return 0
}

func (nw *Network) alloc(m *core.Message) int32 {
	if k := len(nw.free); k > 0 {
		s := nw.free[k-1]
		nw.free = nw.free[:k-1]
		nw.slab[s] = *m
		return s
	}
	nw.slab = append(nw.slab, *m)
	return int32(len(nw.slab) - 1)
}

// RunUntil processes every event due at or before t, then sets the clock
// to t.
func (nw *Network) RunUntil(t time.Duration) {
	for {
		next, ok := nw.peek()
		if !ok || next.at > t {
			break
		}
		nw.step()
	}
	if t > nw.now {
		nw.now = t
	}
}

// RunFor runs the network for d of virtual time.
func (nw *Network) RunFor(d time.Duration) { nw.RunUntil(nw.now + d) }

// Pending is the number of queued events.
func (nw *Network) Pending() int { return len(nw.q) + len(nw.wakes.h) }

// peek returns the next event without taking it.
func (nw *Network) peek() (*event, bool) {
	var m, w *event
	if len(nw.q) > 0 {
		m = &nw.q[0]
	}
	if len(nw.wakes.h) > 0 {
		w = &nw.wakes.h[0]
	}
	switch {
	case m == nil && w == nil:
		return nil, false
	case m == nil || w != nil && w.before(m):
		return w, true
	}
	return m, true
}

// step processes one event.
func (nw *Network) step() {
	next, _ := nw.peek()
	var ev event
	if next.msg < 0 {
		ev = *next
		nw.wakes.remove(ev.node)
	} else {
		ev = nw.q.pop()
	}
	nw.now = ev.at
	nw.Events++
	n := nw.nodes[ev.node]
	if ev.msg < 0 { // wake-up
		if n.alive {
			n.Tick(nw.now)
			nw.collect(n)
		}
		return
	}
	m := nw.slab[ev.msg]
	nw.slab[ev.msg] = core.Message{}
	nw.free = append(nw.free, ev.msg)
	if !n.alive {
		nw.Lost++
		return
	}
	if err := n.Step(nw.now, &m); err != nil {
		nw.Rejected++
	}
	nw.collect(n)
}

// Root returns the live joined node numerically closest to key: where a
// message for key should be delivered.
func (nw *Network) Root(key id.ID) (*Host, bool) {
	live := nw.Live()
	if len(live) == 0 {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(live, key, func(a, b id.ID) int { return a.Cmp(b) })
	a, b := live[(i-1+len(live))%len(live)], live[i%len(live)]
	best := a
	if id.Closer(key, b, a) {
		best = b
	}
	n, _ := nw.Lookup(best)
	return n, true
}

// Live returns the sorted ids of live joined nodes. Shared; read only.
func (nw *Network) Live() []id.ID {
	if nw.liveDirty {
		nw.live = nw.live[:0]
		for _, n := range nw.nodes {
			if n.alive && n.Status() == core.StatusJoined {
				nw.live = append(nw.live, n.Self().ID)
			}
		}
		slices.SortFunc(nw.live, func(a, b id.ID) int { return a.Cmp(b) })
		nw.liveDirty = false
	}
	return nw.live
}

func (nw *Network) push(e event) {
	nw.seq++
	e.seq = nw.seq
	nw.q.push(e)
}
