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
//		NodeID:      "n1",
//		RaftAddress: "127.0.0.1:7001",
//		DataDir:     "/var/lib/graft/n1",
//		NewLogic:    func(shardID uint64) shards.Logic { return newMyLogic() },
//		Directory:   peers, // NodeHost ID -> Raft address of the other members
//	})
//	if err != nil { ... }
//	defer h.Close()
//	err = h.StartShard(1, 1, map[uint64]string{1: h.NodeHostID()}, false)
//	res, err := h.Propose(ctx, 1, []byte("cmd"))
//	val, err := h.Read(ctx, 1, []byte("query"))
//
// Replicas are named by their member's NodeHost ID ([Host.NodeHostID],
// [NodeHostIDOf] for a new data directory), which the Host's node registry
// resolves to a Raft address through [Config.Directory]; see registry.go
// for the registry's rules.
//
// The one process-global is Dragonboat's logger factory: Dragonboat allows
// it to be installed once per process, so this package installs an adapter
// once and points it at the logger of the most recently created Host.
package shards
