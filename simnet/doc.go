// Package simnet is a deterministic, single-threaded network of core.Nodes:
// an event heap on a virtual clock, link delays from a Topology, seeded
// message loss, partitions and crashes. One seed drives everything, so a run
// is reproducible event for event.
//
// It is the driver behind the core's scenario tests and properties and the
// engine under the discrete-event simulator (bench/sim). It drives the real
// core through the same inputs the libp2p runtime uses (Step, Tick, Ready)
// and implements no protocol step itself.
package simnet
