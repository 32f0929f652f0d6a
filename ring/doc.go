// Package ring owns placement: which shard a workflow ID belongs to, and
// (in a cluster) which members hold each shard's replicas.
//
// A workflow's shard depends only on its ID and the cluster's shard count,
// which is fixed when the cluster is created, so every member computes the
// same shard for the same ID without coordination (ShardFor).
//
// # Placement
//
// Place maps shards 1..ShardCount onto ordered replica sets of
// ReplicationFactor members (default 3, capped at the member count); the
// first replica of a set is the shard's preferred leader. Place is a pure,
// deterministic function of the Config and the set of members: no clock, no
// randomness, no goroutines, and the members are sorted first, so every
// member that sees the same membership computes the same Placement. Diff
// turns two placements into the per-shard replica Moves that rebalancing
// performs (add the new replicas, then remove the old).
//
// Replica sets come from github.com/buraksezer/consistent with bounded
// loads. Everything that decides the ring is a fixed constant of the
// protocol: the hasher (FNV-1a with a MurmurHash3 finaliser), 64 virtual
// nodes per member, and the partition layout. The ring has one partition
// per shard, shard s being partition s-1, so the library's bounded load
// applies to shards directly; only when there are fewer shards than members
// (counting weight units) is PartitionCount the smallest multiple k of
// ShardCount that reaches the member count, shard s being partition
// (s-1)·k. Shards are not located by hashing a key such as "shard-<n>":
// several shards would then share a partition, hence a replica set, and the
// bounded load would not see them. A shard's replica set is the first
// ReplicationFactor members of the library's GetClosestN order for its
// partition that are under their replica bound (ceil(Load × fair share));
// leaderships are then balanced over each set's members, so that with equal
// weights every member leads ⌊shards/members⌋ or ⌈shards/members⌉ shards
// whenever the replica sets allow it.
//
// Stability: the library reassigns few partitions when membership changes,
// so adding a member moves a minority of replicas (about a quarter of them
// going from 3 to 4 members at RF 3, fewer with more members) and removing
// one changes almost only the shards it held. A shard whose partition owner
// changes gets a new replica set in full (GetClosestN follows the owner),
// so a change moves up to about twice the theoretical minimum of replicas.
//
// Limits: GetClosestN orders the members after a partition's owner by the
// hash of their names, the same cyclic order for every shard, so replica
// sets are runs of consecutive members in that order and a member's replica
// count follows its neighbours' ownership: 64 shards at RF 3 on 6 members
// gives 26 to 38 replicas per member (the bound is 40). Leadership balance
// needs a few shards per member: 1024 shards on 200 members leaves some
// members able to lead only one to four shards against a share of five.
// Place costs about 45 ms for 1024 shards on 50 members and grows with the
// square of the member count (the library sorts its ring on every member
// it adds), so compute it once per membership change.
//
// Changing any of these constants, or the algorithm, moves shards between
// members running different versions; treat them like a wire format.
package ring
