package replication

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// AppID is the replication protocol's application id (the project's own
// applications use ids from 0xffff0000).
const AppID core.AppID = 0xffff0003

// Errors a write or a read ends with.
var (
	ErrQuorum  = errors.New("replication: too few replicas answered")
	ErrRefused = errors.New("replication: refused by the key's root")
	ErrTimeout = errors.New("replication: no answer in time")
	ErrBusy    = errors.New("replication: too many operations in flight")
	ErrNoNode  = errors.New("replication: no such record")
)

// PastOptions configure the protocol. Zero values take the defaults noted.
type PastOptions struct {
	// K is the replicas per record: the K nodes closest to its key.
	// Default 5 (or LeafSetSize/2+1 if that is smaller); at most
	// LeafSetSize/2+1.
	K int
	// W and R are the write and read quorums. Default ceil((K+1)/2).
	W, R int
	// Timeout ends a write or a read that has not completed. Default 10 s.
	Timeout time.Duration
	// Maintain is the period of anti-entropy with the leaf-set
	// neighbours, and of handing off records that left this node's range.
	// Default 60 s. After a leaf-set change a round comes within 2 s.
	Maintain time.Duration
	// Epoch is the unix time at the node clock's zero: records expire on
	// unix seconds, and a node's clock starts at zero. The runtime sets the
	// wall clock's at start; the simulator a constant.
	Epoch int64
	// Limits bound the records accepted (as the Store's).
	Limits Limits
	// MaxPending bounds the writes and reads in flight. Default 1024.
	MaxPending int
	// MaxHandoff bounds the records handed off in one maintenance round.
	// Default 64.
	MaxHandoff int
	// WriteRate and WriteBurst bound the writes one origin can have this
	// node coordinate as a root (a token bucket per origin, on the node's
	// clock): beyond, they are refused and counted. Default 50 a second,
	// burst 200.
	WriteRate, WriteBurst float64
	// TPri and TDiv are PAST's replica diversion thresholds: a replica
	// stores a record itself only if its size is at most TPri of the
	// store's free space, and otherwise diverts it to a leaf-set
	// neighbour, which takes it only if it is at most TDiv of its own
	// (see divert.go). They apply only when the store has a capacity.
	// Default 0.1 and 0.05, the paper's.
	TPri, TDiv float64
	// NoDivert turns replica diversion off: a replica stores what fits
	// in its capacity and refuses the rest (the comparison run of the
	// storage experiment).
	NoDivert bool
	// MaxPointers bounds the diverted copies a replica points to, and
	// those a node holds for its neighbours.
	// Default 65,536.
	MaxPointers int
	// CacheBytes is the size of the cache of records from the reads
	// routed through this node (caching along routes); 0: no cache, and
	// the reads started here do not ask the route to cache.
	CacheBytes int64
}

// WriteOptions are one write's: K replicas sent the record at once (at
// most the network's K; maintenance keeps the network's K copies
// whatever a write asked) and W receipts awaited. Zero: the node's.
type WriteOptions struct {
	K, W int
}

// ReadOptions are one read's: R answers awaited (zero: the node's), and
// whether a copy cached along the route may answer for a mutable record,
// possibly stale (immutable objects are answered from caches always:
// their key is their content's hash).
type ReadOptions struct {
	R     int
	Stale bool
}

// PutResult is a completed write: the receipts of the replicas that stored
// the record, W of them at least.
type PutResult struct {
	Key      id.ID
	Version  uint64
	Receipts []StoreReceipt
}

// StoreReceipt is a replica's signed word that it stored a record
// durably: its handle, and its signature (by the key its handle names)
// over the Receipt form of (key, version, digest, stored).
type StoreReceipt struct {
	Node      id.Handle
	Version   uint64
	Digest    [DigestSize]byte
	Stored    int64
	Signature []byte
}

// GetResult is a completed read.
type GetResult struct {
	Record *Record // nil if no replica that answered holds one
	// Answers is how many replicas answered; Repaired how many were sent
	// the newest copy because theirs was older or missing.
	Answers, Repaired int
	// Cached is true when a cache on the read's route answered (an
	// immutable object, or a mutable record the read accepted stale);
	// Answers is then 0.
	Cached bool
	// Hops is the overlay hops the read took to the node that answered
	// (the key's root, or the cache).
	Hops int
}

// PastStats count what this node did.
type PastStats struct {
	Stored        uint64 `json:"stored"`          // records stored here (writes, repairs, handoffs)
	Refused       uint64 `json:"refused"`         // records refused (invalid, stale, conflicting, out of range, full)
	Puts          uint64 `json:"puts"`            // writes coordinated here as root
	QuorumFails   uint64 `json:"quorum_failures"` // writes that did not reach W
	Gets          uint64 `json:"gets"`            // reads coordinated here as root
	ReadRepairs   uint64 `json:"read_repairs"`    // copies sent by read repair
	SyncRounds    uint64 `json:"sync_rounds"`     // anti-entropy summaries sent
	SyncMismatch  uint64 `json:"sync_mismatches"`
	Pushed        uint64 `json:"pushed"`         // records pushed to a neighbour that lacked them
	HandedOff     uint64 `json:"handed_off"`     // records deleted here once enough copies were confirmed elsewhere
	BadReceipts   uint64 `json:"bad_receipts"`   // receipts whose signature or record did not match
	Malformed     uint64 `json:"malformed"`      // payloads that did not decode
	ReplicasMoved uint64 `json:"replicas_moved"` // records sent to a new replica after a range change
	RateLimited   uint64 `json:"rate_limited"`   // writes refused at the root: their origin exceeded WriteRate
	Full          uint64 `json:"full"`           // records refused: no space here (nor, diverting, on a neighbour)
	OverQuota     uint64 `json:"over_quota"`     // records refused: their owner's quota here
	Diverted      uint64 `json:"diverted"`       // records this replica diverted to a neighbour (replica diversion)
	Released      uint64 `json:"released"`       // diverted copies dropped on their pointer holder's word
	PointersLost  uint64 `json:"pointers_lost"`  // pointers dropped because the holder left the leaf set
	CacheHits     uint64 `json:"cache_hits"`     // reads answered from this node's route cache
	CacheStored   uint64 `json:"cache_stored"`   // copies put in the route cache
	// Gauges, at the time of Stats.
	Pointers    int   `json:"pointers"`      // copies diverted from here, held by neighbours
	HeldForPeer int   `json:"held_for_peer"` // diverted copies held here for neighbours
	CacheBytes  int64 `json:"cache_bytes"`   // bytes in the route cache
}

