package multicast

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// AppID is Scribe's application id (ids from 0xffff0000 are the
// project's own applications).
const AppID core.AppID = 0xffff0002

// Errors.
var (
	ErrNotSubscribed = errors.New("multicast: not subscribed")
	ErrTooLarge      = errors.New("multicast: message too large")
	ErrTimeout       = errors.New("multicast: no answer in time")
)

// TopicID is a topic's id: the first 128 bits of SHA-256 of its name.
func TopicID(name string) id.ID {
	s := sha256.Sum256([]byte(name))
	var x id.ID
	copy(x[:], s[:id.Len])
	return x
}

// OwnedTopicID is the id of owner's topic name: the first 128 bits of
// SHA-256 of a context string, the owner's node id and the name. Only
// messages the owner signed are delivered to its subscribers
// (SubscribeOwned, PublishSigned).
func OwnedTopicID(owner id.ID, name string) id.ID {
	h := sha256.New()
	h.Write([]byte("pastry owned topic v1\x00"))
	h.Write(owner[:])
	h.Write([]byte(name))
	var x id.ID
	copy(x[:], h.Sum(nil))
	return x
}

// Delivery is one message delivered to this node's subscription.
type Delivery struct {
	Topic     id.ID
	Publisher id.ID  // the publishing node
	Seq       uint64 // the publisher's number for it, one higher each
	Data      []byte
	// Depth is this node's depth in the topic's tree when it arrived (the
	// root is 0).
	Depth int
}

// AnycastResult is where an anycast ended.
type AnycastResult struct {
	Topic id.ID
	// Found is false when the walk visited the whole tree (or as much as it
	// could reach) and no member accepted.
	Found bool
	At    id.Handle // the member that accepted
	Took  time.Duration
}

// Options configure an App. Zero values take the defaults noted.
type Options struct {
	// Deliver gets every message published to a topic this node
	// subscribes to, once each. It runs on the node's goroutine and must
	// not block.
	Deliver func(Delivery)
	// Accept is the anycast policy: whether this node, a subscriber of
	// topic, takes an anycast with payload. Nil accepts none.
	Accept func(topic id.ID, payload []byte) bool
	// HeartbeatInterval: a parent that has sent a topic's children nothing
	// for about this long (from 3/4 of it to all of it: the state is
	// checked every quarter) sends them a heartbeat; a child that hears
	// nothing from its parent for ParentSilence joins the tree again.
	// Default the node's HeartbeatInterval.
	HeartbeatInterval time.Duration
	// ParentSilence: default 1.5 x HeartbeatInterval, so that a child
	// notices a failed parent within 1.75 heartbeat periods of its last
	// message (a lost heartbeat costs a needless join, which is cheap).
	ParentSilence time.Duration
	// MaxChildren bounds the children of this node over all topics; past
	// it the bottleneck remover hands the farthest child of the topic with
	// the most children to its siblings. Default 256; negative means no
	// bound.
	MaxChildren int
	// Replicas is how many of the root's leaf-set neighbours hold a copy
	// of a topic's root state (its children), so that the next root takes
	// over the tree. Default 3.
	Replicas int
	// MaxData bounds a published message's data. Default 64 KiB.
	MaxData int
	// AnycastTimeout ends an anycast with ErrTimeout. Default 30 s.
	AnycastTimeout time.Duration
	// MaxTopics bounds the topics this node holds tree state for
	// (subscriber, forwarder or root); a subscription passing through
	// beyond it is dropped (counted in Refused; the subscriber tries
	// again). Default 65,536.
	MaxTopics int
}

// Stats count what this node's Scribe did.
type Stats struct {
	Delivered  uint64 `json:"delivered"`  // messages delivered to a local subscription
	Duplicates uint64 `json:"duplicates"` // copies not delivered again
	Forwarded  uint64 `json:"forwarded"`  // data messages sent to children
	Heartbeats uint64 `json:"heartbeats"` // heartbeat messages sent
	Published  uint64 `json:"published"`  // messages published here
	Repairs    uint64 `json:"repairs"`    // joins again after a parent failed or fell silent
	Takeovers  uint64 `json:"takeovers"`  // topics whose root this node became from a replica
	Redirects  uint64 `json:"redirects"`  // children handed to siblings by the bottleneck remover
	Malformed  uint64 `json:"malformed"`  // payloads that did not decode
	Refused    uint64 `json:"refused"`    // messages refused: not a tree member, or an unknown sender
	// Forged counts messages to an owned topic, or signed publishes, whose
	// signature did not verify: not delivered, not forwarded.
	Forged uint64 `json:"forged"`
	// Missing counts sequence numbers of a publisher that a subscription
	// skipped and that did not arrive later: messages lost or withheld on
	// the way (by a repair, or by a forwarder dropping them).
	Missing uint64 `json:"missing"`
}

