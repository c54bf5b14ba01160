// Package lookup is the overlay's lookup: an application that routes a
// traced request for a key to the key's root, and has the root answer the
// origin with its own handle, the hops and the path. It is the one lookup
// of the project: the libp2p runtime's Node.Lookup and the simulator's
// measurements both run this code, through the core's Endpoint, so the
// simulator measures what the daemon does.
//
// The answer goes straight to the origin (Endpoint.Send, one hop) when the
// root can reach it without opening a connection (Endpoint.Connected; in
// the simulator always), and is otherwise routed to the origin's id over
// the connections the routing state already has: a dial and a security
// handshake cost more than the extra hops (see docs/decisions), and a
// root of a large overlay would otherwise connect to the origin of nearly
// every lookup it answers. A routed answer passes other nodes, so the root
// signs it (Endpoint.Sign); a root that cannot sign sends it straight.
//
// An answer completes a lookup only when it is bound to its request and
// comes from the root it names: the request id is random (a node off the
// request's path cannot guess it), the answer repeats the key, and it
// either came straight from the root (the transport authenticates the
// sender) or carries the root's signature over all of it (a node on the
// path, which saw the request id, cannot forge one). A lookup never
// returns a root that did not answer.
//
// The root's answer also carries its leaf set's ids (at most
// MaxAnswerLeaves), and the origin runs the routing failure test on them
// (CheckRoute): a root that is not the key's root, or a set of colluders
// posing as its neighbourhood, is sparser than the overlay the origin
// sees around itself. The verdict is reported in Result.FailureTest; a
// plain lookup does not act on it. A secure lookup (StartWith,
// StartOptions.Secure; secure.go) routes through the constrained routing
// tables, tests the answer against a density estimate pooled from 8 leaf
// sets (density.go) and asks nodes it names near the key whether they
// know a closer node (witness.go), and runs redundant routing when
// either fails.
//
// Like every application it is deterministic: no goroutines, no clock, no
// global randomness. Its state is a map of the lookups in flight, bounded
// by Options.MaxPending, each ended by its answer or by Options.Timeout.
package lookup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
)

// AppID is the lookup's application id. Application ids from 0xffff0000
// are reserved for the project's own applications.
const AppID core.AppID = 0xffff0001

// Errors a lookup ends with.
var (
	ErrTimeout = errors.New("lookup: no answer in time")
	ErrBusy    = errors.New("lookup: too many lookups in flight")
	ErrAnswer  = errors.New("lookup: malformed answer")
)

// Result is where a lookup ended.
type Result struct {
	Key id.ID
	// Root is the handle of the node that answered as the key's root.
	Root id.Handle
	// Hops is the number of overlay hops the request took; Path the nodes
	// it visited, origin first, root last (at most MaxAnswerPath).
	Hops int
	Path []id.ID
	// AnswerHops is how many overlay hops the answer took back: 1 when
	// the root sent it straight (it was connected to this node), the
	// routed answer's hops otherwise, 0 when this node is the root.
	AnswerHops int
	// Took is the time from the start to the answer on the node's clock.
	Took time.Duration
	// Leaves is the leaf set the root reported with its answer (at most
	// MaxAnswerLeaves ids), and FailureTest the routing failure test run
	// on it against this node's own leaf set, at Options.Gamma.
	Leaves      []id.ID
	FailureTest FailureTest
	// Secure lookups (StartOptions.Secure) only. Redundant: redundant
	// routing ran, Rounds rounds of it, sending Probes copies and
	// collecting Claims verified claims; Root is then the id closest to
	// the key among the claims (its Addr empty unless that node claimed
	// itself), Leaves the ids around it, and FailureTest the test on
	// them. Hops and Path are the routed answer's, if one came.
	Secure         bool
	Redundant      bool
	Rounds, Probes int
	Claims         int
	// AnswerTest is the failure test of the routed answer, if one came
	// (with μ_p the pooled estimate, density.go); Answered says whether
	// one did.
	AnswerTest FailureTest
	Answered   bool
	AnswerRoot id.ID
}

// Request is what the root of a lookup sees (Options.AtRoot).
type Request struct {
	ID  uint64
	Msg *core.Message // the routed request: Key, Origin, Hops, Path
}