// Past is the replication protocol on one node (PAST): records live on the
// K nodes closest to their keys; the key's root coordinates writes (W
// signed receipts) and reads (R answers, newest valid version, read
// repair); anti-entropy between leaf-set neighbours keeps K copies as the
// overlay changes. Like every application it is not safe for concurrent
// use: call it from the node's goroutine.
type Past struct {
	ep      *core.Endpoint
	opts    PastOptions
	store   Store
	puts    map[uint64]*putOp   // as root
	fetches map[uint64]*fetchOp // as root of a read: the replicas not yet asked
	mine    map[uint64]*myOp    // as origin
	gets    map[uint64]*getOp   // as origin
	handoff map[id.ID]*handoffOp
	// The maintenance timer: armed at tickAt (ticking), one at a time.
	ticking bool
	tickID  core.TimerID
	tickAt  time.Duration
	rounds  int // maintenance rounds run, for tests
	stats   PastStats
	writers map[id.ID]*bucket // write rate per origin, as root
	// Replica diversion (divert.go).
	diverts  map[uint64]*divertOp
	pointers map[id.ID]*pointer // copies diverted from here
	held     map[id.ID]id.ID    // copies held here, diverted by that node
	cache    *routeCache        // nil: no caching along routes
}

// bucket is a token bucket on the node's clock.
type bucket struct {
	tokens float64
	last   time.Duration
}

// maxWriters bounds the origins whose write rate a root tracks; past it
// the one heard from longest ago is forgotten.
const maxWriters = 4096

