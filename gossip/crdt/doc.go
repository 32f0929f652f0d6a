// Package crdt holds the cluster's shared member state as state-based
// CRDTs. Its one job is the data: what each member publishes about itself,
// how two replicas of it merge, and how it is encoded for the wire. It
// starts no goroutines, does no I/O and reads no clock (times come from the
// caller); spreading the state (gossip broadcasts, push-pull anti-entropy)
// is the caller's. It imports only the standard library, nothing from
// graft.
//
// # Types
//
//   - Version: (Incarnation, Counter), ordered lexicographically. A member
//     increments Incarnation on every restart (the caller persists it) and
//     Counter on every local update, so no two updates of a correct member
//     share a version and no wall clock breaks ties.
//   - MemberRecord: what a member publishes (node types, worker capacity,
//     load, shards held and led, software version, start time, disk-full
//     flag, user metadata), bounded, with one canonical binary encoding.
//   - Record: a member's last-writer-wins record (ID, Version, MemberRecord).
//   - GCounter, PNCounter: counters keyed by member, merged by per-member
//     maximum. Counters is one member's named set (WorkflowsStarted ...
//     StepErrors); across a State they form NumCounters G-counters keyed by
//     member, and State.Total sums one of them.
//   - Tombstone: a member's leaving. Membership is an observed-remove set of
//     member IDs whose add tags are (member, incarnation): any record of an
//     incarnation adds its tag, and a remove (Leave) records the tags its
//     replica has observed. A member's records are totally ordered and a
//     replica holds the join of all it has seen, so the set is stored
//     compressed: per member the highest added tag (the record's
//     Version.Incarnation) and the highest removed one
//     (Tombstone.Observed.Incarnation); a member is present iff its highest
//     added tag was not removed. So a tombstone wins over every record of
//     the incarnations it covers, including updates that arrive (or are
//     made) after it by a member that does not yet know it was removed, and
//     loses to a record of a higher incarnation, which brings the member
//     back (a rejoin, or a live member refuting a removal, as in SWIM).
//     The tags are incarnations rather than full versions so that a remove
//     is not undone by a concurrent update of the same incarnation. The
//     random cluster tests check this against an explicit-tag model.
//   - State: member ID → (Record, Counters, Tombstone); the whole replicated
//     state, with local updates (SetRecord, Add, Leave), Merge, anti-entropy
//     (Digest, DeltaFor, Subset), collection (Collect) and the wire encoding
//     (Encode, Decode, Digest.Encode, DecodeDigest).
//
// # Merge laws
//
// State.Merge, GCounter.Merge and PNCounter.Merge are commutative,
// associative and idempotent: replicas that received the same updates, in
// any order, any grouping and any number of times, hold equal states, and
// equal states encode to equal bytes. Within a State, per member: the record
// with the higher Version wins; equal versions with different contents
// (which a correct member never produces) keep the record whose encoding
// has the greater SHA-256 prefix (then the greater bytes), so the tie is
// resolved the same way everywhere; counters take
// the maximum of each, so they never decrease; the higher tombstone wins and
// is dropped once the record is from a later incarnation. A member that
// restarts should keep its counters (persisted by the caller) or merge the
// cluster's view of its own entry before counting again: its new counts add
// to what it holds.
//
// Anti-entropy: a replica sends Digest() to a peer, which answers
// DeltaFor(digest); merging that delta gives the same result as merging the
// peer's whole state. A member's own update travels as Subset(self).
//
// # Bounds
//
// State arrives from peers, possibly hostile, so everything is bounded:
//
//   - a record: MaxRecordSize (64 KiB) encoded; MaxNodeTypes names of at
//     most MaxNodeTypeLen bytes; MaxShards shard IDs in each list;
//     MaxMetadataKeys entries with keys of MaxMetadataKeyLen and values of
//     MaxMetadataValueLen bytes; MaxSoftwareVersionLen; names non-empty
//     UTF-8;
//   - a member ID: MaxMemberIDLen bytes (gossip's MaxNodeIDLen);
//   - a state: MaxMembers members (tombstoned ones included) and
//     MaxStateSize bytes.
//
// Decode and DecodeDigest never panic, accept only canonical encodings and
// allocate at most 16 times their input's length plus a few KiB; every error
// names what is wrong and wraps ErrInvalid or ErrTooLarge. Local updates
// refuse out-of-bounds records with an error naming the field; Merge refuses
// (changing nothing) a result beyond MaxMembers or MaxStateSize.
//
// # Tombstone collection
//
// Collect(now, horizon) removes members whose tombstone is older than
// horizon. It is a time horizon, with this tradeoff: a replica that held the
// member's record but never received the tombstone before the others
// collected it brings the record back (as a member that is absent from
// gossip). The horizon must exceed the longest partition the cluster should
// heal from plus clock skew; Serf forgets left members after 24 hours, a
// sensible default. A shorter horizon bounds the state sooner; a longer one
// tolerates longer partitions.
package crdt
