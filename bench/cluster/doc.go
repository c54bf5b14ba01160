// Package cluster is the bench harness's controller over real processes:
// it drives `pastry node` processes through their HTTP API only (health,
// status, /v1/route, /v1/records, /metrics), so the same code measures
// nodes it started itself and nodes someone else runs on other machines.
//
// In local mode (Local) it builds the network first: a bridge and one
// network namespace per node, joined to it by a veth pair, each node on
// its own address of a /16 (the address plan is Plan), bandwidth shaped
// with tbf or htb on the veths, link latency injected into the nodes'
// transports (pastry node --inject-delay, --inject-latency) or, where the
// kernel has it, by netem. It starts the nodes (ip netns exec), joins
// them through the first, waits until every leaf set is exact, runs the
// workload, kills nodes (SIGKILL) or partitions the namespaces (blackhole
// routes) and measures when lookups are correct again, and tears it all
// down on return, error or signal: processes, namespaces, links, files.
// Every name it creates starts with "pbc" and the run's id, so leftovers
// of a run that was itself killed are found and removed by Cleanup.
//
// In targets mode (Targets) it is given the nodes' API addresses and
// tokens (a targets file) and runs the same workload, without faults.
//
// A lookup is correct when the root it ends at is the live node whose id
// is numerically closest to the key (Truth), computed from the node ids
// the controller knows.
//
// Why it is built this way: docs/decisions/0073 and 0074; how to run it:
// docs/harness.md.
package cluster
