// Package statesync spreads the cluster's CRDT member state (gossip/crdt)
// between members. Its one job is keeping this member's replica of the
// state: it holds the member's *crdt.State under a lock, writes the
// member's own record and counters into it, publishes them, merges what
// the others publish, and repairs the rest by anti-entropy. What the
// record holds and what reads it (ClusterInfo, routing, metrics) are the
// member's; how bytes reach other members is injected (Config.Broadcast,
// Config.Exchange, Config.Peers), so tests run any number of Syncers in
// one process.
//
// # Two channels
//
//   - Deltas by gossip: at most once per PublishInterval (default 1 s), and
//     only when the member's own entry changed since it last published,
//     the Syncer encodes State.Subset(self) and broadcasts it as a Serf
//     user event (EventName) if name plus payload fit the user-event limit
//     (Config.MaxBroadcast, gossip.MaxUserEventSize: 512 bytes). Load and
//     counters change constantly, so the interval is what bounds the
//     traffic. A larger entry (many node types, metadata, shard lists; a
//     record may be 64 KiB) is not broadcast: anti-entropy carries it.
//     Whether to publish now is the pure function shouldPublish.
//   - Push-pull anti-entropy: every ExchangeInterval (default 1 s) the
//     Syncer picks one random alive peer (one time in four a member gossip
//     sees failed, with a 500 ms bound: when a partition heals the two
//     sides' states meet before gossip sees them alive again) and sends it
//     a request holding
//     its State.Digest and its own entry (push); the peer merges the entry
//     and answers with DeltaFor(digest) (pull), at most MaxReplyBytes
//     (the rest comes on the next exchanges). This repairs everything the
//     broadcasts miss: large records, lost events, partitions, restarts.
//     The first exchange runs at once when the Syncer starts.
//
// The exchange travels over the member RPC (internal/rpc, method
// wire.MethodState), not over memberlist: Serf owns memberlist's Delegate
// (LocalState/MergeRemoteState carry Serf's own push-pull), so Graft
// cannot add state to memberlist's push-pull without replacing Serf's;
// Serf query replies go over UDP and are bounded by
// gossip.MaxQueryResponseSize (900 bytes), far below a 64 KiB record. The
// member RPC is already authenticated (cluster policy, mTLS with the
// caller's certificate bound to its node ID, members of other clusters
// refused) and size-bounded (rpc.Config.MaxMessageBytes).
//
// # Input from peers
//
// Every byte from a peer (user event payloads, exchange requests and
// replies) is decoded with the bounded crdt.Decode and crdt.DecodeDigest
// (DecodeRequest for a request). A payload that does not decode, or whose
// merge would exceed the state's bounds, is dropped and counted
// (Stats.Dropped); the first from each peer is logged (at most
// maxLoggedPeers peers are remembered), never panics, and never grows the
// state beyond crdt.MaxMembers and crdt.MaxStateSize. A push whose entry
// is not the sender's is dropped too.
//
// # The member's own entry
//
// The member writes its record (Config.Local, read at each publish tick
// and on Refresh) and counts its own events (Count). Its Incarnation is
// the caller's, persisted and incremented on every start; counters from
// the previous run come in Config.Counters. Counts made before the Syncer
// has merged the cluster's view of its own entry (the first successful
// exchange, or after SyncTimeout, or at once without Exchange or Peers: a
// lone member) are
// held aside and added afterwards, so a restarted member whose persisted
// counters lag the cluster's view (a crash between saves) continues from
// the cluster's figure: per-member counters merge by maximum, so counting
// on a lower base first would lose the difference. Counters and the
// incarnation are handed to Config.Persist when they changed, at most once
// per PersistInterval (default 10 s: each save is an fsync), at once when
// the incarnation changed, and at Stop; a crash loses the counts since the
// last save that no peer had merged (peers give back what they hold). A member that finds itself tombstoned,
// or its entry at a higher incarnation than its own (a lost incarnation
// file), restarts its record at a higher incarnation (SWIM's refutation)
// and persists it.
//
// # Tombstones
//
// The caller reports members that left or were reaped by gossip (Left);
// the Syncer tombstones them (crdt.State.Leave) and, at every exchange
// tick, collects tombstones older than TombstoneHorizon (default 24 h,
// Serf's own tombstone timeout): the horizon must exceed the longest
// partition the cluster should heal from plus clock skew (see
// crdt.State.Collect).
//
// # Lifecycle
//
// New builds a Syncer without goroutines; Start runs its one loop (publish
// ticks, exchange ticks) until Stop, which is safe to call more than once
// and persists a last time. Every method is safe for concurrent use.
package statesync
