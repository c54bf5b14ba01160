package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// inbox collects delivered messages.
type inbox struct {
	mu   sync.Mutex
	msgs []*core.Message
	busy map[string]bool // peers whose handler call is in progress
	bad  string          // first violation of the handler's concurrency rule
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1), busy: map[string]bool{}} }

func (in *inbox) handle(m *core.Message) {
	in.mu.Lock()
	if in.busy[m.From.Addr] && in.bad == "" {
		in.bad = "handler called concurrently for " + m.From.String()
	}
	in.busy[m.From.Addr] = true
	in.mu.Unlock()
	time.Sleep(time.Microsecond) // widen the window for a concurrency bug
	in.mu.Lock()
	in.busy[m.From.Addr] = false
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	select {
	case in.ch <- struct{}{}:
	default:
	}
}

func (in *inbox) snapshot() []*core.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*core.Message(nil), in.msgs...)
}

// waitN waits until n messages have arrived or the deadline passes.
func (in *inbox) waitN(t *testing.T, n int, d time.Duration) []*core.Message {
	t.Helper()
	deadline := time.After(d)
	for {
		if got := in.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-in.ch:
		case <-deadline:
			t.Fatalf("received %d messages, want %d", len(in.snapshot()), n)
		}
	}
}

type node struct {
	h  host.Host
	t  *Libp2p
	in *inbox
	id identity
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newNode starts a host on 127.0.0.1 with a transport. Cleanup closes both.
func newNode(t *testing.T, seed uint64, opts ...Option) *node {
	t.Helper()
	return newNodeHost(t, seed, nil, opts...)
}

// newNodeHost is newNode with tweak applied to the host's config.
func newNodeHost(t *testing.T, seed uint64, tweak func(*HostConfig), opts ...Option) *node {
	t.Helper()
	id := newIdentity(t, seed)
	hc := DefaultHostConfig(id.priv)
	if tweak != nil {
		tweak(&hc)
	}
	h, err := NewHost(hc)
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	tr, err := NewLibp2p(h, in.handle, append([]Option{Logger(quietLogger)}, opts...)...)
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		h.Close()
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.bad != "" {
			t.Error(in.bad)
		}
	})
	return &node{h: h, t: tr, in: in, id: id}
}

// introduce lets each node dial the others.
func introduce(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
	}
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func msg(typ core.MsgType, from, to *node, seq uint64) *core.Message {
	return &core.Message{Type: typ, From: from.id.h, To: to.id.h, Seq: seq, Payload: []byte(fmt.Sprint("m", seq))}
}

// ourStreams counts open streams of proto between a and b, as a sees them.
func ourStreams(a, b host.Host, proto protocol.ID) (in, out int) {
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		for _, s := range c.GetStreams() {
			if s.Protocol() != proto {
				continue
			}
			if s.Stat().Direction == network.DirInbound {
				in++
			} else {
				out++
			}
		}
	}
	return in, out
}