// topic is this node's part in one topic's tree.
type topic struct {
	id         id.ID
	subscribed bool
	root       bool
	parent     id.Handle // zero while none
	heard      time.Duration
	joinSent   time.Duration // when this node last asked to join; zero when it has a parent
	joining    bool
	children   []id.Handle
	lastSent   time.Duration // the last data or heartbeat to the children
	replicated time.Duration // the last root state sent to the replicas
	depth      uint16
	seen       map[id.ID]*window // by publisher
	// owner, for a subscription to an owned topic: only messages it
	// signed are delivered here.
	owner id.Handle
}

// window remembers which of a publisher's last 64 sequence numbers were
// delivered: a copy of one of them, or of an older one, is a duplicate.
type window struct {
	hi   uint64
	mask uint64 // bit i: hi-i was seen
}

// maxPublishers bounds the windows per topic; past it the oldest goes.
const maxPublishers = 256

// A publisher starts its sequence numbers at a random point of 63 bits
// (again after a restart, or once it forgot the topic); numbers more than
// newRun away from the window's are taken as such a new start.
const newRun = 1 << 32

// add records seq; it reports whether seq is new, and by how much the
// count of skipped numbers changes (numbers passed over when seq is ahead,
// minus one when seq fills an earlier gap).
func (w *window) add(seq uint64) (fresh bool, skipped int64) {
	switch {
	case w.mask == 0 || seq > w.hi && seq-w.hi >= newRun || seq < w.hi && w.hi-seq >= newRun:
		w.hi, w.mask = seq, 1
	case seq > w.hi:
		d := seq - w.hi
		if d >= 64 {
			w.mask = 1
		} else {
			w.mask = w.mask<<d | 1
		}
		w.hi = seq
		return true, int64(min(d-1, 1<<20))
	case w.hi-seq >= 64:
		return false, 0
	default:
		bit := uint64(1) << (w.hi - seq)
		if w.mask&bit != 0 {
			return false, 0
		}
		w.mask |= bit
		return true, -1
	}
	return true, 0
}

type replica struct {
	root     id.Handle
	children []id.Handle
	at       time.Duration
}

type publisher struct {
	seq        uint64
	root       id.Handle // cached; zero when unknown
	lastRouted uint64    // the last seq routed rather than sent to the root
}

type anycast struct {
	topic id.ID
	start time.Duration
	timer core.TimerID
	done  func(AnycastResult, error)
}

// App is Scribe on one node. Like every application it is not safe for
// concurrent use: call it from the node's goroutine (from upcalls, or
// inside core.Machine.Run).
type App struct {
	ep       *core.Endpoint
	opts     Options
	topics   map[id.ID]*topic
	replicas map[id.ID]*replica
	pubs     map[id.ID]*publisher
	anycasts map[uint64]*anycast
	children int // over all topics
	ticking  bool
	stats    Stats
}

var (
	_ core.Application        = (*App)(nil)
	_ core.TimerHandler       = (*App)(nil)
	_ core.FailureHandler     = (*App)(nil)
	_ core.UndeliveredHandler = (*App)(nil)
)

const tickTag = 0

// Register registers Scribe on m under AppID.
func Register(m *core.Machine, opts Options) (*App, error) {
	cfg := m.Config()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = cfg.HeartbeatInterval
	}
	if opts.ParentSilence == 0 {
		opts.ParentSilence = opts.HeartbeatInterval * 3 / 2
	}
	if opts.MaxChildren == 0 {
		opts.MaxChildren = 256
	}
	if opts.Replicas == 0 {
		opts.Replicas = 3
	}
	if opts.MaxData == 0 {
		opts.MaxData = 64 << 10
	}
	if opts.AnycastTimeout == 0 {
		opts.AnycastTimeout = 30 * time.Second
	}
	if opts.MaxTopics == 0 {
		opts.MaxTopics = 1 << 16
	}
	switch {
	case opts.HeartbeatInterval < 0:
		return nil, fmt.Errorf("multicast: HeartbeatInterval %v, want > 0", opts.HeartbeatInterval)
	case opts.ParentSilence <= opts.HeartbeatInterval:
		return nil, fmt.Errorf("multicast: ParentSilence %v, want > HeartbeatInterval %v", opts.ParentSilence, opts.HeartbeatInterval)
	case opts.Replicas < 0 || opts.Replicas > maxHandles:
		return nil, fmt.Errorf("multicast: Replicas %d, want 0 to %d", opts.Replicas, maxHandles)
	case opts.MaxData < 0 || opts.AnycastTimeout < 0 || opts.MaxTopics < 0:
		return nil, fmt.Errorf("multicast: MaxData %d, AnycastTimeout %v and MaxTopics %d, want > 0", opts.MaxData, opts.AnycastTimeout, opts.MaxTopics)
	}
	a := &App{opts: opts, topics: map[id.ID]*topic{}, replicas: map[id.ID]*replica{},
		pubs: map[id.ID]*publisher{}, anycasts: map[uint64]*anycast{}}
	ep, err := m.RegisterApplication(AppID, a)
	if err != nil {
		return nil, err
	}
	a.ep = ep
	return a, nil
}

