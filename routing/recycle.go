package routing

import "sync"

// Recycling of superseded snapshots.
//
// Every change to a row, the leaf set or the neighbourhood set publishes a
// new copy (see the package's Concurrency notes), and the old one becomes
// garbage once no reader holds it. At simulator scale these copies were
// half of all the bytes allocated, and the collector's work with them. A
// driver whose readers all run on the writer's goroutine, between the
// writer's inputs, and keep no slice a reader returned past the end of the
// input (the simulator: one goroutine steps every node, and reads a node's
// state only between inputs), can say so with State.Exclusive; the state
// then keeps the copies it supersedes during an input and, at
// State.Quiesce (the end of the input), hands them to process-wide free
// lists for the next publication of any node. Which memory a snapshot is
// built in has no effect on what it holds: the routing state, and so the
// protocol, are the same byte for byte with and without it. A state that
// is not exclusive (the daemon's, read by other goroutines at any time)
// never reuses a snapshot.

// recycler is a state's list of snapshots superseded since the last
// Quiesce. The lists are lent from retiredPool while non-empty, so that a
// node between inputs holds none.
type recycler struct {
	on bool
	r  *retired
}

type retired struct {
	nbs   []*[]Entry
	rows  []*slot
	snaps []*leafSnap
}

var (
	retiredPool sync.Pool // *retired
	nbPool      sync.Pool // *[]Entry, a neighbourhood set's snapshot
	snapPool    sync.Pool // *leafSnap
	// rowPools[b] holds rows of 2^b slots (by their first slot).
	rowPools [9]sync.Pool
)

func (c *recycler) list() *retired {
	if c.r == nil {
		if r, _ := retiredPool.Get().(*retired); r != nil {
			c.r = r
		} else {
			c.r = new(retired)
		}
	}
	return c.r
}

// retireNb keeps a superseded neighbourhood snapshot for reuse.
func (c *recycler) retireNb(p *[]Entry) {
	if c != nil && c.on && cap(*p) > 0 {
		c.list().nbs = append(c.list().nbs, p)
	}
}

// retireRow keeps a superseded row of a table with digits of b bits.
func (c *recycler) retireRow(p *slot) {
	if c != nil && c.on && p != nil {
		c.list().rows = append(c.list().rows, p)
	}
}

// retireSnap keeps a superseded leaf-set snapshot.
func (c *recycler) retireSnap(p *leafSnap) {
	if c != nil && c.on && p != nil {
		c.list().snaps = append(c.list().snaps, p)
	}
}

// quiesce hands the superseded snapshots to the free lists; the rows are
// of tables with digits of b bits.
func (c *recycler) quiesce(b int) {
	r := c.r
	if r == nil {
		return
	}
	c.r = nil
	for i, p := range r.nbs {
		clear((*p)[:cap(*p)]) // no addresses kept alive from the pool
		*p = (*p)[:0]
		nbPool.Put(p)
		r.nbs[i] = nil
	}
	for i, p := range r.rows {
		rowPools[b].Put(p)
		r.rows[i] = nil
	}
	for i, p := range r.snaps {
		p.reset()
		snapPool.Put(p)
		r.snaps[i] = nil
	}
	r.nbs, r.rows, r.snaps = r.nbs[:0], r.rows[:0], r.snaps[:0]
	retiredPool.Put(r)
}

// newNb returns an empty neighbourhood snapshot with room for m entries:
// a recycled one when this state recycles and the pool has one.
func (c *recycler) newNb(m int) *[]Entry {
	if c != nil && c.on {
		if p, _ := nbPool.Get().(*[]Entry); p != nil && cap(*p) >= m {
			return p
		}
		out := make([]Entry, 0, m)
		return &out
	}
	return nil
}

// unused returns a snapshot from newNb that was never published.
func (c *recycler) unused(p *[]Entry) {
	if p != nil {
		clear((*p)[:cap(*p)])
		*p = (*p)[:0]
		nbPool.Put(p)
	}
}

// newRow returns a row of 1<<b slots, all holes.
func (c *recycler) newRow(b int) []slot {
	if c != nil && c.on {
		if p, _ := rowPools[b].Get().(*slot); p != nil {
			row := unsafeRow(p, 1<<b)
			clear(row)
			return row
		}
	}
	return make([]slot, 1<<b)
}

// newSnap returns an empty leaf-set snapshot, recycled when it can be.
func (c *recycler) newSnap() *leafSnap {
	if c != nil && c.on {
		if p, _ := snapPool.Get().(*leafSnap); p != nil {
			return p
		}
	}
	return new(leafSnap)
}

// Exclusive declares that every reader of this state runs on the writer's
// goroutine, between the writer's inputs, and keeps no slice a reader
// returned after the next Quiesce: superseded snapshots are then reused
// (see Recycling). Call it before the state is read; a state read by
// other goroutines must never be exclusive.
func (s *State) Exclusive() { s.rc.on = true }

// Quiesce marks the end of an input on an exclusive state: the snapshots
// superseded since the last Quiesce go to the free lists, to be reused.
// A no-op unless the state is exclusive. Writer only.
func (s *State) Quiesce() { s.rc.quiesce(s.b) }
