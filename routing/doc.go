// Package routing holds a Pastry node's routing state, in the paper's terms:
// the [RoutingTable] (128/b rows of 2^b columns, chosen by proximity), the
// [LeafSet] (the L/2 numerically closest nodes on each side) and the
// [NeighborhoodSet] (the M proximity-closest nodes), and the routing
// procedure over them, [State.NextHop].
//
// # Concurrency
//
// One goroutine writes (the protocol core, which is single-threaded); any
// number read, without locks. Writers never modify published memory: a
// change to routing-table row r copies that row (2^b entries) and publishes
// it through the row's own atomic.Pointer; a leaf-set or neighbourhood-set
// change builds a new snapshot (at most L or M entries) and publishes it.
// Readers load a pointer and see one consistent row or set. A reader that
// combines the leaf set with a row may see them from different moments,
// which routing tolerates: every published entry was valid when written.
//
// The mechanism was chosen by BenchmarkNextHopMechanisms in
// mechanism_bench_test.go, which routes over the same table guarded three
// ways (per-row atomic pointers, one atomic pointer to a whole-table copy,
// sync.RWMutex) with and without a concurrent writer; the figures are
// recorded in docs/decisions/0001-lock-free-routing-rows.md.
//
// A state whose readers all run on the writer's goroutine, between the
// writer's inputs (State.Exclusive: the simulator's), reuses the memory of
// the rows and snapshots it superseded once the input is over
// (State.Quiesce); see recycle.go. The daemon's state never does.
//
// Writer methods (Consider, Remove, Set) must not be called concurrently
// with each other. Slices returned by readers are shared and immutable:
// callers must not modify them.
package routing