// Options configure an App. Zero values take the defaults noted.
type Options struct {
	// Timeout ends a lookup with ErrTimeout when no answer has come. The
	// core re-routes a request around a next hop that does not
	// acknowledge it, so most answers that come at all come within a few
	// hop timeouts. Default 30 s.
	Timeout time.Duration
	// MaxPending bounds the lookups in flight; Start fails with ErrBusy
	// beyond it. Default 4096.
	MaxPending int
	// AtRoot, if set, sees every request this node answers, before it
	// answers (the simulator's measurements). It must not keep m.
	AtRoot func(r Request)
	// Forward, if set, is called from the Forward upcall with each request
	// and answer this node forwards, and may change the next hop (an
	// analysis aid of the simulator's).
	Forward func(m *core.Message, next *id.Handle)
	// Gamma is the routing failure test's threshold γ
	// (Result.FailureTest). Default DefaultGamma.
	Gamma float64
	// Secure lookups (StartOptions.Secure; secure.go): SecureTimeout is
	// how long the origin waits for the routed answer before redundant
	// routing (default 2 s); Redundancy the copies a round of redundant
	// routing sends, through as many first hops (default half the leaf
	// set); Rounds the most rounds (default 3, the paper's); RoundTimeout
	// how long a round collects claims (default 2 s).
	SecureTimeout, RoundTimeout time.Duration
	Redundancy, Rounds          int
	// Witnesses is how many of the ids a secure lookup's answer reports
	// the origin asks whether they know a node closer to the key than the
	// root (witness.go; default DefaultWitnesses, negative: none). They
	// reply within SecureTimeout, or redundant routing runs.
	Witnesses int
	// DensitySets is how many other nodes' leaf sets a secure lookup's
	// origin pools with its own for the failure test's μ_p (density.go;
	// default 7, 256 gaps with l=32; negative: its own leaf set only), and
	// DensityMaxAge how long it keeps that estimate (default 10 min).
	DensitySets   int
	DensityMaxAge time.Duration
	// The constrained table's fill (FillConstrained; fill.go):
	// FillTimeout is how long a fill probe waits for its answer before it
	// is sent again through another first hop (default 2 s), FillAttempts
	// how many times it is sent at most (default 3), and FillInterval, if
	// > 0, how long after a fill ends the node fills its table again,
	// the first fill starting once the node has joined and FillDelay has
	// passed since it registered (0: only when FillConstrained is called,
	// as the simulator does).
	FillTimeout  time.Duration
	FillAttempts int
	FillInterval time.Duration
}

// App is the lookup application on one node. Like every application it
// is not safe for concurrent use: call it from the node's goroutine (from
// upcalls, or inside core.Machine.Run).
type App struct {
	ep      *core.Endpoint
	opts    Options
	pending map[uint64]*pending
	dens    density
	fill    fill
	// fillStats counts the fills (FillStats).
	fillStats FillStats
}

type pending struct {
	key   id.ID
	start time.Duration
	timer core.TimerID
	done  func(Result, error)
	sec   *secureState // nil for a plain lookup
}

var (
	_ core.Application  = (*App)(nil)
	_ core.TimerHandler = (*App)(nil)
)

// Register registers a lookup application on m under AppID.
func Register(m *core.Machine, opts Options) (*App, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 4096
	}
	if opts.Gamma == 0 {
		opts.Gamma = DefaultGamma
	}
	opts.secureDefaults(m.Config().LeafSetSize)
	opts.fillDefaults()
	if opts.DensitySets == 0 {
		opts.DensitySets = 7
	}
	if opts.DensityMaxAge == 0 {
		opts.DensityMaxAge = 10 * time.Minute
	}
	switch {
	case opts.SecureTimeout < 0 || opts.RoundTimeout < 0 || opts.Redundancy < 0 || opts.Rounds < 0:
		return nil, fmt.Errorf("lookup: SecureTimeout, RoundTimeout, Redundancy and Rounds want > 0")
	case opts.FillTimeout < 0 || opts.FillAttempts < 0 || opts.FillInterval < 0:
		return nil, fmt.Errorf("lookup: FillTimeout, FillAttempts and FillInterval want >= 0")
	case opts.Timeout < 0:
		return nil, fmt.Errorf("lookup: Timeout %v, want > 0", opts.Timeout)
	case opts.MaxPending < 0:
		return nil, fmt.Errorf("lookup: MaxPending %d, want > 0", opts.MaxPending)
	case !(opts.Gamma > 0) || math.IsInf(opts.Gamma, 1):
		return nil, fmt.Errorf("lookup: Gamma %v, want > 0", opts.Gamma)
	}
	a := &App{opts: opts, pending: map[uint64]*pending{}}
	ep, err := m.RegisterApplication(AppID, a)
	if err != nil {
		return nil, err
	}
	a.ep = ep
	if opts.FillInterval > 0 {
		a.fill.next = true
		_, _ = ep.After(FillDelay, fillNextTag)
	}
	return a, nil
}

