// Package rebalance decides, and applies, the membership changes that bring
// each shard a member leads to the replica set ring.Place gives it.
//
// Its one job is rebalancing a shard's Raft membership. Plan is the decision:
// a pure function of the shard's committed membership, its placed replica
// set, the members as gossip reports them, the confirmations the leader holds
// and the time, returning one Action. It does no I/O, reads no clock and
// starts no goroutine, so the rules can be scripted (testdata/*.txt) and
// checked exhaustively. Eligible is the matching decision of which members
// placement may use.
//
// The rules, in order (Plan returns the first that applies):
//
//  1. remove the replicas of members that are gone for good (left, or
//     failed for at least FailureGrace; a replica whose target no member
//     has counts from when it was first seen so);
//  2. while every current replica is up, add a replica (a never-used
//     replica ID) on each placed member that has none: a new replica raises
//     the quorum before it has caught up, so adding one next to a down
//     replica could leave the shard without a majority;
//  3. once every placed replica has confirmed it runs and has caught up (it
//     answered a linearizable read within ConfirmTTL), remove the replicas
//     the placement no longer names, handing leadership away first when the
//     leader's own replica is one of them; a replica whose member says it
//     does not hold it is removed, to be replaced;
//  4. hand leadership to the placement's preferred leader.
//
// Reconciler applies Plan's actions to a shard through two small
// interfaces: Shards (the local Raft host: membership, add, remove, transfer
// leadership) and Peers (the members holding replicas: confirm, tell of a
// removal). It keeps the leader's bookkeeping between passes (when members
// were first seen failed, confirmations, replicas added but not confirmed),
// reads time only from its injected clock, and publishes an
// events.ShardMovedEvent for each replica it adds or removes. When to run a
// pass is the caller's business.
//
// It may import the standard library, events and internal/logkeys; nothing
// else of Graft (not gossip, ring or shards: the caller translates).
package rebalance