// Stats returns the counters.
func (a *App) Stats() Stats { return a.stats }

// TopicInfo is this node's part in one topic's tree.
type TopicInfo struct {
	Topic      id.ID
	Subscribed bool
	Root       bool
	Parent     id.Handle // zero for the root, or while joining
	Children   []id.Handle
	Depth      int
}

// Topics lists the topics this node is part of the tree of, by id.
func (a *App) Topics() []TopicInfo {
	out := make([]TopicInfo, 0, len(a.topics))
	for _, t := range a.topics {
		out = append(out, TopicInfo{Topic: t.id, Subscribed: t.subscribed, Root: t.root, Parent: t.parent,
			Children: slices.Clone(t.children), Depth: int(t.depth)})
	}
	slices.SortFunc(out, func(x, y TopicInfo) int { return x.Topic.Cmp(y.Topic) })
	return out
}

// Children is the number of children over all topics.
func (a *App) Children() int { return a.children }

// Tree is the size of this node's part in the topics' trees.
type Tree struct {
	Topics     int `json:"topics"`     // topics this node is a tree member of
	Subscribed int `json:"subscribed"` // of which it subscribes to
	Roots      int `json:"roots"`      // of which it is the root
	Children   int `json:"children"`   // children over all topics
	MaxDepth   int `json:"max_depth"`  // the deepest of its positions (the root is at 0)
	Replicas   int `json:"replicas"`   // root states held for the topics' roots
}

// Tree counts this node's part in the trees.
func (a *App) Tree() Tree {
	tr := Tree{Topics: len(a.topics), Children: a.children, Replicas: len(a.replicas)}
	for _, t := range a.topics {
		if t.subscribed {
			tr.Subscribed++
		}
		if t.root {
			tr.Roots++
		}
		tr.MaxDepth = max(tr.MaxDepth, int(t.depth))
	}
	return tr
}

// Subscribe makes this node a subscriber of topic: it joins the topic's
// tree (if it is not a forwarder already) by routing a subscription to the
// topic's id. It fails with core.ErrNotJoined before the node has joined.
func (a *App) Subscribe(tp id.ID) error {
	if a.ep.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	t := a.topics[tp]
	if t != nil {
		t.subscribed = true
		return nil
	}
	t = a.newTopic(tp)
	t.subscribed = true
	a.join(t)
	return nil
}

// SubscribeOwned subscribes to owner's topic tp (OwnedTopicID): messages
// are delivered here only if owner published them and its signature
// verifies; others are counted in Stats.Forged.
func (a *App) SubscribeOwned(tp id.ID, owner id.Handle) error {
	if !a.ep.ValidHandle(owner) {
		return fmt.Errorf("multicast: owner %s: not a valid handle", owner)
	}
	if err := a.Subscribe(tp); err != nil {
		return err
	}
	a.topics[tp].owner = owner
	return nil
}

// Unsubscribe ends this node's subscription; it stays a forwarder while
// it has children.
func (a *App) Unsubscribe(tp id.ID) {
	t := a.topics[tp]
	if t == nil {
		return
	}
	t.subscribed, t.owner = false, id.Handle{}
	a.prune(t)
}

// Publish sends data to every subscriber of topic: to the topic's root
// (straight to it once this node knows it), which sends it down the
// tree.
func (a *App) Publish(tp id.ID, data []byte) error { return a.publish(tp, data, false) }

// PublishSigned is Publish with this node's signature on the message, as
// the subscribers of the topics this node owns require (OwnedTopicID).
// It fails with core.ErrNoSigner where the environment holds no key.
func (a *App) PublishSigned(tp id.ID, data []byte) error { return a.publish(tp, data, true) }

func (a *App) publish(tp id.ID, data []byte, signed bool) error {
	if a.ep.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	if len(data) > a.opts.MaxData {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), a.opts.MaxData)
	}
	p := a.pubs[tp]
	if p == nil {
		if len(a.pubs) >= 4096 { // forget one: its root is found again
			delete(a.pubs, smallestKey(a.pubs))
		}
		p = &publisher{seq: a.ep.Rand().Uint64() >> 1}
		a.pubs[tp] = p
	}
	m := msg{kind: kindPublish, topic: tp, publisher: a.ep.Self().ID, seq: p.seq + 1, data: data}
	if signed {
		sig, err := a.ep.Sign(signedPayload(tp, m.publisher, m.seq, data))
		if err != nil {
			return fmt.Errorf("multicast: sign: %w", err)
		}
		m.flags, m.sig = flagSigned, sig
	}
	p.seq++
	a.stats.Published++
	if p.root.Addr != "" {
		return a.send(p.root, &m)
	}
	return a.routePublish(p, &m)
}

