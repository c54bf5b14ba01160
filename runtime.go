package pastry

// The runtime: the event loop that drives one node's protocol core over a
// transport. It knows no libp2p (runtime_test.go checks this file's
// imports): every transport-specific policy (connection protection,
// dial budgets, the sweep of measurement connections) sits behind the
// transport's interfaces, and the libp2p facade (node.go) only builds the
// transport and translates peer IDs and addresses.

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/replication"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/transport"
)

// startCore builds the core with the lookup application and starts the
// loop.
func (n *Node) startCore() error {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return fmt.Errorf("pastry: seed: %w", err)
	}
	var env core.Environment = &runtimeEnv{n: n, rng: rand.New(rand.NewChaCha8(seed))}
	if s, ok := n.tr.(transport.Signer); ok {
		env = signingEnv{env.(*runtimeEnv), s}
	}
	c, err := core.NewMachine(n.opts.core, n.self, env)
	if err != nil {
		return err
	}
	if n.opts.adversary != nil {
		if _, err = lookup.RegisterAdversary(c, *n.opts.adversary); err != nil {
			return err
		}
	} else if n.lk, err = lookup.Register(c, lookup.Options{FillInterval: n.fillInterval()}); err != nil {
		return err
	}
	mo := n.opts.multicast
	mo.Deliver, mo.Accept = n.deliverTopic, n.opts.anycastAccept
	if n.sc, err = multicast.Register(c, mo); err != nil {
		return err
	}
	if n.store == nil {
		if n.store, err = replication.NewMemStore(replication.Options{}); err != nil {
			return err
		}
	}
	po := n.opts.past
	po.Epoch = n.start.Unix()
	if n.past, err = replication.RegisterPast(c, n.store, po); err != nil {
		return err
	}
	n.past.Start()
	n.c = c
	if n.opts.window > 0 {
		n.win = newRouteWindow(n.opts.window, n.opts.core.HopTimeoutMin)
	}
	n.timer = time.NewTimer(time.Hour)
	n.timer.Stop()
	if r, ok := n.tr.(transport.UnsentReporter); ok {
		r.ReportUnsent(n.onUnsent)
	}
	go n.loop()
	return nil
}

// onUnsent is the transport's report of a message it could not send: the
// core re-routes a hop waiting for its ack at once, rather than at its
// timeout. When the loop's queue is full the report is dropped, and the
// hop's timeout does it.
func (n *Node) onUnsent(u transport.Unsent) {
	select {
	case n.calls <- func() { n.c.Unsent(n.now(), u.To, u.Type, u.Seq) }:
	default:
	}
}

// now is the core's clock: time since the node started, never zero.
func (n *Node) now() time.Duration { return time.Since(n.start) + time.Millisecond }

// onMessage is the transport's handler: queue for the loop, or drop
// (see inbox).
func (n *Node) onMessage(m *core.Message) { n.in.push(m, time.Now()) }

// loop is the node's one goroutine that touches the core.
func (n *Node) loop() {
	defer close(n.done)
	tracker, _ := n.tr.(transport.StateTracker)
	for {
		routes := n.routes
		if n.opts.window > 0 && !n.win.open(n.c.Load()) {
			routes = nil // held back until acks (or timeouts) come
		}
		cause := id.Handle{} // whose message the sends of this turn answer
		select {
		case <-n.quit:
			if tracker != nil {
				tracker.TrackState(nil)
			}
			return
		case <-n.in.wake:
			m := n.in.pop() // one at a time: the other queues' turns interleave
			if m == nil {
				break
			}
			n.stepFrom, cause = m.From, m.From // the handles it names, and the dials it causes, are its
			err := n.c.Step(n.now(), m)
			n.stepFrom = id.Handle{}
			if err != nil {
				n.stepErrors.Add(1)
				n.log.Debug("message refused", "err", err)
			}
		case f := <-routes:
			f()
		case f := <-n.calls:
			f()
		case <-n.timer.C:
			n.c.Tick(n.now())
		}
		n.flushFor(cause)
		if n.opts.window > 0 {
			n.win.observe(n.now(), n.c.Load())
		}
		if tracker != nil {
			tracker.TrackState(n.c.State())
		}
	}
}

// flush carries out the core's Ready: send, re-arm the timer, publish the
// status.
func (n *Node) flush() { n.flushFor(id.Handle{}) }