func TestLibp2pExchangeBothWays(t *testing.T) {
	nodes := []*node{newNode(t, 1), newNode(t, 2), newNode(t, 3)}
	introduce(nodes...)
	const per = 50
	types := allTypes()
	for i, a := range nodes {
		for j, b := range nodes {
			if i == j {
				continue
			}
			for k := range per {
				m := msg(types[k%len(types)], a, b, uint64(i*1000+k))
				if err := a.t.Send(m); err != nil {
					t.Fatalf("send %d->%d: %v", i, j, err)
				}
			}
		}
	}
	for i, b := range nodes {
		got := b.in.waitN(t, 2*per, 10*time.Second)
		last := map[string]uint64{}
		for _, m := range got {
			if m.To != b.id.h {
				t.Fatalf("node %d got a message for %s", i, m.To)
			}
			if prev, ok := last[m.From.Addr]; ok && m.Seq <= prev {
				t.Fatalf("node %d: out of order from %s: %d after %d", i, m.From, m.Seq, prev)
			}
			last[m.From.Addr] = m.Seq
			if string(m.Payload) != fmt.Sprint("m", m.Seq) {
				t.Fatalf("payload %q for seq %d", m.Payload, m.Seq)
			}
		}
	}
	for i, n := range nodes {
		var sent, recv uint64
		// A sender counts a frame once its write returns, which may be
		// after the receiver has it.
		eventually(t, 5*time.Second, "counters", func() bool {
			st := n.t.Stats()
			sent, recv = 0, 0
			for k := range MsgTypeSlots {
				sent += st.SentMsgs[k]
				recv += st.RecvMsgs[k]
			}
			return sent == 2*per && recv == 2*per
		})
		st := n.t.Stats()
		if st.StreamsOpened != 2 || st.StreamsAccepted != 2 {
			t.Errorf("node %d: opened %d accepted %d streams, want 2 each", i, st.StreamsOpened, st.StreamsAccepted)
		}
		if st.TotalRejected() != 0 || st.TotalDropped() != 0 {
			t.Errorf("node %d: rejected %v dropped %v", i, st.Rejected, st.Dropped)
		}
		if st.SentBytes[core.MsgRoute] == 0 {
			t.Errorf("node %d: no bytes counted", i)
		}
	}
}

func TestLibp2pOneStreamCarriesManyFrames(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	introduce(a, b)
	const n = 2000
	sent := 0
	for i := range n {
		if err := a.t.Send(msg(core.MsgRoute, a, b, uint64(i+1))); err != nil {
			if !errors.Is(err, ErrQueueFull) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // let the writer drain; best-effort by design
			continue
		}
		sent++
		if i == 10 {
			if err := b.t.Send(msg(core.MsgRouteAck, b, a, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := b.in.waitN(t, sent, 10*time.Second)
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("out of order at %d", i)
		}
	}
	a.in.waitN(t, 1, 5*time.Second)
	if sa, sb := a.t.Stats(), b.t.Stats(); sa.StreamsOpened != 1 || sb.StreamsAccepted != 1 || sb.StreamsOpened != 1 || sa.StreamsAccepted != 1 {
		t.Fatalf("streams: a opened %d accepted %d, b opened %d accepted %d; want 1 per direction",
			sa.StreamsOpened, sa.StreamsAccepted, sb.StreamsOpened, sb.StreamsAccepted)
	}
	if in, out := ourStreams(a.h, b.h, a.t.Protocol()); in != 1 || out != 1 {
		t.Fatalf("a has %d inbound and %d outbound pastry streams to b, want 1 and 1", in, out)
	}
	if sent < n/2 {
		t.Fatalf("only %d of %d sends accepted", sent, n)
	}
}

func TestLibp2pPing(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	introduce(a, b)
	if _, ok := a.t.RTT(ph(b.h.ID())); ok {
		t.Fatal("RTT known before any ping")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rtts []time.Duration
	for range 20 {
		rtt, err := a.t.Ping(ctx, ph(b.h.ID()))
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 || rtt > 5*time.Second {
			t.Fatalf("rtt %s", rtt)
		}
		rtts = append(rtts, rtt)
	}
	srtt, ok := a.t.RTT(ph(b.h.ID()))
	if !ok || srtt <= 0 {
		t.Fatalf("RTT = %s, %v", srtt, ok)
	}
	st := a.t.Stats()
	if st.PingsSent != 20 || st.PongsReceived != 20 {
		t.Fatalf("pings %d pongs %d", st.PingsSent, st.PongsReceived)
	}
	// Pings share the stream with messages.
	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 1, 5*time.Second)
	if st := a.t.Stats(); st.StreamsOpened != 1 {
		t.Fatalf("opened %d streams for pings and messages, want 1", st.StreamsOpened)
	}
	// The pongs came on b's own stream to a, which a reads; a's stream
	// to b is not read.
	if sa, sb := a.t.Stats(), b.t.Stats(); sb.StreamsOpened != 1 || sa.StreamsAccepted != 1 {
		t.Fatalf("b opened %d streams, a accepted %d; want 1 (the pongs')", sb.StreamsOpened, sa.StreamsAccepted)
	}
	t.Logf("ping RTTs: first %s, smoothed %s", rtts[0], srtt)

	// Pinging a peer that cannot be reached fails within the context.
	ghost := newIdentity(t, 99)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := a.t.Ping(ctx2, ph(ghost.pid)); err == nil {
		t.Fatal("ping to an unknown peer succeeded")
	}
	if _, err := a.t.Ping(ctx2, ph(a.h.ID())); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("ping self: %v", err)
	}
}

func TestLibp2pReopensAfterReset(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	introduce(a, b)
	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 1, 5*time.Second)
	// b resets a's stream (as a crash of the stream would).
	for _, c := range b.h.Network().ConnsToPeer(a.h.ID()) {
		for _, s := range c.GetStreams() {
			if s.Protocol() == b.t.Protocol() {
				s.Reset()
			}
		}
	}
	// a notices (its pong reader sees the reset) and opens a new stream for
	// the next message.
	eventually(t, 5*time.Second, "a new stream", func() bool {
		a.t.Send(msg(core.MsgProbe, a, b, 2))
		return a.t.Stats().StreamsOpened >= 2 && len(b.in.snapshot()) >= 2
	})
}