func (a *App) routePublish(p *publisher, m *msg) error {
	m.flags |= flagWantRoot
	p.lastRouted = m.seq
	return a.route(m.topic, m)
}

// Anycast walks topic's tree, depth first from the first tree member its
// route meets, until a subscriber's Accept takes payload; done gets where
// it ended (Found false if none did), or ErrTimeout.
func (a *App) Anycast(tp id.ID, payload []byte, done func(AnycastResult, error)) error {
	if a.ep.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	if len(payload) > a.opts.MaxData {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(payload), a.opts.MaxData)
	}
	req := a.ep.Rand().Uint64()
	for req == tickTag || a.anycasts[req] != nil {
		req = a.ep.Rand().Uint64()
	}
	ac := &anycast{topic: tp, start: a.ep.Now(), done: done}
	a.anycasts[req] = ac
	var err error
	ac.timer, err = a.ep.After(a.opts.AnycastTimeout, req)
	if err == nil {
		err = a.route(tp, &msg{kind: kindAnycast, topic: tp, seq: req, origin: a.ep.Self(), data: payload})
	}
	if err != nil {
		a.ep.Cancel(ac.timer)
		delete(a.anycasts, req)
	}
	return err
}

func (a *App) newTopic(tp id.ID) *topic {
	t := &topic{id: tp}
	a.topics[tp] = t
	a.tick()
	return t
}

// tick keeps the periodic timer armed while there is state to keep.
func (a *App) tick() {
	if a.ticking {
		return
	}
	if _, err := a.ep.After(a.opts.HeartbeatInterval/4, tickTag); err == nil {
		a.ticking = true
	}
}

func (a *App) route(key id.ID, m *msg) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	return a.ep.Route(key, b, nil)
}

func (a *App) send(to id.Handle, m *msg) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	return a.ep.Send(to, b)
}

// join routes a subscription for t toward its root; the first tree member
// on the way (or the root) adopts this node as its child.
func (a *App) join(t *topic) {
	t.joining, t.joinSent = true, a.ep.Now()
	if err := a.route(t.id, &msg{kind: kindSubscribe, topic: t.id}); err != nil {
		t.joinSent = a.ep.Now() // tried again on the tick
	}
}

// setParent makes p t's parent.
func (a *App) setParent(t *topic, p id.Handle, depth uint16) {
	if t.parent.ID != p.ID && t.parent.Addr != "" {
		a.ep.Unwatch(t.parent)
		_ = a.send(t.parent, &msg{kind: kindUnsubscribe, topic: t.id})
	}
	if t.parent.ID != p.ID {
		_ = a.ep.Watch(p)
	}
	t.parent, t.heard, t.joining, t.root, t.depth = p, a.ep.Now(), false, false, depth
}

func (a *App) dropParent(t *topic) {
	if t.parent.Addr != "" {
		a.ep.Unwatch(t.parent)
	}
	t.parent = id.Handle{}
}

// addChild adopts c as t's child and tells it so.
func (a *App) addChild(t *topic, c id.Handle) {
	if c.ID == a.ep.Self().ID {
		return
	}
	if !slices.ContainsFunc(t.children, func(x id.Handle) bool { return x.ID == c.ID }) {
		t.children = append(t.children, c)
		a.children++
	}
	_ = a.send(c, &msg{kind: kindAck, topic: t.id, depth: t.depth})
	if a.opts.MaxChildren > 0 && a.children > a.opts.MaxChildren {
		a.removeBottleneck()
	}
}

// removeChild drops c from t; it reports whether c was a child.
func (a *App) removeChild(t *topic, c id.ID) bool {
	i := slices.IndexFunc(t.children, func(x id.Handle) bool { return x.ID == c })
	if i < 0 {
		return false
	}
	t.children = slices.Delete(t.children, i, i+1)
	a.children--
	return true
}

// removeBottleneck hands the farthest child of the topic with the most
// children to that child's siblings (Scribe's bottleneck remover).
func (a *App) removeBottleneck() {
	var worst *topic
	for _, t := range a.topics {
		if worst == nil || len(t.children) > len(worst.children) ||
			len(t.children) == len(worst.children) && t.id.Cmp(worst.id) < 0 {
			worst = t
		}
	}
	if worst == nil || len(worst.children) < 2 {
		return
	}
	far, farP := 0, uint32(0)
	for i, c := range worst.children {
		if p := a.ep.Proximity(c); i == 0 || p > farP || p == farP && c.ID.Cmp(worst.children[far].ID) > 0 {
			far, farP = i, p
		}
	}
	c := worst.children[far]
	a.removeChild(worst, c.ID)
	sib := slices.Clone(worst.children)
	slices.SortStableFunc(sib, func(x, y id.Handle) int {
		px, py := a.ep.Proximity(x), a.ep.Proximity(y)
		return int(int64(px) - int64(py))
	})
	sib = sib[:min(len(sib), 8)]
	a.stats.Redirects++
	_ = a.send(c, &msg{kind: kindDrop, topic: worst.id, handles: sib})
}

