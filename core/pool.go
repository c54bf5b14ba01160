package core

import (
	"sync"

	"github.com/pastrynet/pastry/routing"
)

// entryPool lends buffers for transient lists of entries (candidates to
// probe, handles to learn). A buffer per node would be kept by each of a
// simulator's hundred thousand nodes; a pool keeps a few, shared by every
// node in the process. It has no effect on what the protocol does.
var entryPool = sync.Pool{New: func() any { return new([]routing.Entry) }}

func getEntries() *[]routing.Entry { b := entryPool.Get().(*[]routing.Entry); *b = (*b)[:0]; return b }

// putEntries returns b; the entries are cleared so that the pool does not
// keep addresses alive.
func putEntries(b *[]routing.Entry) {
	if cap(*b) > 1024 {
		return
	}
	clear(*b)
	entryPool.Put(b)
}