func TestLibp2pIdleStreamsClose(t *testing.T) {
	a := newNode(t, 1, Timeouts(5*time.Second, 5*time.Second, 100*time.Millisecond))
	b := newNode(t, 2)
	introduce(a, b)
	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "idle stream to close and peer state to go", func() bool {
		_, out := ourStreams(a.h, b.h, a.t.Protocol())
		a.t.mu.Lock()
		defer a.t.mu.Unlock()
		return out == 0 && len(a.t.peers) == 0
	})
	if err := a.t.Send(msg(core.MsgProbe, a, b, 2)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 2, 5*time.Second)
	if st := a.t.Stats(); st.StreamsOpened != 2 || st.StreamResets != 0 {
		t.Fatalf("opened %d, resets %d", st.StreamsOpened, st.StreamResets)
	}
}

// TestLibp2pPingOnlyStreamsIdleOutSooner: streams that carried only a ping
// and its pong, or a probe and its reply, close after the ping idle
// timeout, and a connection the probe had to dial is closed by the sweep;
// a stream that carried another message keeps the idle timeout, pings on
// it included, and so does its connection.
func TestLibp2pPingOnlyStreamsIdleOutSooner(t *testing.T) {
	opts := []Option{
		Timeouts(5*time.Second, 5*time.Second, time.Minute), PingIdleTimeout(50 * time.Millisecond),
		MeasureLimits(16, 20*time.Millisecond),
	}
	a, b := newNode(t, 1, opts...), newNode(t, 2, opts...)
	introduce(a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.t.Ping(ctx, ph(b.id.pid)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the ping's and the pong's streams to close", func() bool {
		in, out := ourStreams(a.h, b.h, a.t.Protocol())
		return in == 0 && out == 0
	})
	eventually(t, 5*time.Second, "the ping's connection to close", func() bool {
		return a.h.Network().Connectedness(b.h.ID()) != network.Connected
	})

	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 1, 5*time.Second)
	if err := b.t.Send(msg(core.MsgProbeReply, b, a, 1)); err != nil {
		t.Fatal(err)
	}
	a.in.waitN(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "the probe's and the reply's streams to close", func() bool {
		in, out := ourStreams(a.h, b.h, a.t.Protocol())
		return in == 0 && out == 0
	})
	eventually(t, 5*time.Second, "the probe's connection to close", func() bool {
		return a.h.Network().Connectedness(b.h.ID()) != network.Connected
	})
	if st := a.t.Stats(); st.MeasureConnsClosed != 2 {
		t.Fatalf("%d measurement connections closed, want 2 (the ping's and the probe's)", st.MeasureConnsClosed)
	}

	if err := a.t.Send(msg(core.MsgHeartbeat, a, b, 2)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 2, 5*time.Second)
	if _, err := a.t.Ping(ctx, ph(b.id.pid)); err != nil {
		t.Fatal(err)
	}
	// b's writer carried only the pong: it goes; a's carried a message and
	// stays for the minute of the idle timeout, and with it the connection.
	eventually(t, 5*time.Second, "the second pong's stream to close", func() bool {
		in, _ := ourStreams(a.h, b.h, a.t.Protocol())
		return in == 0
	})
	time.Sleep(20 * 50 * time.Millisecond) // twenty ping idle timeouts, fifty sweeps
	if _, out := ourStreams(a.h, b.h, a.t.Protocol()); out != 1 {
		t.Fatalf("a has %d outbound streams to b after a message, want 1 until the idle timeout", out)
	}
	if st := a.t.Stats(); st.MeasureConnsClosed != 2 {
		t.Fatalf("%d measurement connections closed, want still 2", st.MeasureConnsClosed)
	}
}