// prune leaves t's tree when this node neither subscribes nor has
// children, and is not the root.
func (a *App) prune(t *topic) {
	if t.subscribed || len(t.children) > 0 {
		return
	}
	if t.parent.Addr != "" {
		_ = a.send(t.parent, &msg{kind: kindUnsubscribe, topic: t.id})
	}
	a.dropParent(t)
	delete(a.topics, t.id)
}

// Timer runs the periodic tick, or ends an anycast.
func (a *App) Timer(tag uint64) {
	if tag != tickTag {
		if ac := a.anycasts[tag]; ac != nil {
			delete(a.anycasts, tag)
			if ac.done != nil {
				ac.done(AnycastResult{Topic: ac.topic}, fmt.Errorf("%w: anycast %s after %v", ErrTimeout, ac.topic.Short(), a.opts.AnycastTimeout))
			}
		}
		return
	}
	a.ticking = false
	now, hb := a.ep.Now(), a.opts.HeartbeatInterval
	// In id order: map order is random, and the simulator is not.
	ids := make([]id.ID, 0, len(a.topics))
	for x := range a.topics {
		ids = append(ids, x)
	}
	slices.SortFunc(ids, id.ID.Cmp)
	idle := map[id.ID][]id.ID{} // child -> topics idle toward it
	var order []id.Handle
	for _, x := range ids {
		t := a.topics[x]
		if t == nil {
			continue
		}
		switch {
		case t.root:
			if len(a.ep.LocalLookup(t.id, 1, false)) > 0 { // a closer node joined: join under it
				t.root = false
				a.join(t)
			} else if now-t.replicated >= hb-hb/4 {
				t.replicated = now
				a.replicate(t)
			}
		case t.joining && now-t.joinSent >= a.opts.ParentSilence:
			a.stats.Repairs++
			a.join(t)
		case !t.joining && now-t.heard >= a.opts.ParentSilence:
			a.stats.Repairs++
			a.dropParent(t)
			a.join(t)
		}
		if len(t.children) > 0 && now-t.lastSent >= hb-hb/4 {
			t.lastSent = now
			for _, c := range t.children {
				if idle[c.ID] == nil {
					order = append(order, c)
				}
				idle[c.ID] = append(idle[c.ID], t.id)
			}
		}
	}
	for _, c := range order {
		ts := idle[c.ID]
		for len(ts) > 0 {
			k := min(len(ts), MaxHeartbeatTopics)
			a.stats.Heartbeats++
			_ = a.send(c, &msg{kind: kindHeartbeat, topic: ts[0], topics: ts[1:k]})
			ts = ts[k:]
		}
	}
	for x, r := range a.replicas {
		if now-r.at > 3*hb {
			delete(a.replicas, x)
		}
	}
	if len(a.topics) > 0 || len(a.replicas) > 0 {
		a.tick()
	}
}

// replicate sends t's root state to the next Replicas nodes closest to
// its id.
func (a *App) replicate(t *topic) {
	if a.opts.Replicas == 0 {
		return
	}
	m := msg{kind: kindRootState, topic: t.id, handles: t.children[:min(len(t.children), maxHandles)]}
	for _, h := range a.ep.ReplicaSet(t.id, a.opts.Replicas+1) {
		if h.ID != a.ep.Self().ID {
			_ = a.send(h, &m)
		}
	}
}

// Forward makes each node a subscription passes a forwarder of its topic,
// with the previous hop as its child, and stops the subscription at the
// first node already in the tree; an anycast starts its walk there.
func (a *App) Forward(cm *core.Message, next *id.Handle) bool {
	if cm.Hops == 0 || len(cm.Payload) == 0 {
		return true // at its origin
	}
	switch cm.Payload[0] {
	case kindSubscribe:
		m, err := decode(cm.Payload)
		if err != nil {
			a.stats.Malformed++
			return false
		}
		t := a.topics[m.topic]
		if t != nil {
			if t.parent.ID == cm.From.ID && t.parent.Addr != "" {
				a.stats.Refused++ // its own parent: a cycle; it tries again
				return false
			}
			a.addChild(t, cm.From)
			return false
		}
		if len(a.topics) >= a.opts.MaxTopics {
			a.stats.Refused++
			return false
		}
		t = a.newTopic(m.topic)
		a.addChild(t, cm.From)
		t.joining, t.joinSent = true, a.ep.Now()
		return true // on toward the root, which adopts this node
	case kindAnycast:
		m, err := decode(cm.Payload)
		if err != nil {
			a.stats.Malformed++
			return false
		}
		if a.topics[m.topic] != nil {
			a.walk(&m, true)
			return false
		}
	}
	return true
}