// Pending is the number of lookups in flight.
func (a *App) Pending() int { return len(a.pending) }

// Start routes a lookup for key and returns its id. done, if not nil, is
// called once, from an upcall: with the result when the root's answer
// comes, or with ErrTimeout; not after Cancel. Start fails with
// core.ErrNotJoined before the node has joined, and with ErrBusy when
// MaxPending lookups are in flight.
func (a *App) Start(key id.ID, done func(Result, error)) (uint64, error) {
	return a.StartWith(key, StartOptions{}, done)
}

// StartWith is Start with options: StartOptions.Secure makes it a secure
// lookup (secure.go), which ends, with its result or ErrTimeout, at most
// 2 x Options.SecureTimeout (the answer, then its witnesses' replies) +
// Options.Rounds x Options.RoundTimeout later.
func (a *App) StartWith(key id.ID, so StartOptions, done func(Result, error)) (uint64, error) {
	if len(a.pending) >= a.opts.MaxPending {
		return 0, ErrBusy
	}
	// Request ids are random, so that a node off the request's path
	// cannot guess one and answer it.
	req := a.ep.Rand().Uint64()
	for req == densityTag || req == fillTag || req == fillNextTag || a.pending[req] != nil {
		req = a.ep.Rand().Uint64()
	}
	p := &pending{key: key, start: a.ep.Now(), done: done}
	flags := core.FlagTrace
	if so.Secure {
		p.sec = &secureState{always: so.Redundant}
		flags |= core.FlagSecure
		a.ensureDensity()
	}
	// Recorded before routing: a lookup rooted here is answered inside it.
	a.pending[req] = p
	err := a.ep.RouteMessage(core.Message{Key: key, Flags: flags, Payload: appendRequest(nil, req)}, nil)
	if err != nil {
		delete(a.pending, req)
		return 0, err
	}
	if a.pending[req] != p { // answered already
		return req, nil
	}
	if p.sec != nil {
		if !p.sec.redundant && p.sec.answer == nil {
			a.startSecure(req, p)
		}
		return req, nil
	}
	p.timer, _ = a.ep.After(a.opts.Timeout, req)
	return req, nil
}

// Cancel forgets lookup req: its done is not called.
func (a *App) Cancel(req uint64) {
	if p := a.pending[req]; p != nil {
		a.ep.Cancel(p.timer)
		delete(a.pending, req)
	}
}

// Timer ends a lookup that had no answer in time.
func (a *App) Timer(req uint64) {
	switch req {
	case densityTag:
		a.endRefresh()
		return
	case fillTag:
		a.fillTimer()
		return
	case fillNextTag:
		a.fillNext()
		return
	}
	p := a.pending[req]
	if p == nil {
		return
	}
	if p.sec != nil {
		a.secureTimer(req, p)
		return
	}
	delete(a.pending, req)
	if p.done != nil {
		p.done(Result{}, fmt.Errorf("%w: %s after %v", ErrTimeout, p.key.Short(), a.opts.Timeout))
	}
}

// Forward lets every request and answer through, past Options.Forward;
// a node whose leaf set covers the key of a probe it forwards claims it
// (secure.go).
func (a *App) Forward(m *core.Message, next *id.Handle) bool {
	if a.opts.Forward != nil {
		a.opts.Forward(m, next)
	}
	if len(m.Payload) == 9 && m.Payload[0] == kindProbe {
		if req, _, ok := parseAnyRequest(m.Payload); ok {
			a.probe(m, req, false)
		}
	}
	return true
}

// Update is not used.
func (a *App) Update(id.Handle, bool) {}

// Deliver answers a request here, at its root, or completes a lookup
// with its answer.
func (a *App) Deliver(m *core.Message) {
	if len(m.Payload) == 0 {
		return
	}
	switch m.Payload[0] {
	case kindRequest:
		a.answer(m)
	case kindAnswer, kindClaim:
		a.complete(m)
	case kindProbe:
		if req, _, ok := parseAnyRequest(m.Payload); ok && m.Type == core.MsgRoute {
			a.probe(m, req, true)
		}
	case kindLeavesRequest:
		answerLeaves(a.ep, m, ownLeaves(a.ep))
	case kindLeavesReply:
		a.leavesReply(m)
	case kindFillProbe:
		a.fillProbe(m)
	case kindFillAnswer:
		a.fillAnswer(m)
	case kindHello:
		a.hello(m)
	case kindWitnessRequest:
		a.witnessRequest(m)
	case kindWitnessReply:
		a.complete(m)
	}
}

