// Package shards hosts replicated key-value state machines on Dragonboat.
//
// A [Host] owns one Dragonboat NodeHost per member (raft logs under
// <DataDir>/raft) and one Pebble database (under <DataDir>/state) shared by
// every shard replica on the member. Each shard is a Raft group whose on-disk
// state machine stores its keys in that Pebble database under an 8-byte
// big-endian shard-ID prefix. What a shard does with its keys is decided by a
// pluggable [Logic]; this package knows nothing about the application.
//
// Proposals are group-committed: concurrent [Host.Propose] calls for the same
// shard are packed into one Raft entry, applied in one Pebble batch, and their
// individual results are routed back to each caller.
//
// Usage:
//
//	h, err := shards.NewHost(shards.Config{
//		RaftAddress: "127.0.0.1:7001",
//		DataDir:     "/var/lib/graft/n1",
//		NewLogic:    func(shardID uint64) shards.Logic { return newMyLogic() },
//	})
//	if err != nil { ... }
//	defer h.Close()
//	err = h.StartShard(1, 1, map[uint64]string{1: "127.0.0.1:7001"}, false)
//	res, err := h.Propose(ctx, 1, []byte("cmd"))
//	val, err := h.Read(ctx, 1, []byte("query"))
//
// The one process-global is Dragonboat's logger factory: Dragonboat allows
// it to be installed once per process, so this package installs an adapter
// once and points it at the logger of the most recently created Host.
package shards
