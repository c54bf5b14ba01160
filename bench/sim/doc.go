// Package sim is the discrete-event simulator that reproduces the Pastry
// papers' tables at up to 100,000 nodes (run as `pastry sim`).
//
// It drives the real protocol core through simnet (one event heap, one
// virtual clock, one seed): no protocol step is implemented here. This
// package adds what an experiment needs around the core: network models
// (the Pastry paper's Euclidean plane, FreePastry's sphere, a transit-stub
// model with clustered hosts), a spatial index so that each new node joins
// through a node near it (as the paper assumes), workloads (sequential
// joins, lookups, a mass failure with and without repair, churn with
// Poisson arrivals and exponential or Weibull sessions), and the papers'
// figures: delivered and correct fractions, hop statistics, relative delay
// penalty, join and repair cost, control traffic, routing-table fill, and
// the engine's own cost.
//
// Determinism: everything random draws from the network's one generator, in
// event order; Result fields other than wall time, event rate and heap are
// a pure function of Config.
package sim
