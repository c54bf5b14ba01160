package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// Endpoint is an application's one way to act: the core hands one to each
// application when it registers (Machine.RegisterApplication). Through it
// an application routes and sends messages, sets timers, watches nodes,
// draws randomness and reads the Common API, and it does nothing else: no
// goroutine, no clock, no I/O. That is what lets the same application run
// in the simulator and over libp2p.
//
// Concurrency: an Endpoint is not safe for concurrent use. Call it only
// from the application's own upcalls (Deliver, Forward, Update, Timer,
// Failed, Undelivered), which the machine never runs concurrently, or from
// inside Machine.Run (how a driver calls an application on its node's
// goroutine). Every method may be called re-entrantly from any upcall. The
// messages an application asks for go out through Ready, in the order it
// asked; the upcalls its calls cause (a message delivered here at once, a
// timer of zero delay) run after the current upcall returns, never inside
// it.
type Endpoint struct {
	m   *Machine
	app AppID
	a   Application
	rng *rand.Rand
	// The application's optional upcalls, nil when it does not implement
	// them.
	timer       TimerHandler
	failure     FailureHandler
	undelivered UndeliveredHandler
}

// Registrant is implemented by applications that want their Endpoint
// before anything else happens to them: RegisterApplication calls
// Registered with it before it returns, on the node's goroutine, before
// any other upcall. (Over the runtime, an application that took the
// Endpoint from RegisterApplication's result instead would race with its
// first upcalls.)
type Registrant interface {
	Registered(ep *Endpoint)
}

// TimerHandler is implemented by applications that set timers with
// Endpoint.After. Timer runs on the node's goroutine, never concurrently
// with the application's other upcalls; it must not block.
type TimerHandler interface {
	// Timer reports that the timer armed with tag is due.
	Timer(tag uint64)
}

// FailureHandler is implemented by applications that watch nodes with
// Endpoint.Watch. Failed runs on the node's goroutine, never concurrently
// with the application's other upcalls; it must not block.
type FailureHandler interface {
	// Failed reports that a watched node was declared failed (it stopped
	// answering probes) or left; the watch ends with it.
	Failed(h id.Handle)
}

// UndeliveredHandler is implemented by applications that send with
// Endpoint.Send and want to hear of failures. Undelivered runs on the
// node's goroutine, never concurrently with the application's other
// upcalls; it must not block.
type UndeliveredHandler interface {
	// Undelivered hands back a message sent with Send that its addressee
	// did not acknowledge, after one resend (m.To names it; m.Payload is
	// what was sent).
	Undelivered(m *Message)
}

// Errors returned by an Endpoint.
var (
	// ErrNoUpcall: the application does not implement the upcall that
	// would report the outcome (TimerHandler for After, FailureHandler for
	// Watch).
	ErrNoUpcall = errors.New("core: application does not implement the upcall")
	// ErrSelf: a watch of the node itself.
	ErrSelf = errors.New("core: the node itself")
	// ErrNoSigner: the environment holds no key to sign with.
	ErrNoSigner = errors.New("core: the environment cannot sign")
)

// TimerID names a timer armed with Endpoint.After; zero names none.
type TimerID uint64

// appTimer is an application's armed timer.
type appTimer struct {
	ep  *Endpoint
	tag uint64
}

// watch is a node some applications watch (Endpoint.Watch).
type watch struct {
	h     id.Handle
	heard time.Duration // the last first-hand sign of life, or the watch's start
	eps   []*Endpoint   // the watchers, in the order they asked
}

func newEndpoint(m *Machine, appID AppID, app Application) *Endpoint {
	e := &Endpoint{m: m, app: appID, a: app, rng: rand.New(envSource{m.env})}
	e.timer, _ = app.(TimerHandler)
	e.failure, _ = app.(FailureHandler)
	e.undelivered, _ = app.(UndeliveredHandler)
	return e
}

// envSource is the machine's Environment as a math/rand/v2 Source.
type envSource struct{ env Environment }

func (s envSource) Uint64() uint64 { return s.env.Uint64() }

// App is the application id this endpoint routes and sends under.
func (e *Endpoint) App() AppID { return e.app }

// Self is this node's handle.
func (e *Endpoint) Self() id.Handle { return e.m.self }

// Status is the node's place in the overlay's life cycle.
func (e *Endpoint) Status() Status { return e.m.Status() }

// Config is the node's configuration.
func (e *Endpoint) Config() Config { return e.m.cfg }

// Now is the node's clock: the time of the input being handled.
func (e *Endpoint) Now() time.Duration { return e.m.now }

