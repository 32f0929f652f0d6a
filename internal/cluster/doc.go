// Package cluster is what a clustered member runs besides its shards and
// engine: the gossip node and the member RPC server and client (Open,
// Start, Close, with the hand-off of shard leadership before leaving), the
// bootstrap and formation loop that joins a running cluster or founds one,
// the layout file (DataDir/cluster.json) that records this member's
// replicas, admission (who may call the member RPC, whose Raft traffic is
// accepted, members of other clusters refused), the gossip tags, the
// coordinator and membership events, forwarding lifecycle events to the
// member that started a workflow, the replica services a shard's leader
// calls (start, drop, membership), the view of the cluster that placement
// and routing use, and the rebalancing loop that applies
// internal/rebalance's decisions. It tells its member of members that left
// or were reaped (Config.OnMemberGone) and lists peers and their RPC
// addresses (Peers, AlivePeers, RPCAddrOf) for the cluster state, which the
// member keeps (internal/statesync); node types travel there, not in tags.
//
// A Cluster reaches its member only through the Local role (its shards,
// its engine's leadership, its readiness, the caller's TLS identity). It
// imports gossip, ring, shards, events and internal packages below the
// member (rebalance, formation, rpc, wire, wf, errs, backoff, logkeys),
// never internal/member or the root.
package cluster