func (a *App) answer(m *core.Message) {
	req, ok := parseRequest(m.Payload)
	if !ok || m.Type != core.MsgRoute {
		return
	}
	if a.opts.AtRoot != nil {
		a.opts.AtRoot(Request{ID: req, Msg: m})
	}
	b := reply(a.ep, m, req, ownLeaves(a.ep))
	if m.Origin.ID == a.ep.Self().ID {
		a.complete(&core.Message{Type: core.MsgDirect, From: m.Origin, Origin: m.Origin, Payload: b})
		return
	}
	send(a.ep, m.Origin, b)
}

// reply is the answer to request req (the routed message m) from the
// node of ep, naming itself as the root, reporting leaves as its leaf
// set.
func reply(ep *core.Endpoint, m *core.Message, req uint64, leaves []id.ID) []byte {
	return replyKind(ep, m, req, kindRequest, leaves)
}

// replyKind is reply to a request (kind kindRequest: an answer) or a probe
// (kindProbe: a claim).
func replyKind(ep *core.Endpoint, m *core.Message, req uint64, kind byte, leaves []id.ID) []byte {
	ans := answer{req: req, key: m.Key, hops: m.Hops, root: ep.Self().ID, leaves: leaves}
	if kind == kindProbe {
		ans.kind = kindClaim
	}
	for i := range min(len(m.Path), MaxAnswerPath) {
		ans.path = append(ans.path, m.Path[i].ID)
	}
	return ans.append(nil)
}

// send sends answer b to its origin: straight when connected (or when
// the node cannot sign), else routed and signed. Straight, it asks for no
// acknowledgement: the origin's timeout covers a lost answer, and the
// root would do nothing with a failure.
func send(ep *core.Endpoint, origin id.Handle, b []byte) {
	if ep.Connected(origin) || !ep.CanSign() {
		_ = ep.SendUnacked(origin, b)
		return
	}
	sig, err := ep.Sign(signed(b))
	if err != nil {
		_ = ep.SendUnacked(origin, b)
		return
	}
	_ = ep.Route(origin.ID, append(b, sig...), nil)
}

// ownLeaves is the leaf set of ep's node, at most MaxAnswerLeaves ids:
// the closest MaxAnswerLeaves/2 on each side.
func ownLeaves(ep *core.Endpoint) []id.ID {
	ls := ep.State().Leaves
	var out []id.ID
	for _, side := range [][]routing.Entry{ls.Left(), ls.Right()} {
		for _, e := range side[:min(len(side), MaxAnswerLeaves/2)] {
			out = append(out, e.ID)
		}
	}
	return out
}

// signed is what a root signs of an answer: the answer, under a context
// string no other signature of a node's key starts with.
func signed(body []byte) []byte {
	return append([]byte(signContext), body...)
}

const signContext = "pastry lookup answer v1\x00"

// sigLen is the length of an Ed25519 signature.
const sigLen = 64

// complete ends the lookup an answer names, if the answer is the root's:
// sent straight from the root, or routed from it.
func (a *App) complete(m *core.Message) {
	ans, err := parseAnswer(m.Payload)
	if err != nil {
		return
	}
	p := a.pending[ans.req]
	if p == nil || p.key != ans.key {
		return // not ours, already answered, or for another key
	}
	var sender id.Handle
	switch {
	case m.Type == core.MsgDirect && ans.sig == nil:
		sender = m.From // authenticated by the transport
	case m.Type == core.MsgRoute && ans.sig != nil && m.Key == a.ep.Self().ID:
		// Routed through others: only the root's signature vouches for it.
		if !a.ep.Verify(m.Origin, signed(m.Payload[:len(m.Payload)-sigLen]), ans.sig) {
			return
		}
		sender = m.Origin
	default:
		return // unsigned and routed, for another node, or malformed
	}
	if sender.ID != ans.root {
		return // not sent by the root it names
	}
	if p.sec != nil {
		if ans.kind == kindWitnessReply {
			a.witnessReply(ans.req, p, &ans, sender)
			return
		}
		if ans.kind == kindClaim {
			p.sec.addClaim(p.key, sender, ans.leaves)
		} else {
			a.secureAnswer(ans.req, p, &ans, sender)
		}
		return
	}
	if ans.kind != kindAnswer {
		return // a plain lookup sends no probes and asks no witnesses
	}
	delete(a.pending, ans.req)
	a.ep.Cancel(p.timer)
	if p.done != nil {
		test := CheckRoute(ans.key, ans.root, ans.leaves, a.ep.Self().ID, ownLeaves(a.ep), a.opts.Gamma)
		p.done(Result{Key: ans.key, Root: sender, Hops: int(ans.hops), Path: ans.path, AnswerHops: answerHops(m, a.ep.Self().ID),
			Took: a.ep.Now() - p.start, Leaves: ans.leaves, FailureTest: test}, nil)
	}
}

