package pastry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// The hostile peer: one identity anyone can make, speaking the wire
// protocol through a transport of its own on a loopback host, with a
// handler of its choosing (nil: it reads and answers nothing). Each test
// below is one finding of the hardening issue: an attack that worked
// against the overlay before its fix.
type hostilePeer struct {
	t    *testing.T
	h    host.Host
	tr   *transport.Libp2p
	self id.Handle
}

func newHostilePeer(t *testing.T, r *rand.Rand, handler func(a *hostilePeer, m *core.Message)) *hostilePeer {
	t.Helper()
	k, err := secure.GenerateKey(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	h, err := transport.NewLoopbackHost(transport.DefaultHostConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	a := &hostilePeer{t: t, h: h}
	a.self, err = secure.HandleFromPeer(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	a.tr, err = transport.NewLibp2p(h, func(m *core.Message) {
		if handler != nil {
			handler(a, m)
		}
	}, transport.QueueLimits(1<<16, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.tr.Close(); h.Close() })
	return a
}

// to makes the peer able to reach the host of n.
func (a *hostilePeer) to(h host.Host) {
	a.h.Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.PermanentAddrTTL)
}

// send sends m to the node whose handle is to, as this peer.
func (a *hostilePeer) send(to id.Handle, m core.Message) {
	m.From, m.To = a.self, to
	if err := a.tr.Send(&m); err != nil && err != transport.ErrQueueFull {
		a.t.Fatalf("hostile send %s: %v", m.Type, err)
	}
}

// madeUp returns n handles of made-up peers: real Ed25519 identities that
// nothing runs.
func madeUp(t *testing.T, r *rand.Rand, n int) []id.Handle {
	t.Helper()
	hs := make([]id.Handle, n)
	for i := range hs {
		hs[i], _ = keyHandle(t, r)
	}
	return hs
}

// Finding 1: forged lookup answers. A peer off the request's path sends
// the origin answers naming a made-up root: routed, from that root (with
// its valid signature: the attacker made its key), and straight, naming
// itself. Request ids used to be sequential, and an answer was taken when
// it named its routing origin as the root. It keeps guessing the ids of
// the lookups in flight, in the answer layouts of today and of before.
// No lookup may return a root that did not answer.
func TestHostileForgedLookupAnswers(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 1))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 3, func(int) int { return 0 })
	// The victim takes any number of routed messages (WithRouteRateLimit
	// off): this test is about what it does with answers.
	victim, vh := startHostNode(t, r, nil, WithConfig(cfg), WithRouteRateLimit(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := victim.Join(ctx, addrInfo(hosts[0])); err != nil {
		t.Fatal(err)
	}
	cancel()
	o.nodes = append(o.nodes, victim)
	o.waitLeaves(10 * time.Second)
	made := newHostilePeer(t, r, nil) // the made-up root: a real key, nothing behind it
	fakeRoot := made.self
	a := newHostilePeer(t, r, nil)
	a.to(vh)
	var stamp int64
	forge := func(req uint64) {
		// Before: [2][req][hops u16][root][count]; today: [2][req][key][hops][root][count][sig].
		old := binary.BigEndian.AppendUint64([]byte{2}, req)
		old = binary.BigEndian.AppendUint16(old, 1)
		old = append(append(old, fakeRoot.ID[:]...), 0)
		now := binary.BigEndian.AppendUint64([]byte{2}, req)
		now = append(now, make([]byte, id.Len)...) // the key: unknown to the attacker
		now = binary.BigEndian.AppendUint16(now, 1)
		now = append(append(now, fakeRoot.ID[:]...), 0)
		sig, _ := made.tr.Sign(append([]byte("pastry lookup answer v1\x00"), now...))
		stamp++ // distinct messages: the victim drops copies of one it has seen
		a.send(victim.Self(), core.Message{Type: core.MsgRoute, Key: victim.ID(), App: lookup.AppID, Origin: fakeRoot, Payload: old, Hops: 1, Sent: 2 * stamp, Seq: uint64(2 * stamp)})
		a.send(victim.Self(), core.Message{Type: core.MsgRoute, Key: victim.ID(), App: lookup.AppID, Origin: fakeRoot, Payload: append(now, sig...), Hops: 1, Sent: 2*stamp + 1, Seq: uint64(2*stamp + 1)})
		a.send(victim.Self(), core.Message{Type: core.MsgDirect, App: lookup.AppID, Payload: now, Hops: 1, Sent: stamp, Seq: uint64(stamp)})
	}
	real := map[id.ID]bool{}
	for _, n := range o.nodes {
		real[n.ID()] = true
	}
	sent, forged, lookups := 0, 0, 0
	for sent < 10000 {
		// While each lookup is in flight the attacker answers it, guessing
		// its request id as the next of a sequence.
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		n := 0
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				forge(uint64(lookups + 1))
				n += 3
				time.Sleep(20 * time.Microsecond)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := victim.Lookup(ctx, id.Random(r))
		cancel()
		close(done)
		wg.Wait()
		sent += n
		lookups++
		if err == nil && !real[res.Root] {
			forged++
		}
	}
	t.Logf("%d forged answers sent during %d lookups: %d forged roots accepted", sent, lookups, forged)
	if forged != 0 {
		t.Fatalf("%d lookups returned a made-up root", forged)
	}
}

// heapInUse is the process's heap in use (spans) after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// heapLive is the bytes of live objects after a collection.
func heapLive() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Finding 2: memory grows with attacker traffic. 25 MiB of leaf replies
// naming made-up peers, each with 8 addresses of the largest size, used to
// put every address in the peerstore for its 30-minute TTL (+554 MiB of
// heap). Now what the victim keeps is bounded (heap +32 MiB at most), and
// goes with the short TTL of unverified addresses.
func TestHostileAddressFlood(t *testing.T) {
	r := rand.New(rand.NewPCG(82, 2))
	const ttl = 3 * time.Second
	victim, vh := startHostNode(t, r, nil, WithConfig(fastConfig()), WithTransportOptions(transport.UnverifiedAddrTTL(ttl), transport.MeasureLimits(16, 500*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := victim.Join(ctx); err != nil {
		t.Fatal(err)
	}
	a := newHostilePeer(t, r, nil)
	a.to(vh)
	long := func(i, j int) ma.Multiaddr { // 250 bytes or so: a DNS name padded to the limit
		name := make([]byte, 240)
		for k := range name {
			name[k] = 'a' + byte((i+j+k)%26)
		}
		return ma.StringCast("/dns4/" + string(name) + "/tcp/4001")
	}
	before, beforeLive := heapInUse(), heapLive()
	var bytes uint64
	for round := 0; bytes < 25<<20; round++ {
		// Fresh identities each round: the peerstore cannot dedupe them.
		hs := madeUp(t, r, 480)
		for i, h := range hs {
			addrs := make([]ma.Multiaddr, 8)
			for j := range addrs {
				addrs[j] = long(round*480+i, j)
			}
			a.h.Peerstore().AddAddrs(peer.ID(h.Addr), addrs, time.Hour) // what its handles will carry
		}
		a.send(victim.Self(), core.Message{Type: core.MsgLeafReply, Handles: hs})
		bytes = a.tr.Stats().SentBytes[core.MsgLeafReply]
		for _, h := range hs { // encoded: the attacker's own memory is not the victim's
			a.h.Peerstore().ClearAddrs(peer.ID(h.Addr))
			a.h.Peerstore().RemovePeer(peer.ID(h.Addr))
		}
		if round > 200 {
			t.Fatal("the flood did not reach 25 MiB")
		}
	}
	eventually(t, "the flood received", func() bool {
		return victim.Transport().Stats().RecvBytes[core.MsgLeafReply] >= bytes*9/10
	})
	grew := int64(heapInUse()) - int64(before)
	st := victim.Transport().Stats()
	t.Logf("sent %.1f MiB of handles of made-up peers: heap in use %+.1f MiB; %d addresses throttled", float64(bytes)/(1<<20), float64(grew)/(1<<20), st.AddrsThrottled)
	if grew > 32<<20 {
		t.Fatalf("heap in use grew by %.1f MiB under the flood, limit 32", float64(grew)/(1<<20))
	}
	time.Sleep(ttl + time.Second)
	held := 0
	for _, p := range vh.Peerstore().PeersWithAddrs() {
		if len(vh.Peerstore().Addrs(p)) > 0 && p != a.h.ID() && p != vh.ID() {
			held++
		}
	}
	if held != 0 {
		t.Fatalf("%d made-up peers still have addresses past the unverified TTL", held)
	}
	// The spans the flood's garbage took stay with the heap for the
	// runtime to reuse; what is still alive is the codec's bounded caches.
	after, live := int64(heapInUse())-int64(before), int64(heapLive())-int64(beforeLive)
	t.Logf("past the unverified TTL (%v): heap in use %+.1f MiB, live objects %+.1f MiB against the start", ttl, float64(after)/(1<<20), float64(live)/(1<<20))
	if live > 8<<20 {
		t.Fatalf("live objects still %.1f MiB above the start past the TTL", float64(live)/(1<<20))
	}
}

// Finding 3: a joining node can be eclipsed. While a node joins, a peer
// floods it with join answers naming made-up nodes next to its id, which
// a joiner used to take from anyone. Now only the answer to its own join
// (the nonce), from the node it sent the join to, counts, and nothing in
// it is admitted before it answers: the joiner's leaf set holds live
// members only, and its lookups end at true roots.
func TestHostileJoinEclipse(t *testing.T) {
	r := rand.New(rand.NewPCG(83, 3))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	x, xh := hostNode(t, r, nil, WithConfig(cfg))
	t.Cleanup(func() { x.Close(); xh.Close() })
	near := make([]id.Handle, 0, 32)
	for _, h := range madeUp(t, r, 400) { // the made-up peers closest to the joiner's id
		near = append(near, h)
	}
	slices.SortFunc(near, func(p, q id.Handle) int { return id.Clockwise(x.ID(), p.ID).Cmp(id.Clockwise(x.ID(), q.ID)) })
	fakes := append(near[:8:8], near[len(near)-8:]...)
	a := newHostilePeer(t, r, nil)
	a.to(xh)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a.send(x.Self(), core.Message{Type: core.MsgJoinReply, Origin: x.Self(), Key: x.ID(), Handles: fakes})
			a.send(x.Self(), core.Message{Type: core.MsgJoinRows, Handles: fakes})
			time.Sleep(200 * time.Microsecond)
		}
	}()
	time.Sleep(50 * time.Millisecond) // the flood is on before the join starts
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := x.Join(ctx, addrInfo(hosts[1]))
	cancel()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("join under the flood: %v", err)
	}
	o.nodes = append(o.nodes, x)
	inf := x.Info()
	fake := map[id.ID]bool{}
	for _, h := range fakes {
		fake[h.ID] = true
	}
	for _, h := range append(append(inf.Left, inf.Right...), inf.Neighbors...) {
		if fake[h.ID] {
			t.Fatalf("made-up peer %s in the joiner's state", h.ID.Short())
		}
	}
	for _, row := range inf.Rows {
		for _, h := range row {
			if fake[h.ID] {
				t.Fatalf("made-up peer %s in the joiner's routing table", h.ID.Short())
			}
		}
	}
	o.waitLeaves(10 * time.Second)
	for range 40 {
		o.lookupKey(x, id.Random(r))
	}
}

// Finding 4: admission rested on a self-declared flag, and second-hand
// entries went unprobed. A peer that never joined, but answers probes,
// sends one leaf-set reply naming itself and made-up peers. It used to
// enter the victim's leaf set (and take keys next to its id), and the
// made-up peers its table, to be passed on to a node that joined later.
// Now it is never a leaf (no leaf vouches for it), no made-up peer enters
// any state, and a later joiner hears of none.
func TestHostileNeverJoinedPeer(t *testing.T) {
	r := rand.New(rand.NewPCG(84, 4))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	victim := o.nodes[0]
	// It answers probes, as a Sybil would.
	a := newHostilePeer(t, r, func(a *hostilePeer, m *core.Message) {
		if m.Type == core.MsgProbe {
			a.send(m.From, core.Message{Type: core.MsgProbeReply, Seq: m.Seq, Sent: m.Sent})
		}
	})
	a.to(hosts[0])
	fakes := madeUp(t, r, 48)
	a.send(victim.Self(), core.Message{Type: core.MsgLeafReply, Handles: append([]id.Handle{a.self}, fakes...)})
	time.Sleep(10 * cfg.ProbeTimeout)
	fake := map[id.ID]bool{}
	for _, h := range fakes {
		fake[h.ID] = true
	}
	inState := func(n *Node) (leaf, any bool) {
		inf := n.Info()
		for _, h := range append(inf.Left, inf.Right...) {
			leaf = leaf || h.ID == a.self.ID
			any = any || fake[h.ID]
		}
		for _, row := range append(inf.Rows, inf.Neighbors) {
			for _, h := range row {
				any = any || fake[h.ID]
			}
		}
		return leaf, any
	}
	if leaf, any := inState(victim); leaf || any {
		t.Fatalf("the never-joined peer a leaf: %v; a made-up peer in the state: %v", leaf, any)
	}
	for range 30 { // keys next to its id end at true roots
		o.lookupKey(victim, a.self.ID.U128().Add(id.U128{Lo: r.Uint64() >> 4}).ID())
	}
	later, lh := hostNode(t, r, nil, WithConfig(cfg))
	t.Cleanup(func() { later.Close(); lh.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := later.Join(ctx, addrInfo(hosts[0])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.HeartbeatInterval)
	if leaf, any := inState(later); leaf || any {
		t.Fatalf("a later joiner got the never-joined peer as a leaf: %v; a made-up peer: %v", leaf, any)
	}
}

// dialCounter is a connection gater that counts the dials a host tries
// to the peers in fake, and refuses them (nothing leaves the machine).
type dialCounter struct {
	mu    sync.Mutex
	fake  map[peer.ID]bool
	dials int
}

func (g *dialCounter) InterceptPeerDial(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fake[p] {
		g.dials++
		return false
	}
	return true
}
func (g *dialCounter) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g *dialCounter) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (g *dialCounter) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g *dialCounter) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// Finding 5: candidate probes bypassed the dial budget. Twenty messages
// naming 500 made-up peers each made the victim dial 319 times (only its
// proximity pings took the budget). Now every dial another peer's message
// causes, probe or ping, takes that peer's budget: at most its burst
// (128) and refill (64 a minute).
func TestHostileDialAmplification(t *testing.T) {
	r := rand.New(rand.NewPCG(85, 5))
	k, err := secure.GenerateKey(chachaReader{r})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := transport.HostOptions(transport.DefaultHostConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	gate := &dialCounter{fake: map[peer.ID]bool{}}
	vh, err := libp2p.New(append(opts, libp2p.ConnectionGater(gate), libp2p.ForceReachabilityPrivate())...)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := New(vh, WithConfig(fastConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Close(); vh.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := victim.Join(ctx); err != nil {
		t.Fatal(err)
	}
	a := newHostilePeer(t, r, nil)
	a.to(vh)
	start := time.Now()
	for m := range 20 {
		hs := madeUp(t, r, 500)
		for i, h := range hs {
			p := peer.ID(h.Addr)
			gate.mu.Lock()
			gate.fake[p] = true
			gate.mu.Unlock()
			a.h.Peerstore().AddAddrs(p, []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/203.0.%d.%d/tcp/4001", m, i%250+1))}, time.Hour)
		}
		a.send(victim.Self(), core.Message{Type: core.MsgLeafReply, Handles: hs})
	}
	eventually(t, "the messages received", func() bool {
		return victim.Transport().Stats().RecvMsgs[core.MsgLeafReply] == 20
	})
	time.Sleep(2 * time.Second) // the probes' and pings' dials
	gate.mu.Lock()
	dials := gate.dials
	gate.mu.Unlock()
	st := victim.Transport().Stats()
	allowed := 128 + int(64*time.Since(start).Minutes()) + 1
	t.Logf("20 messages naming 10,000 made-up peers: %d dials tried (budget %d); %d sends and %d pings throttled; %d goroutines in the process",
		dials, allowed, st.SendsThrottled, st.MeasuresThrottled, runtime.NumGoroutine())
	if dials > allowed {
		t.Fatalf("%d dials to made-up peers, the sender's budget allows %d", dials, allowed)
	}
}

// Finding 6: join reflection. A peer sends joins naming another identity
// as their origin; the overlay used to send that identity the join's
// rows and reply (12.8 times the bytes the attacker sent). Now a join's
// answers go back the way it came, to the attacker itself.
func TestHostileJoinReflection(t *testing.T) {
	r := rand.New(rand.NewPCG(86, 6))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	b, bh := hostNode(t, r, nil, WithConfig(cfg)) // the reflection's target: never asked to join
	t.Cleanup(func() { b.Close(); bh.Close() })
	a := newHostilePeer(t, r, nil)
	a.to(hosts[1])
	a.h.Peerstore().AddAddrs(bh.ID(), bh.Addrs(), time.Hour) // B's addresses travel with its handle
	for i := range 50 {
		a.send(o.nodes[1].Self(), core.Message{Type: core.MsgJoin, Key: b.ID(), Origin: b.Self(), Sent: int64(i + 1), Seq: uint64(i + 1),
			Hops: 1, Payload: binary.BigEndian.AppendUint64(nil, uint64(i+1))})
	}
	eventually(t, "the joins answered", func() bool { return a.tr.Stats().RecvMsgs[core.MsgJoinReply] > 0 })
	time.Sleep(time.Second)
	sent := a.tr.Stats().SentBytes[core.MsgJoin]
	st := b.Transport().Stats()
	var reflected uint64
	for _, typ := range []core.MsgType{core.MsgJoinRows, core.MsgJoinReply} {
		reflected += st.RecvBytes[typ]
	}
	t.Logf("%d bytes of joins naming B sent: B received %d bytes of join answers, the attacker %d", sent, reflected, a.tr.Stats().RecvBytes[core.MsgJoinReply])
	if reflected != 0 {
		t.Fatalf("B, which never asked, received %d bytes of join answers (%.1fx what the attacker sent)", reflected, float64(reflected)/float64(sent))
	}
}

// Finding 7: a route flood starved the node's own work. One peer sent
// 20,000 valid route messages as fast as it could: the shared inbox
// dropped honest peers' acks among them (24 honest peers suspected), and
// the node's own lookups timed out, its route window counting the hops it
// forwarded. Now the inbox serves peers in turn and limits each one's
// routed messages, and the window counts the node's own hops only: no
// honest peer is suspected, and lookups stay within 10x their quiet p50.
func TestHostileRouteFlood(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 7))
	cfg := fastConfig()
	o, hosts := startLibp2pOverlay(t, r, cfg, 6, func(int) int { return 0 })
	o.waitLeaves(10 * time.Second)
	victim := o.nodes[0]
	p50 := func(lat []time.Duration) time.Duration {
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	lookups := func(n int) []time.Duration {
		var lat []time.Duration
		for range n {
			lat = append(lat, o.lookupKey(victim, id.Random(r)).Latency)
		}
		return lat
	}
	quiet := p50(lookups(100))
	before, _ := victim.Stats(context.Background())
	a := newHostilePeer(t, r, nil)
	a.to(hosts[0])
	done := make(chan struct{})
	fr := rand.New(rand.NewPCG(r.Uint64(), 8)) // the flood's own: r is the lookups'
	go func() {
		defer close(done)
		for i := range 20000 {
			a.send(victim.Self(), core.Message{Type: core.MsgRoute, Key: id.Random(fr), App: 0x77, Origin: a.self,
				Sent: int64(i + 1), Seq: uint64(i + 1), Hops: 1, Payload: make([]byte, 64)})
		}
	}()
	// The flood lasts until the attacker's transport has sent (or
	// dropped) all of it and the victim has received what was sent, or
	// 30 s: Send only queues a message.
	arrived := func() bool {
		select {
		case <-done:
		default:
			return false
		}
		st := a.tr.Stats()
		settled := st.SentMsgs[core.MsgRoute]
		for _, d := range st.Dropped {
			settled += d
		}
		s, _ := victim.Stats(context.Background())
		return settled >= 20000 && s.Transport.RecvMsgs[core.MsgRoute]-before.Transport.RecvMsgs[core.MsgRoute] >= st.SentMsgs[core.MsgRoute]
	}
	var during []time.Duration
	for deadline := time.Now().Add(30 * time.Second); !arrived() || len(during) < 50; {
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not arrive in 30 s (%d lookups meanwhile)", len(during))
		}
		during = append(during, lookups(1)...)
	}
	after, _ := victim.Stats(context.Background())
	if got := after.Transport.RecvMsgs[core.MsgRoute] - before.Transport.RecvMsgs[core.MsgRoute]; got < 10000 {
		t.Fatalf("the victim received %d of the flood's 20,000 route messages: no flood to measure", got)
	}
	flood := p50(during)
	t.Logf("quiet p50 %v; during the flood (%d route messages received, %d forwarded) %d lookups, p50 %v; suspected %d -> %d; inbox drops %d, rate-limited %d",
		quiet, after.Transport.RecvMsgs[core.MsgRoute]-before.Transport.RecvMsgs[core.MsgRoute], after.Core.Forwarded-before.Core.Forwarded,
		len(during), flood, before.Core.Suspected, after.Core.Suspected, after.InboxDrops, after.RateLimited)
	if after.Core.Suspected != before.Core.Suspected {
		t.Errorf("%d peers suspected during the flood (the attacker answers nothing and is never in the state: they were honest)", after.Core.Suspected-before.Core.Suspected)
	}
	if flood > 10*quiet {
		t.Errorf("lookups during the flood: p50 %v, more than 10x the quiet %v", flood, quiet)
	}
}