// Rand is the node's environment's random source: seeded in the
// simulator, so that a seed reproduces a run; from crypto/rand in the
// runtime. Values an attacker must not guess (request ids) may be drawn
// from it.
func (e *Endpoint) Rand() *rand.Rand { return e.rng }

// Route sends payload to the live node numerically closest to key, for
// this application at every hop (the Common API's route). If hint is not
// nil it is the first hop. It fails with ErrNotJoined unless the node is
// a member of the overlay.
func (e *Endpoint) Route(key id.ID, payload []byte, hint *id.Handle) error {
	return e.RouteMessage(Message{Key: key, Payload: payload}, hint)
}

// RouteMessage is Route for a message the caller built: Key, Payload and
// Flags (FlagTrace records the path; FlagSecure routes through the
// constrained tables) are taken from m; App is this endpoint's.
func (e *Endpoint) RouteMessage(m Message, hint *id.Handle) error {
	m.App = e.app
	return e.m.route(m, hint)
}

// Send sends payload to node to directly, in one hop, acknowledged as a
// routed hop is. When no acknowledgement comes within the hop timeout the
// message is sent once more; when that is not acknowledged either, or
// the transport reports that it could not be sent, the application's
// Undelivered upcall gets it back, and to is suspected if it is in the
// node's routing state or watched (probed; its failure is then reported
// to its watchers). A message sent twice is delivered at most once. A
// Send to the node itself is delivered here. The receiver's Deliver sees
// Type MsgDirect, with Origin and From the sender and Key zero.
func (e *Endpoint) Send(to id.Handle, payload []byte) error {
	return e.m.sendDirect(e.app, to, payload)
}

// After arms a timer: the application's Timer upcall gets tag once d has
// passed on the node's clock (at the first input at or after that time;
// in the runtime, the loop wakes for it). The application must implement
// TimerHandler.
func (e *Endpoint) After(d time.Duration, tag uint64) (TimerID, error) {
	if e.timer == nil {
		return 0, fmt.Errorf("%w: After needs TimerHandler (application %d)", ErrNoUpcall, e.app)
	}
	return e.m.armApp(e, max(d, 0), tag), nil
}

// Cancel disarms t; it reports whether t was armed and had not fired.
func (e *Endpoint) Cancel(t TimerID) bool {
	at, ok := e.m.appTimers[uint64(t)]
	if !ok || at.ep != e {
		return false
	}
	e.m.dropAppTimer(uint64(t))
	return true
}

// Watch asks for the liveness of h: from now on the node treats every
// message from h as a sign of life, probes h when it has been silent for
// NeighborSilence (checked every HeartbeatInterval, whether or not h is in
// the routing state), and when h is declared failed, by those probes or by
// the node's own failure detection (a hop or Send it did not
// acknowledge), or leaves, calls the application's Failed upcall once and
// ends the watch. The application must implement FailureHandler. Watching
// a node already watched does nothing.
func (e *Endpoint) Watch(h id.Handle) error {
	switch {
	case e.failure == nil:
		return fmt.Errorf("%w: Watch needs FailureHandler (application %d)", ErrNoUpcall, e.app)
	case h.ID == e.m.self.ID:
		return fmt.Errorf("%w: watch of %s", ErrSelf, h)
	}
	e.m.watch(e, h)
	return nil
}

// Unwatch ends this application's watch of h, if any.
func (e *Endpoint) Unwatch(h id.Handle) { e.m.unwatch(e, h.ID) }

// Connected reports whether a message to h goes out without opening a
// connection first (see Connectivity); true where the environment does
// not say.
func (e *Endpoint) Connected(h id.Handle) bool {
	if c, ok := e.m.env.(Connectivity); ok {
		return c.Connected(h)
	}
	return true
}

// Proximity is the round-trip time to h in microseconds as the
// environment knows it (smaller is closer), or routing.UnknownProximity.
// In the runtime an unknown one is measured in the background.
func (e *Endpoint) Proximity(h id.Handle) uint32 {
	if h.ID == e.m.self.ID {
		return 0
	}
	return e.m.env.Proximity(h)
}

// ValidHandle reports whether h is well formed for this environment (see
// HandleChecker): check every handle read from a payload before sending
// to it. True where the environment does not tell.
func (e *Endpoint) ValidHandle(h id.Handle) bool {
	if c, ok := e.m.env.(HandleChecker); ok {
		return c.ValidHandle(h)
	}
	return h.Addr != ""
}

