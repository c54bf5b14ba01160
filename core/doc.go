// Package core is the Pastry protocol as a deterministic state machine, in
// the style of etcd's raft: no goroutines, no channels, no wall clock, no
// global randomness, no I/O.
//
// A driver (the libp2p runtime, the discrete-event simulator, or the test
// network in simnet) owns a [Machine] and feeds it inputs, each with the
// current time:
//
//   - Step(now, msg): a message arrived from another node;
//   - Tick(now): the time the node asked for in Ready.WakeAt has come;
//   - Bootstrap, Join, Route, Leave: local requests.
//
// After every input the driver calls Ready and carries out what it says:
// send Ready.Messages (in order), and call Tick again at Ready.WakeAt.
// Randomness and proximity come from the [Environment]. The same inputs in
// the same order produce the same outputs, which is what lets the simulator
// reproduce a 100,000-node run from a seed and the daemon share every line
// of protocol code with it.
//
// Applications implement [Application] (the Common API of Dabek et al.:
// Deliver, Forward, Update) and are registered under an [AppID]. Forward is
// called synchronously at each hop; Deliver and Update are queued while the
// node changes state and dispatched, in order, before the input returns.
// Upcalls may call Route.
//
// The protocol (Rowstron & Druschel 2001; MSPastry, Castro et al. 2004):
//
//   - join: a new node routes a join message for its own id through a known
//     node; every node on the path sends it routing-table rows, the root
//     sends its leaf set; the new node announces itself to every node in its
//     state (join.go), and holds the routed messages it is the root of
//     until its immediate neighbours have acknowledged it (MSPastry's
//     activation, activate.go): Status says StatusJoining until then;
//   - routing with per-hop acknowledgement: a hop not acknowledged in time
//     is suspected and the message is re-routed around it (route.go);
//   - leaf set maintenance: heartbeats to both immediate neighbours carry
//     the leaf set; silence leads to probes, probes to a failure decision;
//     a failed leaf is replaced from the farthest live leaf's leaf set;
//     second-hand leaf candidates are probed before admission (maintain.go);
//   - routing table maintenance: holes refilled from the same row, then
//     later rows; periodic row exchange improves proximity (maintain.go).
package core