// flushFor is flush for what the message of cause made the core do: the
// connections its sends open are charged to cause (CausedSender).
func (n *Node) flushFor(cause id.Handle) {
	rd := n.c.Ready()
	cs, budgeted := n.tr.(transport.CausedSender)
	for i := range rd.Messages {
		var err error
		if budgeted && cause.Addr != "" {
			err = cs.SendFor(&rd.Messages[i], cause)
		} else {
			err = n.tr.Send(&rd.Messages[i])
		}
		if err != nil {
			n.log.Debug("send", "to", rd.Messages[i].To, "type", rd.Messages[i].Type, "err", err)
		}
	}
	n.c.Advance()
	n.timer.Stop()
	if rd.WakeAt != 0 {
		n.timer.Reset(max(0, rd.WakeAt-n.now()))
	}
	st := n.c.Status()
	n.status.Store(uint32(st))
	if st == core.StatusJoined {
		n.joinedO.Do(func() { close(n.joined) })
	}
}

// callQueue bounds the closures waiting for the event loop, in each of
// its two queues (Route's and Lookup's, paced by the route window, and
// call's); beyond it their callers wait.
const callQueue = 256

// call runs f on the loop goroutine, inside core.Machine.Run (f may call
// the Endpoints of the node's applications), and waits for it.
func (n *Node) call(ctx context.Context, f func()) error {
	finished := make(chan struct{})
	// Flush before reporting back, so that the caller sees what f did (a
	// join in progress, say) published, not the state before it.
	select {
	case n.calls <- func() { n.c.Run(n.now(), f); n.flush(); close(finished) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.quit:
		return ErrClosed
	}
	select {
	case <-finished:
		return nil
	case <-n.quit:
		return ErrClosed
	}
}

// runtimeEnv is the core's environment: a ChaCha8 generator seeded from
// crypto/rand, proximity from the transport's ping RTTs, and the
// transport's connectivity.
type runtimeEnv struct {
	n   *Node
	rng *rand.Rand
}

var (
	_ core.Connectivity   = (*runtimeEnv)(nil)
	_ core.ProximityCache = (*runtimeEnv)(nil)
)

func (e *runtimeEnv) Uint64() uint64 { return e.rng.Uint64() }

// Proximity returns the measured RTT to h, or UnknownProximity while a
// measurement is started in the background, charged to the sender of the
// message being stepped.
func (e *runtimeEnv) Proximity(h id.Handle) uint32 {
	if p := e.KnownProximity(h); p != routing.UnknownProximity {
		return p
	}
	if h.ID != e.n.self.ID {
		e.n.tr.Measure(h, e.n.stepFrom)
	}
	return routing.UnknownProximity
}

// KnownProximity implements core.ProximityCache: the measured RTT to h,
// or UnknownProximity, with no measurement started.
func (e *runtimeEnv) KnownProximity(h id.Handle) uint32 {
	if rtt, ok := e.n.tr.RTT(h); ok {
		return uint32(min(rtt.Microseconds(), int64(routing.UnknownProximity-1)))
	}
	return routing.UnknownProximity
}

// Connected asks the transport, if it tells; otherwise every node is.
func (e *runtimeEnv) Connected(h id.Handle) bool {
	if c, ok := e.n.tr.(transport.Connectivity); ok {
		return c.Connected(h)
	}
	return true
}

// AddrGroup asks the transport, if it tells (core.AddressGrouper: the
// admission policy's address diversity).
func (e *runtimeEnv) AddrGroup(h id.Handle) (uint64, bool) {
	if g, ok := e.n.tr.(core.AddressGrouper); ok {
		return g.AddrGroup(h)
	}
	return 0, false
}

// ValidHandle asks the transport, if it tells (core.HandleChecker).
func (e *runtimeEnv) ValidHandle(h id.Handle) bool {
	if c, ok := e.n.tr.(core.HandleChecker); ok {
		return c.ValidHandle(h)
	}
	return h.Addr != ""
}

// signingEnv is runtimeEnv with the transport's key (core.Signer).
type signingEnv struct {
	*runtimeEnv
	transport.Signer
}

// fillInterval is how often a node with a constrained table (certificate
// mode) fills it by probes to its points (lookup.Options.FillInterval;
// docs/decisions/0082); 0 without one.
func (n *Node) fillInterval() time.Duration {
	if n.opts.core.ConstrainedTable {
		return 10 * time.Minute
	}
	return 0
}
