// Package member is one running Graft member. It wires storage
// (shards.Host), the step engine (internal/engine), the cluster
// (internal/cluster) and the event bus, starts them in order and stops
// them in reverse, keeping the first error. A lone member and a cluster
// member are two implementations of one network interface (lone and
// *cluster.Cluster), so the member never tests whether it has a cluster.
// Calls about a shard go through internal/route; the member RPC's method
// table (rpcmethods.go) binds each method's decoder (internal/wire) to its
// handler, whichever package serves it. The member's entry in the
// cluster's CRDT state (state.go: its record, its counters counted where
// each change is proposed, its incarnation and metadata persisted in
// DataDir/member.json) is kept and spread by internal/statesync, which the
// member starts after its cluster (or its shards, alone) and stops after
// its engine; info.go builds ClusterInfo from it, and remote steps go to
// the least-loaded member that registered their node type. The operator
// methods of the member RPC (internal/operator, operator.go) are served by
// every member, a lone one on its own port, with Config.Operator, to the
// callers the operator guard admits.
//
// The root package's Manager is its facade: it validates what users hand
// in, resolves the configuration (Config) and converts answers to the
// public types. member imports the packages below it (shards, gossip,
// ring, events, executor and the other internal packages), never the root.
package member