// answerHops is Result.AnswerHops for answer m, which reached self.
func answerHops(m *core.Message, self id.ID) int {
	switch {
	case m.Type == core.MsgRoute:
		return int(m.Hops)
	case m.From.ID == self:
		return 0 // this node is the root and answered itself
	default:
		return 1
	}
}

// The wire format of the lookup's payloads (big-endian):
//
//	request: [1][request id u64]
//	answer:  [2][request id u64][key 16][hops u16][root 16][path count u8][path ids, 16 each]
//	         [leaf count u8, at most MaxAnswerLeaves][the root's leaf-set ids, 16 each]
//	         then, when routed, the root's Ed25519 signature (64) of all before it
//	probe:   [3][request id u64]  (a copy of redundant routing; secure.go)
//	claim:   [4] then as an answer, from a node whose leaf set covers the key,
//	         naming itself in the root field (secure.go)
//	witness reply: [12] then as an answer (witness.go)
const (
	kindRequest = 1
	kindAnswer  = 2
	kindProbe   = 3
	kindClaim   = 4
)

// MaxAnswerPath is the most path entries an answer carries (a count byte).
const MaxAnswerPath = 255

// MaxAnswerLeaves is the most leaf-set ids an answer carries: the
// closest 32 on each side, as many as the paper's l = 32 leaf set holds.
const MaxAnswerLeaves = 64

func appendRequest(b []byte, req uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, kindRequest), req)
}

func parseRequest(b []byte) (uint64, bool) {
	if len(b) != 9 || b[0] != kindRequest {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[1:]), true
}

// parseAnyRequest reads a request or a probe: its id and its kind.
func parseAnyRequest(b []byte) (uint64, byte, bool) {
	if len(b) != 9 || b[0] != kindRequest && b[0] != kindProbe {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[1:]), b[0], true
}

type answer struct {
	kind   byte // kindAnswer (0 writes kindAnswer) or kindClaim
	req    uint64
	key    id.ID
	hops   uint16
	root   id.ID
	path   []id.ID
	leaves []id.ID
	sig    []byte // nil, or sigLen bytes
}

const answerHeader = 1 + 8 + id.Len + 2 + id.Len + 1

func (x *answer) append(b []byte) []byte {
	kind := x.kind
	if kind == 0 {
		kind = kindAnswer
	}
	b = binary.BigEndian.AppendUint64(append(b, kind), x.req)
	b = append(b, x.key[:]...)
	b = binary.BigEndian.AppendUint16(b, x.hops)
	b = append(b, x.root[:]...)
	k := min(len(x.path), MaxAnswerPath)
	b = append(b, byte(k))
	for _, p := range x.path[:k] {
		b = append(b, p[:]...)
	}
	k = min(len(x.leaves), MaxAnswerLeaves)
	b = append(b, byte(k))
	for _, p := range x.leaves[:k] {
		b = append(b, p[:]...)
	}
	return append(b, x.sig...)
}

// parseAnswer reads what answer.append wrote; anything else is ErrAnswer.
func parseAnswer(b []byte) (answer, error) {
	var x answer
	if len(b) < answerHeader || b[0] != kindAnswer && b[0] != kindClaim && b[0] != kindWitnessReply {
		return x, ErrAnswer
	}
	x.kind = b[0]
	x.req = binary.BigEndian.Uint64(b[1:])
	copy(x.key[:], b[9:])
	x.hops = binary.BigEndian.Uint16(b[9+id.Len:])
	copy(x.root[:], b[11+id.Len:])
	k := int(b[answerHeader-1])
	b = b[answerHeader:]
	if len(b) < id.Len*k+1 {
		return x, ErrAnswer
	}
	x.path, b = readIDs(b, k)
	k = int(b[0])
	b = b[1:]
	if k > MaxAnswerLeaves {
		return x, ErrAnswer
	}
	switch len(b) - id.Len*k {
	case 0:
	case sigLen:
		x.sig = b[id.Len*k:]
	default:
		return x, ErrAnswer
	}
	x.leaves, _ = readIDs(b, k)
	return x, nil
}

// readIDs reads k ids from b, which holds at least k, and returns them
// (nil for none) and the rest of b.
func readIDs(b []byte, k int) ([]id.ID, []byte) {
	if k == 0 {
		return nil, b
	}
	out := make([]id.ID, k)
	for i := range out {
		copy(out[i][:], b[id.Len*i:])
	}
	return out, b[id.Len*k:]
}