func TestLibp2pProtocolPrefixSeparatesNetworks(t *testing.T) {
	a := newNode(t, 1, ProtocolPrefix("/alpha"))
	b := newNode(t, 2, ProtocolPrefix("/beta"))
	c := newNode(t, 3, ProtocolPrefix("/alpha"))
	introduce(a, b, c)
	if a.t.Protocol() != "/alpha/pastry/1.0.0" {
		t.Fatalf("protocol %s", a.t.Protocol())
	}
	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	if err := a.t.Send(msg(core.MsgProbe, a, c, 1)); err != nil {
		t.Fatal(err)
	}
	c.in.waitN(t, 1, 5*time.Second)
	eventually(t, 10*time.Second, "the send to another network to fail", func() bool {
		return a.t.Stats().Dropped[DropOpen] == 1
	})
	if got := b.in.snapshot(); len(got) != 0 {
		t.Fatalf("a node of another network received %d messages", len(got))
	}
}

func TestLibp2pOptionsErrorsNameTheOption(t *testing.T) {
	id := newIdentity(t, 1)
	h, err := NewHost(DefaultHostConfig(id.priv))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	bad := map[string]Option{
		"ProtocolPrefix":  ProtocolPrefix("nope/"),
		"QueueLimits":     QueueLimits(0, 1),
		"Timeouts":        Timeouts(0, time.Second, time.Second),
		"PingIdleTimeout": PingIdleTimeout(0),
		"WithLimits":      WithLimits(Limits{MaxFrame: 1}),
		"AddrTTL":         AddrTTL(-1),
		"Logger":          Logger(nil),
	}
	for name, o := range bad {
		tr, err := NewLibp2p(h, func(*core.Message) {}, o)
		if err == nil {
			tr.Close()
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the option", name, err)
		}
	}
	if _, err := NewLibp2p(h, nil); err == nil {
		t.Error("nil handler accepted")
	}
}

