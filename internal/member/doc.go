// Package member is one running Graft member: it wires storage
// (shards.Host), the step engine (internal/engine), the cluster (gossip,
// member RPC, bootstrap, admission, rebalancing) and the event bus, starts
// them in order and stops them in reverse, keeping the first error. The
// root package's Manager is its facade: it validates what users hand in,
// resolves the configuration (member.Config) and converts answers to the
// public types. member imports the packages below it (shards, gossip, ring,
// events, executor, internal/...), never the root package.
package member