// Update hands a failed root's topics to this node when it holds their
// replica and is now their root, and moves a root's topics under a closer
// node that joined.
func (a *App) Update(h id.Handle, joined bool) {
	if joined {
		return // checked on the tick
	}
	for _, x := range a.replicaIDs() {
		r := a.replicas[x]
		if r.root.ID == h.ID && len(a.ep.LocalLookup(x, 1, false)) == 0 {
			a.takeOver(x)
		}
	}
}

func (a *App) replicaIDs() []id.ID {
	ids := make([]id.ID, 0, len(a.replicas))
	for x := range a.replicas {
		ids = append(ids, x)
	}
	slices.SortFunc(ids, id.ID.Cmp)
	return ids
}

// takeOver makes this node the root of topic x from its replica: it
// adopts the old root's children.
func (a *App) takeOver(x id.ID) {
	r := a.replicas[x]
	if r == nil {
		return
	}
	delete(a.replicas, x)
	t := a.topics[x]
	if t == nil {
		t = a.newTopic(x)
	}
	a.becomeRoot(t)
	a.stats.Takeovers++
	for _, c := range r.children {
		if a.ep.ValidHandle(c) {
			a.addChild(t, c)
		}
	}
}

func (a *App) becomeRoot(t *topic) {
	if t.root {
		return
	}
	if t.parent.Addr != "" {
		_ = a.send(t.parent, &msg{kind: kindUnsubscribe, topic: t.id})
	}
	a.dropParent(t)
	t.root, t.joining, t.depth = true, false, 0
}

// Failed re-joins the trees whose parent failed, and drops a failed child.
func (a *App) Failed(h id.Handle) {
	for _, x := range a.topicIDs() {
		t := a.topics[x]
		if t.parent.ID == h.ID && t.parent.Addr != "" {
			t.parent = id.Handle{}
			a.stats.Repairs++
			a.join(t)
		}
	}
	a.dropChild(h.ID)
}

func (a *App) topicIDs() []id.ID {
	ids := make([]id.ID, 0, len(a.topics))
	for x := range a.topics {
		ids = append(ids, x)
	}
	slices.SortFunc(ids, id.ID.Cmp)
	return ids
}

// dropChild removes c from every topic, pruning those it leaves empty.
func (a *App) dropChild(c id.ID) {
	for _, x := range a.topicIDs() {
		if t := a.topics[x]; a.removeChild(t, c) {
			a.prune(t)
		}
	}
}

// Undelivered handles a message its addressee did not acknowledge.
func (a *App) Undelivered(cm *core.Message) {
	m, err := decode(cm.Payload)
	if err != nil {
		return
	}
	switch m.kind {
	case kindAck, kindData, kindHeartbeat:
		a.dropChild(cm.To.ID)
	case kindPublish:
		if p := a.pubs[m.topic]; p != nil && p.root.ID == cm.To.ID {
			p.root = id.Handle{}
			_ = a.routePublish(p, &m)
		}
	case kindSubscribe: // a redirect to a sibling that is gone
		if t := a.topics[m.topic]; t != nil && t.joining {
			a.join(t)
		}
	case kindAnycast:
		m.visited = appendVisited(m.visited, cm.To.ID)
		a.walk(&m, false)
	}
}