// CanSign reports whether the environment signs for this node (Signer).
func (e *Endpoint) CanSign() bool { _, ok := e.m.env.(Signer); return ok }

// Sign signs data with this node's key; it fails when the environment
// holds no key (see Signer).
func (e *Endpoint) Sign(data []byte) ([]byte, error) {
	s, ok := e.m.env.(Signer)
	if !ok {
		return nil, ErrNoSigner
	}
	return s.Sign(data)
}

// Verify reports whether sig is h's signature of data; false when the
// environment cannot tell (see Signer).
func (e *Endpoint) Verify(h id.Handle, data, sig []byte) bool {
	s, ok := e.m.env.(Signer)
	return ok && s.Verify(h, data, sig)
}

// The Common API's reads (Dabek et al. 2003). They read the node's routing
// state as it is after the input being handled.

// ReplicaSet returns up to k nodes (this one included) from the leaf set,
// closest to key first.
func (e *Endpoint) ReplicaSet(key id.ID, k int) []id.Handle { return e.m.ReplicaSet(key, k) }

// Range returns the key range for which h is among the rank+1 closest
// nodes, as far as the leaf set shows; ok is false when it cannot tell.
func (e *Endpoint) Range(h id.Handle, rank int) (lo, hi id.ID, ok bool) { return e.m.Range(h, rank) }

// NeighborSet returns up to num leaf-set members, nearest first.
func (e *Endpoint) NeighborSet(num int) []id.Handle { return e.m.NeighborSet(num) }

// LocalLookup returns up to num candidate next hops toward key, best
// first; empty means this node is key's root.
func (e *Endpoint) LocalLookup(key id.ID, num int, safe bool) []id.Handle {
	return e.m.LocalLookup(key, num, safe)
}

// State is the node's routing state (leaf set, routing table,
// neighbourhood set), read only.
func (e *Endpoint) State() *routing.State { return e.m.state }

// Endpoint returns the endpoint of the application registered as appID,
// or nil: how a driver acts for an application, inside Run.
func (n *Machine) Endpoint(appID AppID) *Endpoint {
	for _, a := range n.apps {
		if a.id == appID {
			return a.ep
		}
	}
	return nil
}

// Run is how a driver calls into its node's applications: it advances the
// node's clock to now, runs f (which may call Endpoints), then runs the
// upcalls f caused. Call Ready afterwards, as after any input.
func (n *Machine) Run(now time.Duration, f func()) {
	n.advance(now)
	f()
	n.flush()
}

// armApp arms an application timer.
func (n *Machine) armApp(e *Endpoint, d time.Duration, tag uint64) TimerID {
	if n.appTimers == nil {
		n.appTimers = map[uint64]appTimer{}
	}
	n.appTimerSeq++
	t := n.appTimerSeq
	n.appTimers[t] = appTimer{ep: e, tag: tag}
	at := n.now + d
	if at == 0 {
		at = 1 // WakeAt 0 means no timer
	}
	n.arm(at, timerApp, t)
	return TimerID(t)
}

func (n *Machine) dropAppTimer(t uint64) {
	delete(n.appTimers, t)
	if len(n.appTimers) == 0 {
		n.appTimers = nil // see dropProbe
	}
}

// onAppTimer queues the Timer upcall of application timer t.
func (n *Machine) onAppTimer(t uint64) {
	at, ok := n.appTimers[t]
	if !ok {
		return
	}
	n.dropAppTimer(t)
	n.upcalls = append(n.upcalls, upcall{kind: upTimer, ep: at.ep, tag: at.tag})
}

func (n *Machine) watch(e *Endpoint, h id.Handle) {
	if n.watched == nil {
		n.watched = map[id.ID]*watch{}
	}
	w := n.watched[h.ID]
	if w == nil {
		w = &watch{h: h, heard: n.now}
		n.watched[h.ID] = w
	}
	for _, x := range w.eps {
		if x == e {
			return
		}
	}
	w.eps = append(w.eps, e)
}

func (n *Machine) unwatch(e *Endpoint, x id.ID) {
	w := n.watched[x]
	if w == nil {
		return
	}
	for i, y := range w.eps {
		if y == e {
			w.eps = append(w.eps[:i], w.eps[i+1:]...)
			break
		}
	}
	if len(w.eps) == 0 {
		n.dropWatch(x)
	}
}

func (n *Machine) dropWatch(x id.ID) {
	delete(n.watched, x)
	if len(n.watched) == 0 {
		n.watched = nil
	}
}

