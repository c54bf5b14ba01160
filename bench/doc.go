// Package bench holds the project's performance measurements that need
// more than one package: the 64-node overlay latency benchmark against the
// libp2p per-hop floor (overlay_test.go), an overlay under churn and load
// for its footprint and correctness over time (soak_test.go), and the
// simulator (bench/sim).
package bench