// Deliver handles what comes at a topic's root (subscriptions, publishes,
// anycasts) and what tree members send each other.
func (a *App) Deliver(cm *core.Message) {
	m, err := decode(cm.Payload)
	if err != nil {
		a.stats.Malformed++
		return
	}
	if cm.Type == core.MsgRoute {
		a.atRoot(cm, &m)
		return
	}
	from := cm.From
	t := a.topics[m.topic]
	switch m.kind {
	case kindSubscribe: // straight to a sibling, after a drop
		if t == nil {
			_ = a.send(from, &msg{kind: kindDrop, topic: m.topic})
			return
		}
		a.addChild(t, from)
	case kindAck:
		if t == nil || t.root {
			a.stats.Refused++
			_ = a.send(from, &msg{kind: kindUnsubscribe, topic: m.topic})
			return
		}
		a.setParent(t, from, m.depth+1)
	case kindUnsubscribe:
		if t != nil && a.removeChild(t, from.ID) {
			a.prune(t)
		}
	case kindDrop:
		if t == nil || t.parent.ID != from.ID && !t.joining {
			return
		}
		a.dropParent(t)
		t.joining, t.joinSent = true, a.ep.Now()
		for _, s := range m.handles {
			if s.ID != a.ep.Self().ID && a.ep.ValidHandle(s) && !t.hasChild(s.ID) {
				_ = a.send(s, &msg{kind: kindSubscribe, topic: t.id})
				return
			}
		}
		a.join(t)
	case kindData:
		if !a.fromParent(t, from, &m) {
			return
		}
		t.depth = m.depth
		a.disseminate(t, &m, from.ID)
	case kindHeartbeat:
		for _, x := range append([]id.ID{m.topic}, m.topics...) {
			a.fromParent(a.topics[x], from, &msg{kind: kindHeartbeat, topic: x})
		}
	case kindPublish: // sent straight to this node as the cached root
		if len(a.ep.LocalLookup(m.topic, 1, false)) > 0 {
			// No longer the root: the publisher routes again. What this
			// node's subtree can still have, it gets.
			_ = a.send(from, &msg{kind: kindNotRoot, topic: m.topic})
			if t != nil && m.publisher == from.ID {
				a.disseminate(t, &msg{kind: kindData, topic: m.topic, publisher: m.publisher, seq: m.seq, data: m.data, flags: m.flags & flagSigned, sig: m.sig}, from.ID)
			}
			return
		}
		a.rootPublish(&m, from, false)
	case kindRootIs:
		if p := a.pubs[m.topic]; p != nil && m.seq == p.lastRouted && from.ID != a.ep.Self().ID {
			p.root = from
		}
	case kindNotRoot:
		if p := a.pubs[m.topic]; p != nil && p.root.ID == from.ID {
			p.root = id.Handle{}
		}
	case kindRootState: // only from a leaf-set neighbour, as a root sends it
		if t != nil && t.root || len(a.replicas) >= 4096 && a.replicas[m.topic] == nil || !a.ep.State().Leaves.Contains(from.ID) {
			a.stats.Refused++
			return
		}
		a.replicas[m.topic] = &replica{root: from, children: m.handles, at: a.ep.Now()}
		a.tick()
	case kindAnycast:
		a.walk(&m, true)
	case kindAnycastResult:
		ac := a.anycasts[m.seq]
		if ac == nil || ac.topic != m.topic || from.ID != m.origin.ID {
			return // not ours, or not from the member it names
		}
		delete(a.anycasts, m.seq)
		a.ep.Cancel(ac.timer)
		if ac.done != nil {
			ac.done(AnycastResult{Topic: m.topic, Found: m.found, At: from, Took: a.ep.Now() - ac.start}, nil)
		}
	}
}

func (t *topic) hasChild(c id.ID) bool {
	return slices.ContainsFunc(t.children, func(x id.Handle) bool { return x.ID == c })
}

// fromParent checks data or a heartbeat from p for t: from the parent, it
// is a sign of life; from another node while the parent is silent, that
// node becomes the parent (a new root that took over); otherwise p is told
// this node is not its child.
func (a *App) fromParent(t *topic, p id.Handle, m *msg) bool {
	switch {
	case t == nil:
		a.stats.Refused++
		_ = a.send(p, &msg{kind: kindUnsubscribe, topic: m.topic})
		return false
	case t.parent.ID == p.ID && t.parent.Addr != "":
		t.heard = a.ep.Now()
		return true
	case t.root:
		a.stats.Refused++
		_ = a.send(p, &msg{kind: kindUnsubscribe, topic: m.topic})
		return false
	case t.parent.Addr == "" || a.ep.Now()-t.heard >= a.opts.HeartbeatInterval:
		a.setParent(t, p, m.depth)
		return true
	default:
		a.stats.Refused++
		_ = a.send(p, &msg{kind: kindUnsubscribe, topic: m.topic})
		return m.kind == kindData // delivered once all the same
	}
}

// atRoot handles a routed message delivered here: this node is the
// topic's root.
func (a *App) atRoot(cm *core.Message, m *msg) {
	switch m.kind {
	case kindSubscribe:
		t := a.topics[m.topic]
		if t == nil {
			if len(a.topics) >= a.opts.MaxTopics {
				a.stats.Refused++
				return
			}
			t = a.newTopic(m.topic)
		}
		if a.replicas[m.topic] != nil {
			a.takeOver(m.topic)
		}
		a.becomeRoot(t)
		if cm.Hops > 0 {
			a.addChild(t, cm.From)
		}
	case kindPublish:
		a.rootPublish(m, cm.Origin, m.flags&flagWantRoot != 0)
	case kindAnycast:
		if a.topics[m.topic] == nil {
			a.anycastDone(m, false)
			return
		}
		a.walk(m, true)
	}
}

// rootPublish sends a published message down the tree from this node, its
// root.
func (a *App) rootPublish(m *msg, publisher id.Handle, wantRoot bool) {
	if m.publisher != publisher.ID {
		a.stats.Refused++ // a publish names its own sender as publisher
		return
	}
	if m.flags&flagSigned != 0 && !a.ep.Verify(publisher, signedPayload(m.topic, m.publisher, m.seq, m.data), m.sig) {
		a.stats.Forged++
		return
	}
	if a.replicas[m.topic] != nil {
		a.takeOver(m.topic)
	}
	t := a.topics[m.topic]
	if t == nil {
		t = a.newTopic(m.topic) // a root with no tree yet: kept for later subscribers
	}
	a.becomeRoot(t)
	if wantRoot && publisher.ID != a.ep.Self().ID {
		_ = a.send(publisher, &msg{kind: kindRootIs, topic: m.topic, seq: m.seq})
	}
	d := msg{kind: kindData, topic: m.topic, publisher: m.publisher, seq: m.seq, data: m.data, flags: m.flags & flagSigned, sig: m.sig}
	a.disseminate(t, &d, a.ep.Self().ID)
	if !t.subscribed && len(t.children) == 0 {
		delete(a.topics, t.id) // no tree to keep
	}
}