// watchFailed reports h's failure to its watchers and ends the watch.
func (n *Machine) watchFailed(h id.Handle) {
	w := n.watched[h.ID]
	if w == nil {
		return
	}
	n.dropWatch(h.ID)
	for _, e := range w.eps {
		n.upcalls = append(n.upcalls, upcall{kind: upFailed, ep: e, h: h})
	}
}

// checkWatched probes the watched nodes that have been silent for
// NeighborSilence (on every heartbeat timer). In a deterministic order:
// map order is random.
func (n *Machine) checkWatched() {
	if len(n.watched) == 0 {
		return
	}
	var silent []id.Handle
	for _, w := range n.watched {
		if n.now-w.heard > n.cfg.NeighborSilence && n.probes[w.h.ID] == nil {
			silent = append(silent, w.h)
		}
	}
	sortHandles(silent)
	for _, h := range silent {
		n.startProbe(h, probe{})
	}
}

// SendUnacked sends payload to node to directly, in one hop, as Send
// does, but asks for no acknowledgement (FlagNoAck): it is not sent again,
// no Undelivered upcall comes back, and to is not suspected if it is lost.
// It is for answers whose asker has its own timeout and asks again (a
// lookup's answer): it saves the acknowledgement's message.
func (e *Endpoint) SendUnacked(to id.Handle, payload []byte) error {
	return e.m.sendDirectUnacked(e.app, to, payload)
}

func sortHandles(hs []id.Handle) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].ID.Cmp(hs[j-1].ID) < 0; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// sendDirect sends payload to to in one acknowledged hop (Endpoint.Send).
func (n *Machine) sendDirect(app AppID, to id.Handle, payload []byte) error {
	if n.status != StatusJoined && n.status != StatusJoining {
		return fmt.Errorf("%w: send while %s", ErrState, n.status)
	}
	m := Message{Type: MsgDirect, App: app, Payload: payload, Origin: n.self, Sent: n.stamp()}
	if to.ID == n.self.ID {
		m.From, m.To = n.self, n.self
		n.deliverDirect(&m)
		return nil
	}
	n.sendHop(&m, to, 0, false)
	return nil
}

// sendDirectUnacked sends payload to to in one hop, asking for no
// acknowledgement (Endpoint.SendUnacked).
func (n *Machine) sendDirectUnacked(app AppID, to id.Handle, payload []byte) error {
	if n.status != StatusJoined && n.status != StatusJoining {
		return fmt.Errorf("%w: send while %s", ErrState, n.status)
	}
	m := Message{Type: MsgDirect, Flags: FlagNoAck, App: app, Payload: payload, Origin: n.self, Sent: n.stamp()}
	if to.ID == n.self.ID {
		m.From, m.To = n.self, n.self
		n.deliverDirect(&m)
		return nil
	}
	m.Hops, m.To, m.Seq = 1, to, n.nextSeq()
	n.send(m)
	return nil
}

// onDirect handles a message sent with Send: acknowledge it (unless its
// sender asked for none: SendUnacked), and deliver it unless a copy was
// delivered already.
func (n *Machine) onDirect(m *Message) {
	if m.Flags&FlagNoAck == 0 {
		n.send(Message{Type: MsgRouteAck, To: m.From, Seq: m.Seq})
	}
	msg := *m
	msg.Origin, msg.Key = m.From, id.ID{}
	if _, seen := n.seen.add(fingerprint(&msg), 0); seen {
		n.stats.Duplicates++
		return
	}
	n.deliverDirect(&msg)
}

func (n *Machine) deliverDirect(m *Message) {
	ep := n.Endpoint(m.App)
	if ep == nil {
		n.stats.Dropped++
		return
	}
	n.stats.DirectDelivered++
	msg := *m
	n.upcalls = append(n.upcalls, upcall{kind: upDeliver, ep: ep, msg: &msg})
}

// retryDirect handles a hop sent straight to one node (a Send, or a join
// reply on its way back) that was not acknowledged: send it once more,
// then give a Send back to its application, and suspect the addressee.
func (n *Machine) retryDirect(p *pendingHop) {
	m := p.msg
	if !p.resent {
		m.Hops--
		n.sendHop(&m, p.next, 0, true)
		return
	}
	if n.state.Knows(p.next.ID) || n.watched[p.next.ID] != nil {
		n.suspect(p.next, false)
	}
	ep := n.Endpoint(m.App)
	if ep == nil || ep.undelivered == nil {
		return
	}
	n.upcalls = append(n.upcalls, upcall{kind: upUndelivered, ep: ep, msg: &m})
}
