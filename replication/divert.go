package replication

import (
	"errors"
	"maps"
	"slices"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// Replica diversion (PAST, Rowstron & Druschel 2001, section 3.3; decision
// 0064). A replica asked to store a record of size S with F bytes free
// stores it itself only if S <= TPri*F; otherwise it asks a leaf-set
// neighbour outside the key's K closest (the closest to the key first) to
// hold the copy, which accepts only if S <= TDiv*F' of its own free
// space, and keeps a pointer: the neighbour's signed receipt. The pointer
// counts as the copy for writes (the replica signs its own receipt),
// reads (a fetch is passed on to the holder) and anti-entropy (its entry
// is in the replica's summaries). With no neighbour that accepts among
// maxDivertTries, the store is refused as full (statusFull), and counted.

// maxDivertTries bounds the neighbours asked to hold one diverted copy.
const maxDivertTries = 4

// pointer is a replica's reference to the copy a neighbour holds for it.
type pointer struct {
	holder id.Handle
	entry  Entry
	stored int64  // the holder's receipt: when
	sig    []byte // and its signature over the receipt of entry
}

// divertOp is a diversion in progress at a full replica.
type divertOp struct {
	key   id.ID
	entry Entry
	enc   []byte
	next  []id.Handle // neighbours not asked yet
	to    id.Handle   // the one asked
	tries int
	timer core.TimerID
	done  func(uint8)
}

// space returns the bytes the store holds and its capacity (0: no limit).
func (p *Past) space() (used, capacity int64) {
	if s, ok := p.store.(SpaceReporter); ok {
		return s.Space()
	}
	return 0, 0
}

// freeFor is the free space for e, counting what a record held at its key
// would give back.
func (p *Past) freeFor(e Entry) int64 {
	used, capacity := p.space()
	free := capacity - used
	if old, ok, err := p.store.Entry(e.Key); err == nil && ok {
		free += int64(old.Size)
	}
	return free
}

func versionStatus(err error) uint8 {
	switch {
	case err == nil:
		return statusOK
	case errors.Is(err, ErrStale):
		return statusStale
	case errors.Is(err, ErrConflict):
		return statusConflict
	}
	return statusRefused
}

func storeStatus(err error) uint8 {
	switch {
	case errors.Is(err, ErrQuota):
		return statusQuota
	case errors.Is(err, ErrCapacity):
		return statusFull
	}
	return versionStatus(err)
}

// place keeps rec (entry e, encoding enc), which check has validated, as
// this node's copy: in its store, or diverted to a neighbour. from is who
// sent it (this node for its own writes). done, if not nil, gets the
// status, at once or when a diversion ends.
func (p *Past) place(from id.Handle, rec *Record, e Entry, enc []byte, done func(uint8)) {
	finish := func(st uint8) {
		p.countRefusal(st)
		if done != nil {
			done(st)
		}
	}
	ptr := p.pointers[e.Key]
	if ptr != nil && ptr.holder.ID == from.ID {
		// The holder of the diverted copy hands it back (it forgot it
		// was holding it for this node, after a restart): place it anew.
		delete(p.pointers, e.Key)
		ptr = nil
	}
	if ptr != nil {
		replace, err := SupersedesEntry(ptr.entry, e)
		if st := versionStatus(err); st != statusOK || !replace {
			finish(st)
			return
		}
	}
	_, capacity := p.space()
	primary := capacity == 0 || p.opts.NoDivert || float64(e.Size) <= p.opts.TPri*float64(p.freeFor(e))
	if primary {
		stored, err := p.store.Put(p.unix(), rec)
		if err == nil {
			if stored {
				p.stats.Stored++
			}
			if ptr != nil {
				p.release(e.Key)
			}
			finish(statusOK)
			return
		}
		if !errors.Is(err, ErrCapacity) || p.opts.NoDivert {
			finish(storeStatus(err))
			return
		}
	} else if old, ok, err := p.store.Entry(e.Key); err == nil && ok {
		replace, err := SupersedesEntry(old, e)
		if st := versionStatus(err); st != statusOK || !replace {
			finish(st)
			return
		}
	}
	p.divert(from, e, enc, finish)
}

// divertCandidates lists the leaf-set neighbours that may hold a diverted
// copy of key: not among its K closest (as this node sees them), the
// present holder first, then by closeness to the key from the one of this
// node's rank among the K, never except.
func (p *Past) divertCandidates(key id.ID, except id.ID) []id.Handle {
	self := p.ep.Self().ID
	all := p.ep.ReplicaSet(key, p.ep.Config().LeafSetSize+1)
	var out []id.Handle
	if ptr := p.pointers[key]; ptr != nil && ptr.holder.ID != except && p.ep.State().Leaves.Contains(ptr.holder.ID) {
		out = append(out, ptr.holder)
	}
	var rest []id.Handle
	rank := 0
	for i, h := range all {
		if i < p.opts.K && h.ID == self {
			rank = i
		}
		if i < p.opts.K || h.ID == self || h.ID == except || len(out) > 0 && h.ID == out[0].ID {
			continue
		}
		rest = append(rest, h)
	}
	// Each replica starts at the candidate of its own rank among the K, so
	// that replicas diverting at once ask different neighbours.
	if len(rest) > 0 {
		r := rank % len(rest)
		out = append(out, rest[r:]...)
		out = append(out, rest[:r]...)
	}
	return out
}

func (p *Past) divert(from id.Handle, e Entry, enc []byte, finish func(uint8)) {
	cands := p.divertCandidates(e.Key, from.ID)
	if len(p.pointers) >= p.opts.MaxPointers || len(cands) == 0 || len(p.diverts) >= p.opts.MaxPending {
		finish(statusFull)
		return
	}
	req := p.newReq()
	op := &divertOp{key: e.Key, entry: e, enc: enc, next: cands, done: finish}
	p.diverts[req] = op
	p.tryDivert(req, op)
}

// tryDivert asks the next candidate, or ends the diversion as full.
func (p *Past) tryDivert(req uint64, op *divertOp) {
	if op.tries > 0 {
		p.ep.Cancel(op.timer)
	}
	if len(op.next) == 0 || op.tries >= maxDivertTries {
		delete(p.diverts, req)
		op.done(statusFull)
		return
	}
	op.to, op.next = op.next[0], op.next[1:]
	op.tries++
	op.timer, _ = p.ep.After(p.opts.Timeout/4, req)
	p.send(op.to, &pmsg{kind: kindDivert, req: req, record: op.enc})
}

// onDivertStored takes a neighbour's answer to a diversion: its receipt
// becomes this node's pointer, and the diversion's done gets ok; a refusal
// moves on to the next neighbour.
func (p *Past) onDivertStored(from id.Handle, m *pmsg, req uint64, op *divertOp) {
	if from.ID != op.to.ID || m.key != op.key {
		return
	}
	if m.status != statusOK {
		p.tryDivert(req, op)
		return
	}
	rc := wireReceipt{node: from, version: m.version, digest: m.digest, stored: m.stored, sig: m.sig}
	if m.version != op.entry.Version || m.digest != op.entry.Digest || !p.ep.Verify(from, receiptBytes(from.ID, op.key, rc), m.sig) {
		p.stats.BadReceipts++
		p.tryDivert(req, op)
		return
	}
	p.ep.Cancel(op.timer)
	delete(p.diverts, req)
	if old := p.pointers[op.key]; old != nil && old.holder.ID != from.ID {
		p.release(op.key)
	}
	p.pointers[op.key] = &pointer{holder: from, entry: op.entry, stored: m.stored, sig: m.sig}
	if _, err := p.store.Delete(op.key); err != nil { // an older copy held here, if any
		p.stats.Refused++
	}
	p.stats.Diverted++
	op.done(statusOK)
}

// onDivert holds a copy a full replica among the leaf-set neighbours
// diverts here, if the record would take at most TDiv of the free space.
func (p *Past) onDivert(from id.Handle, m *pmsg) {
	reply := func(st uint8, e Entry) { p.sendStored(from, m.req, st, e) }
	rec, e, st := p.check(m.record, true)
	switch {
	case st != statusOK:
	case !p.ep.State().Leaves.Contains(from.ID) || !p.isReplica(from.ID, e.Key) || p.isReplica(p.ep.Self().ID, e.Key):
		// Only a replica of the key among the leaf-set neighbours may
		// divert to this node, which is not one.
		st = statusRefused
	case p.holdsOther(e.Key, from.ID):
		// One diverted copy of a key a node (the paper's rule): the
		// replica asks another neighbour.
		st = statusRefused
	case len(p.held) >= p.opts.MaxPointers && !p.isHeld(e.Key):
		// Bounded like the pointers: a neighbour cannot make this node
		// hold diverted copies without end (a store without a capacity
		// never refuses for space).
		st = statusFull
	default:
		if _, capacity := p.space(); capacity > 0 && float64(e.Size) > p.opts.TDiv*float64(p.freeFor(e)) {
			st = statusFull
			break
		}
		stored, err := p.store.Put(p.unix(), rec)
		if st = storeStatus(err); st == statusOK {
			if stored {
				p.stats.Stored++
			}
			p.held[e.Key] = from.ID
		}
	}
	p.countRefusal(st)
	reply(st, e)
}

// isHeld reports whether this node holds a diverted copy of key.
func (p *Past) isHeld(key id.ID) bool { _, ok := p.held[key]; return ok }

// countRefusal counts a store's status other than statusOK: refused, and
// why when it is space or quota.
func (p *Past) countRefusal(st uint8) {
	switch st {
	case statusOK:
	case statusFull:
		p.stats.Full++
		p.stats.Refused++
	case statusQuota:
		p.stats.OverQuota++
		p.stats.Refused++
	default:
		p.stats.Refused++
	}
}

// holdsOther reports whether this node holds a copy of key other than
// one diverted here by from.
func (p *Past) holdsOther(key id.ID, from id.ID) bool {
	if h, ok := p.held[key]; ok {
		return h != from
	}
	_, ok, err := p.store.Entry(key)
	return ok || err != nil
}

// isReplica reports whether x is among key's K closest, as this node's
// leaf set shows.
func (p *Past) isReplica(x id.ID, key id.ID) bool {
	return slices.ContainsFunc(p.ep.ReplicaSet(key, p.opts.K), func(h id.Handle) bool { return h.ID == x })
}

// release drops this node's pointer for key and tells its holder to drop
// the diverted copy.
func (p *Past) release(key id.ID) {
	ptr := p.pointers[key]
	if ptr == nil {
		return
	}
	delete(p.pointers, key)
	p.send(ptr.holder, &pmsg{kind: kindRelease, key: key, version: ptr.entry.Version})
}

// onRelease drops a copy held for from, up to the version it names.
func (p *Past) onRelease(from id.Handle, m *pmsg) {
	if h, ok := p.held[m.key]; !ok || h != from.ID {
		return
	}
	delete(p.held, m.key)
	if p.isReplica(p.ep.Self().ID, m.key) {
		return // a replica of its own now
	}
	if e, ok, err := p.store.Entry(m.key); err == nil && ok && e.Version <= m.version {
		if ok, err := p.store.Delete(m.key); err == nil && ok {
			p.stats.Released++
		}
	}
}

// onOffer pushes a copy held for from to another replica of its key that
// lacks it (anti-entropy through a pointer): only a copy held for from,
// and only to a leaf-set neighbour that is among the key's K closest.
func (p *Past) onOffer(from id.Handle, m *pmsg) {
	if h, ok := p.held[m.key]; !ok || h != from.ID || !p.ep.State().Leaves.Contains(m.origin.ID) || !p.isReplica(m.origin.ID, m.key) {
		p.stats.Refused++
		return
	}
	rec, ok, err := p.store.Get(m.key)
	if err != nil || !ok {
		return
	}
	if enc, err := rec.Marshal(); err == nil {
		p.send(m.origin, &pmsg{kind: kindPush, record: enc})
		p.stats.Pushed++
	}
}

// heldValid reports whether a copy held for holder is still wanted: the
// holder is a leaf-set neighbour and among the key's K closest.
func (p *Past) heldValid(key id.ID, holder id.ID) bool {
	return p.ep.State().Leaves.Contains(holder) && p.isReplica(holder, key)
}

// maintainDiversion checks the pointers and the copies held for others,
// in key order: a pointer whose holder left the leaf set is dropped (the
// summaries then show the copy missing, and anti-entropy brings it back);
// one for a key that left this node's range is released. A copy held for
// a node that is no longer a replica of its key is no longer held for it:
// it is handed off as any record outside this node's range.
func (p *Past) maintainDiversion() {
	now := p.unix()
	for _, key := range slices.SortedFunc(maps.Keys(p.pointers), id.ID.Cmp) {
		ptr := p.pointers[key]
		switch {
		case !p.ep.State().Leaves.Contains(ptr.holder.ID):
			delete(p.pointers, key)
			p.stats.PointersLost++
		case !p.inRange(key) || ptr.entry.Expired(now):
			p.release(key)
		}
	}
	for _, key := range slices.SortedFunc(maps.Keys(p.held), id.ID.Cmp) {
		_, ok, err := p.store.Entry(key)
		if err == nil && (!ok || p.isReplica(p.ep.Self().ID, key) || !p.heldValid(key, p.held[key])) {
			delete(p.held, key)
		}
	}
}

// summary is the store's summary of [lo, hi] with the pointers' entries.
func (p *Past) summary(lo, hi id.ID) (Summary, error) {
	s, err := p.store.Summary(lo, hi)
	for key, ptr := range p.pointers { // order-independent sums
		if InRange(lo, hi, key) {
			s.Add(ptr.entry)
		}
	}
	return s, err
}

// pointerEntries lists the pointers' entries in [lo, hi], in key order.
func (p *Past) pointerEntries(lo, hi id.ID) []Entry {
	var out []Entry
	for key, ptr := range p.pointers {
		if InRange(lo, hi, key) {
			out = append(out, ptr.entry)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Key.Cmp(b.Key) })
	return out
}
