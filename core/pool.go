package core

import (
	"sync"

	"github.com/pastrynet/pastry/id"
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

// probePool recycles probe records (a probe was a third of the objects a
// simulated node allocated), and probeMaps the maps of nodes whose last
// probe ended (dropProbe). A record or map is reset before it is put back,
// so which one a probe gets has no effect on what the protocol does.
var (
	probePool = sync.Pool{New: func() any { return new(probe) }}
	probeMaps sync.Pool // *probeMapPair
)

type probeMapPair struct {
	probes map[id.ID]*probe
	seq    map[uint64]id.ID
}

func getProbeMaps() (map[id.ID]*probe, map[uint64]id.ID) {
	if p, _ := probeMaps.Get().(*probeMapPair); p != nil {
		a, b := p.probes, p.seq
		*p = probeMapPair{}
		probePairs.Put(p)
		return a, b
	}
	return map[id.ID]*probe{}, map[uint64]id.ID{}
}

// probePairs recycles the pairs' own boxes.
var probePairs = sync.Pool{New: func() any { return new(probeMapPair) }}

// putProbeMaps gives back a node's emptied probe maps.
func putProbeMaps(a map[id.ID]*probe, b map[uint64]id.ID) {
	if len(a) > 0 {
		return
	}
	clear(b)
	p := probePairs.Get().(*probeMapPair)
	p.probes, p.seq = a, b
	probeMaps.Put(p)
}

// slotProbeMaps recycles the emptied slotProbes maps of nodes (dropProbe).
var slotProbeMaps sync.Pool // map[int]id.ID, empty

func getSlotProbes() map[int]id.ID {
	if m, _ := slotProbeMaps.Get().(map[int]id.ID); m != nil {
		return m
	}
	return map[int]id.ID{}
}