// allowWrite takes a token from origin's bucket.
func (p *Past) allowWrite(origin id.ID) bool {
	now := p.ep.Now()
	b := p.writers[origin]
	if b == nil {
		if len(p.writers) >= maxWriters {
			var oldest id.ID
			first := true
			for x, w := range p.writers {
				if first || w.last < p.writers[oldest].last || w.last == p.writers[oldest].last && x.Cmp(oldest) < 0 {
					oldest, first = x, false
				}
			}
			delete(p.writers, oldest)
		}
		b = &bucket{tokens: p.opts.WriteBurst, last: now}
		p.writers[origin] = b
	}
	b.tokens = min(p.opts.WriteBurst, b.tokens+(now-b.last).Seconds()*p.opts.WriteRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type putOp struct {
	origin    id.Handle
	rec       *Record
	key       id.ID
	entry     Entry
	w         int
	n         int     // replicas asked, this node included
	sent      []id.ID // the replicas asked
	refusedBy []id.ID // replicas that refused
	status    uint8   // the refusal to report: full, quota or none yet
	receipts  []wireReceipt
	replied   bool
	timer     core.TimerID
}

type fetchOp struct {
	key    id.ID
	origin id.Handle
	next   []id.Handle
}

type myOp struct {
	key   id.ID
	w     int
	timer core.TimerID
	done  func(PutResult, error)
}

type getOp struct {
	key     id.ID
	r       int
	stale   bool
	hops    int
	answers []getAnswer
	timer   core.TimerID
	done    func(GetResult, error)
	ended   bool
}

type getAnswer struct {
	from id.Handle
	rec  *Record // nil: not found
}

type handoffOp struct {
	req   uint64
	entry Entry
	acks  []id.ID
}

// Timer tags: the maintenance tick; operation timeouts are tagged with
// their request ids, which are never zero.
const tagMaintain = 0

var (
	_ core.Application        = (*Past)(nil)
	_ core.TimerHandler       = (*Past)(nil)
	_ core.UndeliveredHandler = (*Past)(nil)
)

// RegisterPast registers the protocol on m, over store (which it does
// not close).
func RegisterPast(m *core.Machine, store Store, opts PastOptions) (*Past, error) {
	cfg := m.Config()
	if opts.K == 0 {
		opts.K = min(5, cfg.LeafSetSize/2+1)
	}
	if opts.W == 0 {
		opts.W = (opts.K + 2) / 2
	}
	if opts.R == 0 {
		opts.R = (opts.K + 2) / 2
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Maintain == 0 {
		opts.Maintain = time.Minute
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 1024
	}
	if opts.MaxHandoff == 0 {
		opts.MaxHandoff = 64
	}
	if opts.WriteRate == 0 {
		opts.WriteRate = 50
	}
	if opts.WriteBurst == 0 {
		opts.WriteBurst = 200
	}
	if opts.TPri == 0 {
		opts.TPri = 0.1
	}
	if opts.TDiv == 0 {
		opts.TDiv = 0.05
	}
	if opts.MaxPointers == 0 {
		opts.MaxPointers = 65536
	}
	switch {
	case store == nil:
		return nil, errors.New("replication: RegisterPast needs a store")
	case opts.K < 1 || opts.K > cfg.LeafSetSize/2+1:
		return nil, fmt.Errorf("replication: K %d, want 1 to L/2+1 = %d", opts.K, cfg.LeafSetSize/2+1)
	case opts.W < 1 || opts.W > opts.K || opts.R < 1 || opts.R > opts.K:
		return nil, fmt.Errorf("replication: W %d and R %d, want 1 to K = %d", opts.W, opts.R, opts.K)
	case opts.Timeout < 0 || opts.Maintain < 0 || opts.MaxPending < 0 || opts.MaxHandoff < 0 || opts.WriteRate < 0 || opts.WriteBurst < 1 ||
		opts.MaxPointers < 0 || opts.CacheBytes < 0:
		return nil, errors.New("replication: negative durations or bounds")
	case !(opts.TPri > 0 && opts.TPri <= 1) || !(opts.TDiv > 0 && opts.TDiv <= 1):
		return nil, fmt.Errorf("replication: TPri %v and TDiv %v, want (0, 1]", opts.TPri, opts.TDiv)
	}
	if err := opts.Limits.Check(); err != nil {
		return nil, err
	}
	p := &Past{opts: opts, store: store, writers: map[id.ID]*bucket{}, puts: map[uint64]*putOp{}, fetches: map[uint64]*fetchOp{}, mine: map[uint64]*myOp{},
		gets: map[uint64]*getOp{}, handoff: map[id.ID]*handoffOp{}, diverts: map[uint64]*divertOp{}, pointers: map[id.ID]*pointer{}, held: map[id.ID]id.ID{}}
	if opts.CacheBytes > 0 {
		p.cache = newRouteCache(opts.CacheBytes)
	}
	ep, err := m.RegisterApplication(AppID, p)
	if err != nil {
		return nil, err
	}
	p.ep = ep
	return p, nil
}

// Stats returns the counters.
func (p *Past) Stats() PastStats {
	s := p.stats
	s.Pointers, s.HeldForPeer = len(p.pointers), len(p.held)
	if p.cache != nil {
		s.CacheBytes = p.cache.used
	}
	return s
}

// DropCache empties the route cache (the simulator starts each caching
// experiment cold).
func (p *Past) DropCache() {
	if p.cache != nil {
		p.cache = newRouteCache(p.opts.CacheBytes)
	}
}

// Options returns the options in force.
func (p *Past) Options() PastOptions { return p.opts }

func (p *Past) unix() int64 { return p.opts.Epoch + int64(p.ep.Now()/time.Second) }

func (p *Past) maxRecord() int { return p.opts.Limits.maxEncoded() }

func (p *Past) newReq() uint64 {
	for {
		r := p.ep.Rand().Uint64()
		if r != tagMaintain && p.mine[r] == nil && p.gets[r] == nil && p.puts[r] == nil && p.fetches[r] == nil && p.diverts[r] == nil {
			return r
		}
	}
}

func (p *Past) send(to id.Handle, m *pmsg) {
	if b, err := m.encode(); err == nil {
		_ = p.ep.Send(to, b)
	}
}

// Put writes rec (validated here first) to its key's K replicas; done
// gets the receipts once W replicas stored it, or the error. It fails at
// once with core.ErrNotJoined, ErrBusy, or rec's own error.
func (p *Past) Put(rec *Record, done func(PutResult, error)) error {
	return p.PutWith(rec, WriteOptions{}, done)
}

// PutWith is Put with one write's options.
func (p *Past) PutWith(rec *Record, o WriteOptions, done func(PutResult, error)) error {
	k, w := o.K, o.W
	if k == 0 {
		k = p.opts.K
	}
	if w == 0 {
		w = min(p.opts.W, k)
		if o.K != 0 {
			w = (k + 2) / 2
		}
	}
	if k < 1 || k > p.opts.K || w < 1 || w > k {
		return fmt.Errorf("replication: write with K %d and W %d, want 1 <= W <= K <= %d", k, w, p.opts.K)
	}
	if p.ep.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	if len(p.mine)+len(p.gets) >= p.opts.MaxPending {
		return ErrBusy
	}
	if err := rec.Validate(p.unix(), p.opts.Limits); err != nil {
		return err
	}
	enc, err := rec.Marshal()
	if err != nil {
		return err
	}
	req := p.newReq()
	op := &myOp{key: rec.Key(), w: w, done: done}
	p.mine[req] = op
	op.timer, _ = p.ep.After(p.opts.Timeout, req)
	b, err := (&pmsg{kind: kindPut, req: req, k: uint8(k), w: uint8(w), record: enc}).encode()
	if err == nil {
		err = p.ep.Route(op.key, b, nil)
	}
	if err != nil {
		p.ep.Cancel(op.timer)
		delete(p.mine, req)
	}
	return err
}

// Get reads key from R of its replicas and returns the newest valid
// version (and sends it to those that answered with an older one, or
// none); done gets nil Record when no replica that answered holds one.
func (p *Past) Get(key id.ID, done func(GetResult, error)) error {
	return p.GetWith(key, ReadOptions{}, done)
}

// GetWith is Get with one read's options.
func (p *Past) GetWith(key id.ID, o ReadOptions, done func(GetResult, error)) error {
	r := o.R
	if r == 0 {
		r = p.opts.R
	}
	if r < 1 || r > p.opts.K {
		return fmt.Errorf("replication: read with R %d, want 1 to K = %d", r, p.opts.K)
	}
	if p.ep.Status() != core.StatusJoined {
		return core.ErrNotJoined
	}
	if len(p.mine)+len(p.gets) >= p.opts.MaxPending {
		return ErrBusy
	}
	req := p.newReq()
	op := &getOp{key: key, r: r, stale: o.Stale, done: done}
	p.gets[req] = op
	op.timer, _ = p.ep.After(p.opts.Timeout, req)
	var flags uint8
	if o.Stale {
		flags |= flagStale
	}
	if p.cache != nil {
		flags |= flagCache
	}
	b, err := (&pmsg{kind: kindGet, req: req, r: uint8(r), key: key, flags: flags}).encode()
	if err == nil {
		err = p.ep.Route(key, b, nil)
	}
	if err != nil {
		p.ep.Cancel(op.timer)
		delete(p.gets, req)
	}
	return err
}

// Timer ends an operation in time, or runs a maintenance round.
func (p *Past) Timer(tag uint64) {
	if tag == tagMaintain {
		p.ticking = false
		p.rounds++
		p.maintain()
		p.tick(p.opts.Maintain)
		return
	}
	if op := p.mine[tag]; op != nil {
		delete(p.mine, tag)
		if op.done != nil {
			op.done(PutResult{Key: op.key}, fmt.Errorf("%w: write of %s after %v", ErrTimeout, op.key.Short(), p.opts.Timeout))
		}
	}
	if op := p.gets[tag]; op != nil {
		p.endGet(tag, op)
	}
	delete(p.fetches, tag)
	if op := p.diverts[tag]; op != nil {
		p.tryDivert(tag, op)
	}
	if op := p.puts[tag]; op != nil {
		delete(p.puts, tag)
		if !op.replied {
			p.stats.QuorumFails++
			p.reply(tag, op, statusQuorum)
		}
	}
}

// tick arms the maintenance timer to fire within d: one timer at a time,
// moved earlier when it was armed later.
func (p *Past) tick(d time.Duration) {
	at := p.ep.Now() + d
	if p.ticking {
		if p.tickAt <= at {
			return
		}
		p.ep.Cancel(p.tickID)
		p.ticking = false
	}
	if t, err := p.ep.After(d, tagMaintain); err == nil {
		p.ticking, p.tickID, p.tickAt = true, t, at
	}
}

// Start begins maintenance; call it once the node has joined (the
// runtime and the simulator do).
func (p *Past) Start() { p.tick(p.opts.Maintain) }

// Forward is caching along routes: a read routed through this node is
// answered from its cache when it holds an immutable object at the key,
// or a mutable record and the read accepts stale data (the read stops
// here); otherwise this node adds itself to the read's route, so that the
// root sends it a copy to cache.
func (p *Past) Forward(cm *core.Message, _ *id.Handle) bool {
	if p.cache == nil || len(cm.Payload) == 0 || cm.Payload[0] != kindGet {
		return true
	}
	m, err := decode(cm.Payload, p.maxRecord())
	if err != nil {
		return true
	}
	if it := p.cache.get(m.key); it != nil {
		switch {
		case it.rec.Expired(p.unix()):
			p.cache.drop(m.key)
		case it.rec.Kind == Immutable || m.flags&flagStale != 0:
			p.stats.CacheHits++
			p.sendCached(cm.Origin, &pmsg{kind: kindCached, req: m.req, key: m.key, hops: uint8(min(cm.Hops, 255)), record: it.enc})
			return false
		}
	}
	if m.flags&flagCache != 0 && len(m.path) < maxPath {
		m.path = append(m.path, p.ep.Self())
		if b, err := m.encode(); err == nil {
			cm.Payload = b
		}
	}
	return true
}

// sendCached answers a read's origin from the cache.
func (p *Past) sendCached(origin id.Handle, m *pmsg) {
	if origin.ID == p.ep.Self().ID {
		p.onCached(m)
		return
	}
	p.deliverTo(origin, m)
}

// onCached completes a read started here with a copy from a cache on its
// route: an immutable object that matches its key, or a valid mutable
// record if the read accepts stale data.
func (p *Past) onCached(m *pmsg) {
	op := p.gets[m.req]
	if op == nil || op.ended || m.key != op.key {
		return
	}
	rec, err := UnmarshalRecord(m.record, p.opts.Limits)
	if err != nil || rec.Validate(p.unix(), p.opts.Limits) != nil || rec.CheckKey(op.key) != nil || rec.Kind != Immutable && !op.stale {
		p.stats.Refused++
		return
	}
	delete(p.gets, m.req)
	p.ep.Cancel(op.timer)
	op.ended = true
	if op.done != nil {
		op.done(GetResult{Record: rec, Cached: true, Hops: int(m.hops)}, nil)
	}
}

// onCache caches a copy the root of a read sent back along its route, and
// passes it on to the node before this one, if connected to it.
func (p *Past) onCache(m *pmsg) {
	if p.cache == nil {
		return
	}
	rec, err := UnmarshalRecord(m.record, p.opts.Limits)
	if err != nil || rec.Validate(p.unix(), p.opts.Limits) != nil || rec.CheckKey(m.key) != nil {
		p.stats.Refused++
		return
	}
	if p.cache.put(m.key, rec, m.record) {
		p.stats.CacheStored++
	}
	if n := len(m.path); n > 0 {
		prev := m.path[n-1]
		if prev.ID != p.ep.Self().ID && p.ep.Connected(prev) {
			p.send(prev, &pmsg{kind: kindCache, key: m.key, record: m.record, path: m.path[:n-1]})
		}
	}
}

// Update brings a maintenance round forward when the leaf set changes:
// ranges moved.
func (p *Past) Update(id.Handle, bool) { p.tick(2 * time.Second) }

// Undelivered: a replica or an origin that did not acknowledge. A read's
// fetch goes to the next replica instead; a write waiting for that
// replica's receipt ends at its timeout if it needs it.
func (p *Past) Undelivered(cm *core.Message) {
	m, err := decode(cm.Payload, p.maxRecord())
	if err != nil {
		return
	}
	if m.kind == kindDivert {
		if op := p.diverts[m.req]; op != nil && op.to.ID == cm.To.ID {
			p.tryDivert(m.req, op)
		}
		return
	}
	if m.kind != kindFetch {
		return
	}
	if f := p.fetches[m.req]; f != nil && len(f.next) > 0 {
		h := f.next[0]
		f.next = f.next[1:]
		p.send(h, &m)
	}
}

// Deliver handles the protocol's messages.
func (p *Past) Deliver(cm *core.Message) {
	m, err := decode(cm.Payload, p.maxRecord())
	if err != nil {
		p.stats.Malformed++
		return
	}
	if cm.Type == core.MsgRoute {
		switch m.kind {
		case kindPut:
			p.rootPut(cm.Origin, &m)
		case kindGet:
			p.rootGet(cm.Origin, &m, int(cm.Hops))
		case kindHave: // routed to this node's id: it vouches for itself by its signature
			if cm.Key == p.ep.Self().ID {
				p.onHave(m.origin, &m, false)
			}
		case kindResult: // the receipts vouch for themselves
			if cm.Key == p.ep.Self().ID {
				p.onResult(cm.Origin, &m)
			}
		case kindPush:
			if cm.Key == p.ep.Self().ID {
				p.onPush(cm.Origin, &m)
			}
		case kindCached:
			if cm.Key == p.ep.Self().ID {
				p.onCached(&m)
			}
		}
		return
	}
	from := cm.From
	switch m.kind {
	case kindStore:
		p.onStore(from, &m)
	case kindStored:
		p.onStored(from, &m)
	case kindResult:
		p.onResult(from, &m)
	case kindFetch:
		p.onFetch(from, &m)
	case kindHave:
		p.onHave(from, &m, true)
	case kindSync:
		p.onSync(from, &m)
	case kindEntries:
		p.onEntries(from, &m)
	case kindPush:
		p.onPush(from, &m)
	case kindDivert:
		p.onDivert(from, &m)
	case kindRelease:
		p.onRelease(from, &m)
	case kindCached:
		p.onCached(&m)
	case kindCache:
		p.onCache(&m)
	case kindOffer:
		p.onOffer(from, &m)
	}
}

// check validates an encoded record, and that this node is among the K
// closest to its key (by its leaf set) unless force. A record refused is
// counted.
func (p *Past) check(enc []byte, force bool) (*Record, Entry, uint8) {
	rec, err := UnmarshalRecord(enc, p.opts.Limits)
	if err != nil || rec.Validate(p.unix(), p.opts.Limits) != nil {
		p.stats.Refused++
		return nil, Entry{}, statusRefused
	}
	e, err := rec.Entry()
	if err != nil {
		p.stats.Refused++
		return nil, Entry{}, statusRefused
	}
	if !force && !p.inRange(e.Key) {
		p.stats.Refused++
		return rec, e, statusRefused
	}
	return rec, e, statusOK
}

// accept validates an encoded record and keeps it (place) if this node is
// among the K closest to its key; done (may be nil) gets the status.
func (p *Past) accept(from id.Handle, enc []byte, done func(uint8, Entry)) {
	rec, e, st := p.check(enc, false)
	if st != statusOK {
		if done != nil {
			done(st, e)
		}
		return
	}
	p.place(from, rec, e, enc, func(st uint8) {
		if done != nil {
			done(st, e)
		}
	})
}

// inRange reports whether this node is among the K closest to key, as
// far as its leaf set shows (when it cannot tell, it is).
func (p *Past) inRange(key id.ID) bool {
	lo, hi, ok := p.ep.Range(p.ep.Self(), p.opts.K-1)
	return !ok || InRange(lo, hi, key)
}

// receipt signs this node's receipt for e.
func (p *Past) receipt(e Entry) (wireReceipt, bool) {
	rc := Receipt{Key: e.Key, Version: e.Version, Digest: e.Digest, Stored: p.unix(), Node: p.selfKey()}
	sig, err := p.ep.Sign(rc.SignedBytes())
	if err != nil {
		return wireReceipt{}, false
	}
	return wireReceipt{node: p.ep.Self(), version: e.Version, digest: e.Digest, stored: rc.Stored, sig: sig}, true
}

// selfKey is what stands for this node's key in a receipt's signed bytes:
// its node id (the signature itself is checked against the key its
// handle names, with Endpoint.Verify).
func (p *Past) selfKey() []byte { x := p.ep.Self().ID; return x[:] }

func receiptBytes(node id.ID, key id.ID, rc wireReceipt) []byte {
	r := Receipt{Key: key, Version: rc.version, Digest: rc.digest, Stored: rc.stored, Node: node[:]}
	return r.SignedBytes()
}

// rootPut coordinates a write at the key's root: store here, ask the
// other K-1 replicas, and answer the origin once W receipts are in.
func (p *Past) rootPut(origin id.Handle, m *pmsg) {
	p.stats.Puts++
	if !p.allowWrite(origin.ID) {
		p.stats.RateLimited++
		p.sendResult(origin, m.req, statusRefused, nil)
		return
	}
	k, w := int(m.k), int(m.w)
	if k < 1 || k > p.ep.Config().LeafSetSize/2+1 || w < 1 || w > k {
		p.sendResult(origin, m.req, statusRefused, nil)
		return
	}
	rec, e, st := p.check(m.record, true)
	if st != statusOK {
		p.sendResult(origin, m.req, st, nil)
		return
	}
	if p.puts[m.req] != nil {
		return // a copy of a write in progress
	}
	if len(p.puts) >= p.opts.MaxPending {
		p.place(p.ep.Self(), rec, e, m.record, nil)
		p.sendResult(origin, m.req, statusRefused, nil) // stored here; the rest by anti-entropy
		return
	}
	replicas := p.ep.ReplicaSet(e.Key, k)
	req := m.req
	op := &putOp{origin: origin, rec: rec, key: e.Key, entry: e, w: w, n: max(len(replicas), 1)}
	p.puts[req] = op
	op.timer, _ = p.ep.After(p.opts.Timeout, req)
	p.place(p.ep.Self(), rec, e, m.record, func(st uint8) { p.onOwnPlaced(req, op, st) })
	if op.replied && len(op.receipts) == 0 {
		// Refused here by the version rules: the others are not asked.
		p.ep.Cancel(op.timer)
		delete(p.puts, req)
		return
	}
	for _, h := range replicas {
		if h.ID != p.ep.Self().ID {
			op.sent = append(op.sent, h.ID)
			p.send(h, &pmsg{kind: kindStore, req: req, record: m.record})
		}
	}
	p.checkQuorum(req, op)
}

// onOwnPlaced counts the root's own copy of a write it coordinates.
func (p *Past) onOwnPlaced(req uint64, op *putOp, st uint8) {
	if p.puts[req] != op || op.replied {
		return
	}
	switch st {
	case statusOK:
		if rc, ok := p.receipt(op.entry); ok {
			op.receipts = append(op.receipts, rc)
		}
		p.checkQuorum(req, op)
	case statusStale, statusConflict:
		// The root's version rules decide the write.
		op.replied = true
		p.reply(req, op, st)
	default:
		p.refused(req, op, p.ep.Self().ID, st)
	}
}

// refused counts a replica's refusal of a write coordinated here, and ends
// the write once W receipts cannot come any more.
func (p *Past) refused(req uint64, op *putOp, from id.ID, st uint8) {
	if slices.Contains(op.refusedBy, from) {
		return
	}
	op.refusedBy = append(op.refusedBy, from)
	if st == statusFull || st == statusQuota {
		op.status = st
	}
	if !op.replied && op.n-len(op.refusedBy) < op.w {
		op.replied = true
		p.stats.QuorumFails++
		st := op.status
		if st == statusOK {
			st = statusQuorum
		}
		p.reply(req, op, st)
	}
}

func (p *Past) checkQuorum(req uint64, op *putOp) {
	if !op.replied && len(op.receipts) >= op.w {
		op.replied = true
		p.reply(req, op, statusOK)
	}
}

func (p *Past) reply(req uint64, op *putOp, status uint8) {
	p.sendResult(op.origin, req, status, op.receipts)
}

func (p *Past) sendResult(to id.Handle, req uint64, status uint8, rcs []wireReceipt) {
	m := &pmsg{kind: kindResult, req: req, status: status, receipts: rcs[:min(len(rcs), 255)]}
	if to.ID == p.ep.Self().ID {
		p.onResult(to, m)
		return
	}
	p.deliverTo(to, m)
}

// onStore stores a replica (or a handed-off copy), diverting it if this
// node is full, and answers with a signed receipt.
func (p *Past) onStore(from id.Handle, m *pmsg) {
	req := m.req
	p.accept(from, m.record, func(st uint8, e Entry) { p.sendStored(from, req, st, e) })
}

// sendStored answers a store or a diversion: signed when ok.
func (p *Past) sendStored(to id.Handle, req uint64, st uint8, e Entry) {
	out := &pmsg{kind: kindStored, req: req, status: st, key: e.Key, version: e.Version, digest: e.Digest}
	if st == statusOK {
		rc, ok := p.receipt(e)
		if !ok {
			return
		}
		out.stored, out.sig = rc.stored, rc.sig
	}
	p.send(to, out)
}

// onStored takes a replica's receipt, for a write coordinated here or a
// handoff.
func (p *Past) onStored(from id.Handle, m *pmsg) {
	if h := p.handoff[m.key]; h != nil && h.req == m.req {
		p.onHandoffAck(from, m, h)
		return
	}
	if d := p.diverts[m.req]; d != nil {
		p.onDivertStored(from, m, m.req, d)
		return
	}
	op := p.puts[m.req]
	if op == nil || m.key != op.key {
		return
	}
	if m.status != statusOK {
		if slices.Contains(op.sent, from.ID) {
			p.refused(m.req, op, from.ID, m.status)
		}
		return
	}
	rc := wireReceipt{node: from, version: m.version, digest: m.digest, stored: m.stored, sig: m.sig}
	if m.version != op.entry.Version || m.digest != op.entry.Digest || !p.ep.Verify(from, receiptBytes(from.ID, op.key, rc), m.sig) {
		p.stats.BadReceipts++
		return
	}
	for _, x := range op.receipts {
		if x.node.ID == from.ID {
			return
		}
	}
	op.receipts = append(op.receipts, rc)
	p.checkQuorum(m.req, op)
}

// onResult completes a write started here: every receipt must be signed
// by the node it names, for this record, and the signers distinct.
func (p *Past) onResult(from id.Handle, m *pmsg) {
	op := p.mine[m.req]
	if op == nil {
		return
	}
	delete(p.mine, m.req)
	p.ep.Cancel(op.timer)
	res := PutResult{Key: op.key}
	seen := map[id.ID]bool{}
	for _, rc := range m.receipts {
		if seen[rc.node.ID] || !p.ep.Verify(rc.node, receiptBytes(rc.node.ID, op.key, rc), rc.sig) {
			p.stats.BadReceipts++
			continue
		}
		seen[rc.node.ID] = true
		res.Version = rc.version
		res.Receipts = append(res.Receipts, StoreReceipt{Node: rc.node, Version: rc.version, Digest: rc.digest, Stored: rc.stored, Signature: rc.sig})
	}
	var err error
	switch {
	case m.status == statusStale:
		err = fmt.Errorf("%w: %s holds a higher version", ErrStale, op.key.Short())
	case m.status == statusConflict:
		err = fmt.Errorf("%w: %s holds another record with this version", ErrConflict, op.key.Short())
	case m.status == statusRefused:
		err = fmt.Errorf("%w: %s", ErrRefused, op.key.Short())
	case m.status == statusFull:
		err = fmt.Errorf("%w: too many of %s's replicas, and their neighbours, have no space for it (%d receipts, want %d)", ErrCapacity, op.key.Short(), len(res.Receipts), op.w)
	case m.status == statusQuota:
		err = fmt.Errorf("%w: too many of %s's replicas refused its owner more space (%d receipts, want %d)", ErrQuota, op.key.Short(), len(res.Receipts), op.w)
	case m.status == statusQuorum || len(res.Receipts) < op.w:
		err = fmt.Errorf("%w: %d receipts for %s, want %d", ErrQuorum, len(res.Receipts), op.key.Short(), op.w)
	}
	if op.done != nil {
		op.done(res, err)
	}
}

// rootGet coordinates a read at the key's root: its own answer and R-1
// other replicas', each straight to the origin.
func (p *Past) rootGet(origin id.Handle, m *pmsg, hops int) {
	p.stats.Gets++
	r := int(m.r)
	if r < 1 || r > p.ep.Config().LeafSetSize/2+1 {
		return
	}
	p.answer(origin, m.req, m.key, uint8(min(hops, 255)))
	if n := len(m.path); n > 0 && m.flags&flagCache != 0 {
		// A copy for the route's caches, back along it from its last node.
		if rec, ok, err := p.store.Get(m.key); err == nil && ok {
			if enc, err := rec.Marshal(); err == nil && p.ep.Connected(m.path[n-1]) {
				p.send(m.path[n-1], &pmsg{kind: kindCache, key: m.key, record: enc, path: m.path[:n-1]})
			}
		}
	}
	var others []id.Handle
	for _, h := range p.ep.ReplicaSet(m.key, p.opts.K) {
		if h.ID != p.ep.Self().ID {
			others = append(others, h)
		}
	}
	ask := others[:min(len(others), r-1)]
	for _, h := range ask {
		p.send(h, &pmsg{kind: kindFetch, req: m.req, key: m.key, origin: origin})
	}
	if rest := others[len(ask):]; len(rest) > 0 && p.fetches[m.req] == nil && len(p.fetches) < p.opts.MaxPending {
		// A replica that does not acknowledge is replaced by the next.
		p.fetches[m.req] = &fetchOp{key: m.key, origin: origin, next: rest}
		_, _ = p.ep.After(p.opts.Timeout, m.req)
	}
}

// onFetch answers a read's origin for the key's root, a leaf-set
// neighbour: a fetch from anyone else would make this node send a record
// to an address of the sender's choosing.
func (p *Past) onFetch(from id.Handle, m *pmsg) {
	if !p.ep.State().Leaves.Contains(from.ID) || !p.ep.ValidHandle(m.origin) {
		p.stats.Refused++
		return
	}
	p.answer(m.origin, m.req, m.key, 0)
}

// answer sends this node's copy of key (or that it has none) to origin:
// straight to it when connected, otherwise routed to its id, signed.
func (p *Past) answer(origin id.Handle, req uint64, key id.ID, hops uint8) {
	out := &pmsg{kind: kindHave, req: req, key: key, origin: p.ep.Self(), hops: hops}
	rec, ok, err := p.store.Get(key)
	if ptr := p.pointers[key]; ptr != nil && (err != nil || !ok) {
		// Diverted: the holder answers for this node.
		p.send(ptr.holder, &pmsg{kind: kindFetch, req: req, key: key, origin: origin})
		return
	}
	if err == nil && ok {
		if enc, err := rec.Marshal(); err == nil {
			out.found, out.record = true, enc
		}
	}
	if origin.ID == p.ep.Self().ID {
		p.onHave(p.ep.Self(), out, true)
		return
	}
	p.deliverTo(origin, out)
}

// haveBytes is what a replica signs of its answer.
func haveBytes(m *pmsg) []byte {
	b := append([]byte("pastry have v1\x00"), m.origin.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, m.req)
	b = append(b, m.key[:]...)
	if m.found {
		b = append(b, 1)
		d := sha256.Sum256(m.record)
		return append(b, d[:]...)
	}
	return append(b, 0)
}

// deliverTo sends m straight to h when a connection to it is open, and
// otherwise routes it to h's id over the connections the overlay has (a
// dial for one answer costs more than the extra hops; see the lookup's
// answers). A routed answer is signed by this node.
func (p *Past) deliverTo(h id.Handle, m *pmsg) {
	if p.ep.Connected(h) {
		p.send(h, m)
		return
	}
	if m.kind == kindHave {
		if sig, err := p.ep.Sign(haveBytes(m)); err == nil {
			m.sig = sig
		}
	}
	if b, err := m.encode(); err == nil {
		_ = p.ep.Route(h.ID, b, nil)
	}
}

// onHave collects a replica's answer to a read started here: straight
// from the replica it names (direct; the transport vouches for the
// sender), or routed and signed by it.
func (p *Past) onHave(from id.Handle, m *pmsg, direct bool) {
	op := p.gets[m.req]
	if op == nil || op.ended || m.key != op.key {
		return
	}
	switch {
	case direct && from.ID != m.origin.ID:
		return // not the replica it names
	case !direct && (len(m.sig) == 0 || !p.ep.ValidHandle(m.origin) || !p.ep.Verify(m.origin, haveBytes(m), m.sig)):
		p.stats.BadReceipts++
		return
	}
	for _, a := range op.answers {
		if a.from.ID == from.ID {
			return
		}
	}
	op.hops = max(op.hops, int(m.hops))
	a := getAnswer{from: from}
	if m.found {
		rec, err := UnmarshalRecord(m.record, p.opts.Limits)
		// A forged or mismatched record counts as no answer's record.
		if err == nil && rec.Validate(p.unix(), p.opts.Limits) == nil && rec.CheckKey(op.key) == nil {
			a.rec = rec
		}
	}
	op.answers = append(op.answers, a)
	if len(op.answers) >= op.r {
		p.endGet(m.req, op)
	}
}

// endGet completes a read with the newest valid version among the
// answers, repairing the replicas that answered with less.
func (p *Past) endGet(req uint64, op *getOp) {
	delete(p.gets, req)
	p.ep.Cancel(op.timer)
	op.ended = true
	var best *Record
	for _, a := range op.answers {
		if a.rec == nil {
			continue
		}
		if best == nil {
			best = a.rec
			continue
		}
		if replace, err := Supersedes(best, a.rec); err == nil && replace {
			best = a.rec
		}
	}
	res := GetResult{Record: best, Answers: len(op.answers), Hops: op.hops}
	if best != nil {
		enc, err := best.Marshal()
		if err == nil {
			for _, a := range op.answers {
				if a.rec == nil || !a.rec.Equal(best) {
					res.Repaired++
					p.stats.ReadRepairs++
					if a.from.ID != p.ep.Self().ID {
						p.deliverTo(a.from, &pmsg{kind: kindPush, record: enc})
					} else {
						p.accept(p.ep.Self(), enc, nil)
					}
				}
			}
		}
	}
	var err error
	if len(op.answers) < op.r && best == nil {
		err = fmt.Errorf("%w: %d of %d replicas answered for %s", ErrQuorum, len(op.answers), op.r, op.key.Short())
	}
	if op.done != nil {
		op.done(res, err)
	}
}

// onPush stores a copy another node says this node should hold.
func (p *Past) onPush(from id.Handle, m *pmsg) { p.accept(from, m.record, nil) }

// maintain runs one round: summaries of the ranges shared with each
// neighbour that shares some, and the handoff of records that left this
// node's range.
func (p *Past) maintain() {
	if p.ep.Status() != core.StatusJoined {
		return
	}
	self := p.ep.Self()
	lo, hi, ok := p.ep.Range(self, p.opts.K-1)
	if !ok {
		return
	}
	p.maintainDiversion()
	for _, n := range p.ep.NeighborSet(2 * (p.opts.K - 1)) {
		nlo, nhi, ok := p.ep.Range(n, p.opts.K-1)
		if !ok {
			continue
		}
		for _, seg := range intersect(lo, hi, nlo, nhi) {
			s, err := p.summary(seg[0], seg[1])
			if err != nil || s.Count == 0 {
				continue // nothing to offer: a neighbour with records sends its own summary
			}
			p.stats.SyncRounds++
			p.send(n, &pmsg{kind: kindSync, lo: seg[0], hi: seg[1], count: uint32(s.Count), hash: s.Hash})
		}
	}
	p.handOff(lo, hi)
}

// intersect returns the arcs common to [alo, ahi] and [blo, bhi].
func intersect(alo, ahi, blo, bhi id.ID) [][2]id.ID {
	var out [][2]id.ID
	for _, a := range Segments(alo, ahi) {
		for _, b := range Segments(blo, bhi) {
			lo, hi := a[0], a[1]
			if b[0].Cmp(lo) > 0 {
				lo = b[0]
			}
			if b[1].Cmp(hi) < 0 {
				hi = b[1]
			}
			if lo.Cmp(hi) <= 0 {
				out = append(out, [2]id.ID{lo, hi})
			}
		}
	}
	return out
}

// onSync compares a neighbour's summary of a range with this node's; on a
// difference, it sends its entries of the range.
func (p *Past) onSync(from id.Handle, m *pmsg) {
	s, err := p.summary(m.lo, m.hi)
	if err != nil || s.Count == int(m.count) && s.Hash == m.hash {
		return
	}
	p.stats.SyncMismatch++
	p.sendEntries(from, m.lo, m.hi, false)
}

func (p *Past) sendEntries(to id.Handle, lo, hi id.ID, reply bool) {
	out := &pmsg{kind: kindEntries, lo: lo, hi: hi, reply: reply}
	_ = p.store.Entries(lo, hi, func(e Entry) bool {
		out.entries = append(out.entries, entryRef{key: e.Key, version: e.Version, digest: e.Digest})
		return len(out.entries) < maxEntries
	})
	for _, e := range p.pointerEntries(lo, hi) {
		if len(out.entries) >= maxEntries {
			break
		}
		out.entries = append(out.entries, entryRef{key: e.Key, version: e.Version, digest: e.Digest})
	}
	p.send(to, out)
}

// onEntries pushes to the sender what it lacks or holds older, and (unless
// this is already a reply) sends this node's entries so that the sender
// pushes back what this node lacks.
func (p *Past) onEntries(from id.Handle, m *pmsg) {
	theirs := map[id.ID]entryRef{}
	for _, e := range m.entries {
		theirs[e.key] = e
	}
	pushed := 0
	_ = p.store.Range(m.lo, m.hi, func(rec *Record) bool {
		e, err := rec.Entry()
		if err != nil {
			return true
		}
		t, ok := theirs[e.Key]
		if ok && (t.version > e.Version || t.version == e.Version) {
			return true // they hold it, or newer (a conflict stays where it is)
		}
		if enc, err := rec.Marshal(); err == nil {
			p.send(from, &pmsg{kind: kindPush, record: enc})
			p.stats.Pushed++
			pushed++
		}
		return pushed < p.opts.MaxHandoff
	})
	// What the sender lacks and this node keeps diverted: its holder is
	// asked to push it.
	for _, e := range p.pointerEntries(m.lo, m.hi) {
		if pushed >= p.opts.MaxHandoff {
			break
		}
		if t, ok := theirs[e.Key]; ok && t.version >= e.Version {
			continue
		}
		p.send(p.pointers[e.Key].holder, &pmsg{kind: kindOffer, key: e.Key, origin: from})
		pushed++
	}
	if !m.reply {
		p.sendEntries(from, m.lo, m.hi, true)
	}
}

// handOff sends records outside this node's range to the key's replicas
// and deletes them once more than K/2 of those confirmed they hold them.
func (p *Past) handOff(lo, hi id.ID) {
	var out []Entry
	var all [][2]id.ID
	// Everything not in [lo, hi]: the arc after hi up to before lo.
	one := id.U128{Lo: 1}
	if next, prev := hi.U128().Add(one).ID(), lo.U128().Sub(one).ID(); next != lo {
		all = append(all, Segments(next, prev)...)
	}
	for _, seg := range all {
		_ = p.store.Entries(seg[0], seg[1], func(e Entry) bool {
			if h, ok := p.held[e.Key]; ok && p.heldValid(e.Key, h) {
				return true // a diverted copy held for a replica
			}
			out = append(out, e)
			return len(out) < p.opts.MaxHandoff
		})
	}
	for _, e := range out {
		h := p.handoff[e.Key]
		if h == nil || h.entry.Version != e.Version {
			h = &handoffOp{req: p.newReq(), entry: e}
			p.handoff[e.Key] = h
		}
		rec, ok, err := p.store.Get(e.Key)
		if err != nil || !ok {
			delete(p.handoff, e.Key)
			continue
		}
		enc, err := rec.Marshal()
		if err != nil {
			continue
		}
		for _, r := range p.ep.ReplicaSet(e.Key, p.opts.K) {
			if r.ID != p.ep.Self().ID && !slices.Contains(h.acks, r.ID) {
				p.send(r, &pmsg{kind: kindStore, req: h.req, record: enc})
			}
		}
	}
}

// onHandoffAck counts a replica's receipt for a record being handed off,
// and deletes the record here once more than K/2 replicas hold it.
func (p *Past) onHandoffAck(from id.Handle, m *pmsg, h *handoffOp) {
	if m.status != statusOK && m.status != statusStale {
		return
	}
	if m.status == statusOK {
		rc := wireReceipt{node: from, version: m.version, digest: m.digest, stored: m.stored, sig: m.sig}
		if m.version != h.entry.Version || !p.ep.Verify(from, receiptBytes(from.ID, m.key, rc), m.sig) {
			p.stats.BadReceipts++
			return
		}
	}
	if !slices.Contains(h.acks, from.ID) {
		h.acks = append(h.acks, from.ID)
	}
	if len(h.acks) > p.opts.K/2 {
		if _, held := p.held[m.key]; !held && !p.inRange(m.key) {
			if ok, err := p.store.Delete(m.key); err == nil && ok {
				p.stats.HandedOff++
			}
		}
		delete(p.handoff, m.key)
	}
}