// disseminate delivers m here if this node subscribes, and sends it on
// to every child but from, once.
func (a *App) disseminate(t *topic, m *msg, from id.ID) {
	if t.owner.Addr != "" && (m.publisher != t.owner.ID || m.flags&flagSigned == 0 ||
		!a.ep.Verify(t.owner, signedPayload(t.id, m.publisher, m.seq, m.data), m.sig)) {
		a.stats.Forged++ // not the owner's: neither delivered nor passed on
		return
	}
	w := t.seen[m.publisher]
	if w == nil {
		if t.seen == nil {
			t.seen = map[id.ID]*window{}
		}
		if len(t.seen) >= maxPublishers {
			delete(t.seen, smallestKey(t.seen))
		}
		w = &window{}
		t.seen[m.publisher] = w
	}
	fresh, skipped := w.add(m.seq)
	if !fresh {
		a.stats.Duplicates++
		return
	}
	if t.subscribed {
		a.stats.Missing = uint64(max(int64(a.stats.Missing)+skipped, 0))
		a.stats.Delivered++
		if a.opts.Deliver != nil {
			a.opts.Deliver(Delivery{Topic: t.id, Publisher: m.publisher, Seq: m.seq, Data: m.data, Depth: int(t.depth)})
		}
	}
	if len(t.children) == 0 {
		return
	}
	d := *m
	d.depth = t.depth + 1
	b, err := d.encode()
	if err != nil {
		return
	}
	t.lastSent = a.ep.Now()
	for _, c := range slices.Clone(t.children) { // a Send may drop a child
		if c.ID != from {
			a.stats.Forwarded++
			_ = a.ep.Send(c, b)
		}
	}
}

func appendVisited(v []id.ID, x id.ID) []id.ID {
	if slices.Contains(v, x) || len(v) >= maxHandles {
		return v
	}
	return append(v, x)
}

// walk is one step of an anycast's depth-first walk at this node: offer
// it here (check), then go on to the first unvisited node of the stack,
// this node's children first, its parent last.
func (a *App) walk(m *msg, check bool) {
	self := a.ep.Self()
	t := a.topics[m.topic]
	m.visited = appendVisited(m.visited, self.ID)
	if check && t != nil && t.subscribed && a.opts.Accept != nil && a.opts.Accept(m.topic, m.data) {
		a.anycastDone(m, true)
		return
	}
	seen := func(x id.ID) bool {
		return slices.Contains(m.visited, x) || slices.ContainsFunc(m.handles, func(h id.Handle) bool { return h.ID == x })
	}
	if t != nil {
		var push []id.Handle
		for _, c := range t.children {
			if !seen(c.ID) {
				push = append(push, c)
			}
		}
		m.handles = append(push, m.handles...)
		if p := t.parent; p.Addr != "" && !seen(p.ID) {
			m.handles = append(m.handles, p)
		}
	}
	for len(m.handles) > 0 {
		next := m.handles[0]
		m.handles = m.handles[1:]
		if slices.Contains(m.visited, next.ID) || next.ID == self.ID || !a.ep.ValidHandle(next) {
			continue
		}
		if len(m.handles) > maxHandles {
			m.handles = m.handles[:maxHandles]
		}
		if len(m.visited) >= maxHandles {
			break // walked as far as one message can remember
		}
		if a.send(next, m) == nil {
			return
		}
	}
	a.anycastDone(m, false)
}

// anycastDone tells an anycast's origin where it ended.
func (a *App) anycastDone(m *msg, found bool) {
	r := msg{kind: kindAnycastResult, topic: m.topic, seq: m.seq, found: found, origin: a.ep.Self()}
	if m.origin.ID == a.ep.Self().ID {
		b, _ := r.encode()
		a.Deliver(&core.Message{Type: core.MsgDirect, From: a.ep.Self(), Payload: b})
		return
	}
	if a.ep.ValidHandle(m.origin) {
		_ = a.send(m.origin, &r)
	}
}

// smallestKey is the least key of m (a deterministic choice of one to
// forget: map order is random).
func smallestKey[V any](m map[id.ID]V) id.ID {
	var least id.ID
	first := true
	for k := range m {
		if first || k.Cmp(least) < 0 {
			least, first = k, false
		}
	}
	return least
}