func TestLibp2pSendErrors(t *testing.T) {
	a := newNode(t, 1, QueueLimits(4, 1<<20))
	if err := a.t.Send(&core.Message{Type: core.MsgProbe, From: a.id.h, To: id.Handle{}}); err == nil {
		t.Fatal("send without a peer ID accepted")
	}
	if err := a.t.Send(&core.Message{Type: core.MsgProbe, From: a.id.h, To: a.id.h}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("send to self: %v", err)
	}
	if err := a.t.Send(&core.Message{Type: 99, From: a.id.h, To: newIdentity(t, 5).h}); !errors.Is(err, ErrBadType) {
		t.Fatalf("bad type: %v", err)
	}
	if st := a.t.Stats(); st.Dropped[DropEncode] != 3 {
		t.Fatalf("encode drops %d, want 3", st.Dropped[DropEncode])
	}
	// A frame larger than a whole queue is refused, and the peer it was
	// for is not remembered.
	small := newNode(t, 6, QueueLimits(4, 64))
	big := &core.Message{Type: core.MsgProbe, From: small.id.h, To: newIdentity(t, 7).h, Payload: make([]byte, 100)}
	if err := small.t.Send(big); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("a frame over the queue's bytes: %v", err)
	}
	small.t.mu.Lock()
	left := len(small.t.peers)
	small.t.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d peers remembered after a refused frame", left)
	}
	a.t.Close()
	if err := a.t.Send(&core.Message{Type: core.MsgProbe, From: a.id.h, To: newIdentity(t, 5).h}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if _, err := a.t.Ping(context.Background(), ph(newIdentity(t, 5).pid)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

func TestLibp2pProtect(t *testing.T) {
	a := newNode(t, 1)
	p := newIdentity(t, 2).pid
	a.t.Protect(p)
	if !a.h.ConnManager().IsProtected(p, protectTag) {
		t.Fatal("not protected")
	}
	if a.t.Unprotect(p) {
		t.Fatal("still protected by another tag")
	}
	if a.h.ConnManager().IsProtected(p, protectTag) {
		t.Fatal("still protected")
	}
}

// No transport goroutine outlives Close, even with traffic in flight.
func TestLibp2pCloseLeavesNoGoroutines(t *testing.T) {
	func() {
		a, b := newNode(t, 1), newNode(t, 2)
		introduce(a, b)
		for i := range 100 {
			a.t.Send(msg(core.MsgRoute, a, b, uint64(i)))
			b.t.Send(msg(core.MsgRoute, b, a, uint64(i)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.t.Ping(ctx, ph(b.h.ID()))
		a.t.Close()
		b.t.Close()
		a.h.Close()
		b.h.Close()
	}()
	if s := transportGoroutines(); s != "" {
		t.Fatalf("goroutines left after Close:\n%s", s)
	}
}

// transportGoroutines returns the stacks of goroutines running transport
// code (other than tests).
func transportGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "transport.(*Libp2p)") || strings.Contains(g, "transport.(*Mem") || strings.Contains(g, "transport.(*Hub)") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// Addresses travel with handles: b learns c's addresses from a's leaf set
// and can then reach c, which it was never told about.
func TestLibp2pLearnsAddressesFromHandles(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	var filtered []string
	c := newNode(t, 3)
	d := newNode(t, 4, AddrFilter(func(_ peer.ID, addr ma.Multiaddr) bool {
		filtered = append(filtered, addr.String())
		return false // d refuses every learned address
	}))
	introduce(a, b, c)
	introduce(a, d)
	for _, to := range []*node{b, d} {
		if err := a.t.Send(&core.Message{Type: core.MsgLeafReply, From: a.id.h, To: to.id.h, Handles: []id.Handle{c.id.h}}); err != nil {
			t.Fatal(err)
		}
		to.in.waitN(t, 1, 5*time.Second)
	}
	if len(b.h.Peerstore().Addrs(c.h.ID())) == 0 {
		t.Fatal("b did not learn c's addresses")
	}
	if err := b.t.Send(msg(core.MsgProbe, b, c, 1)); err != nil {
		t.Fatal(err)
	}
	c.in.waitN(t, 1, 5*time.Second)
	if len(d.h.Peerstore().Addrs(c.h.ID())) != 0 || len(filtered) == 0 {
		t.Fatalf("the address filter was not applied: %v", filtered)
	}
}

// A writer busy with batches still answers the wake-ups of pings and
// Close: they are looked at before every wait, even when a batch's drain
// took the empty frame that announced them (a ping then waited for the
// next message, and Close for the idle timeout, two minutes).
func TestLibp2pWriterWakesWhileBusy(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	introduce(a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.t.Ping(ctx, ph(b.h.ID())); err != nil { // the stream is open
		t.Fatal(err)
	}
	seq := uint64(0)
	burst := func() {
		for range 200 {
			seq++
			if err := a.t.Send(msg(core.MsgProbe, a, b, seq)); err != nil && !errors.Is(err, ErrQueueFull) {
				t.Fatal(err)
			}
		}
	}
	for i := range 50 {
		burst() // then a ping at once: its wake-up lands in the drain
		pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := a.t.Ping(pctx, ph(b.h.ID()))
		pcancel()
		if err != nil {
			t.Fatalf("ping %d after a burst: %v", i, err)
		}
	}
	for i := range 10 {
		c := newNode(t, uint64(10+i))
		introduce(c, b)
		for range 200 {
			seq++
			_ = c.t.Send(msg(core.MsgProbe, c, b, seq))
		}
		closed := make(chan error, 1)
		go func() { closed <- c.t.Close() }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close %d did not return while its writer drained a burst", i)
		}
	}
}

// Close removes the protocol handler, unless KeepHandlerOnClose: then the
// handler stays (sparing the identify push) and resets what still comes.
func TestLibp2pKeepHandlerOnClose(t *testing.T) {
	speaks := func(n *node) bool { return slices.Contains(n.h.Mux().Protocols(), n.t.Protocol()) }
	a, b := newNode(t, 1), newNode(t, 2, KeepHandlerOnClose())
	introduce(a, b)
	if !speaks(a) || !speaks(b) {
		t.Fatal("handlers not registered")
	}
	a.t.Close()
	b.t.Close()
	if speaks(a) {
		t.Error("Close left the handler")
	}
	if !speaks(b) {
		t.Fatal("Close removed the handler despite KeepHandlerOnClose")
	}
	expectReset(t, rawStream(t, a.h, b))
}

// A writer whose stream is found gone when next written to (the peer's
// transport was replaced on the same host, or the peer restarted with
// the same identity) writes the frames again on a new stream rather than
// drop them: a join reply lost that way kept a rejoining node waiting for
// its join timeout. A ping is written again the same way.
func TestLibp2pRewritesOnGoneStream(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	introduce(a, b)
	if err := a.t.Send(msg(core.MsgProbe, a, b, 1)); err != nil {
		t.Fatal(err)
	}
	b.in.waitN(t, 1, 5*time.Second)

	// restart replaces b's transport, on the same host (its inbound
	// streams are reset) or on a new host with the same key once a has
	// seen the old one's connection close, and has b write to a first, as
	// a rejoining node sends its join: on the same host, a has then seen
	// the reset, which b sent before on the same connection.
	heard := 0
	restart := func(newHost bool) *inbox {
		t.Helper()
		b.t.Close()
		if newHost {
			b.h.Close()
			eventually(t, 5*time.Second, "a to see b's old host gone", func() bool {
				return a.h.Network().Connectedness(b.h.ID()) != network.Connected
			})
			h, err := NewHost(DefaultHostConfig(b.id.priv))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			b.h = h
			h.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), peerstore.PermanentAddrTTL)
			a.h.Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.PermanentAddrTTL)
		}
		in := newInbox()
		tr, err := NewLibp2p(b.h, in.handle, Logger(quietLogger))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		b.t = tr
		if err := b.t.Send(msg(core.MsgProbe, b, a, 100)); err != nil {
			t.Fatal(err)
		}
		heard++
		a.in.waitN(t, heard, 5*time.Second)
		return in
	}
	seq := uint64(1)
	for _, newHost := range []bool{false, true} {
		in := restart(newHost)
		seq++
		if err := a.t.Send(msg(core.MsgProbe, a, b, seq)); err != nil {
			t.Fatal(err)
		}
		if got := in.waitN(t, 1, 5*time.Second); got[0].Seq != seq {
			t.Fatalf("new host %v: received seq %d, want %d", newHost, got[0].Seq, seq)
		}
		restart(false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := a.t.Ping(ctx, ph(b.h.ID()))
		cancel()
		if err != nil {
			t.Fatalf("new host %v: a ping after the restart: %v", newHost, err)
		}
	}
	if st := a.t.Stats(); st.TotalDropped() != 0 || st.WriteRetries != 4 {
		t.Fatalf("dropped %v, %d rewrites; want none and 4", st.Dropped, st.WriteRetries)
	}
}
