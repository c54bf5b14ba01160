// Package report runs the Pastry paper suite on the simulator and writes a
// self-contained report of our figures beside the papers' (run as
// `pastry sim report --out DIR`).
//
// The suite is a list of bench/sim runs, all with one seed:
//
//   - hops runs at N in {1k, 2k, 5k, 10k, 20k, 50k, 100k} up to --max-nodes,
//     with 2 x N lookups (at most 200,000, the paper's count): mean, p99
//     and max hops against log16 N, the hop distribution at the largest N,
//     and relative delay penalty;
//   - the mass failure of the Pastry paper: 10% of 5,000 nodes crash at
//     once; hops before, right after and after repair, and repair cost;
//   - MSPastry's churn: 10,000 nodes, 30-minute median sessions, one hour,
//     1 lookup per node per minute; lost lookups and control traffic.
//
// Output, in the --out directory: results.json (every run's raw
// sim.Result, rewritten after each run so an interrupted suite keeps what
// finished), report.md (a table per experiment, the command line, seed,
// date and the engine's cost per run) and SVG figures drawn with
// gonum/plot, each with the papers' published points beside ours.
//
// The published values live in paper.go as named constants with their
// sources; the report shows only published points and interpolates
// nothing. A dash in a paper column means the paper gives no number.
package report
