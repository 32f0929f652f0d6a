package shards

import (
	"log/slog"
	"path"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// maxBatchMessages bounds the messages of one inbound batch. Dragonboat's
// sender drains a send queue of 2,048 messages per batch.
const maxBatchMessages = 1 << 16

// remoteTypes are the message types a Dragonboat peer sends over the
// network. Local types (ticks, Unreachable, SnapshotStatus, ...) and
// InstallSnapshot (which arrives as snapshot chunks, never in a batch) are
// refused.
var remoteTypes = [...]bool{
	pb.NoOP:               true,
	pb.Propose:            true,
	pb.Replicate:          true,
	pb.ReplicateResp:      true,
	pb.RequestVote:        true,
	pb.RequestVoteResp:    true,
	pb.Heartbeat:          true,
	pb.HeartbeatResp:      true,
	pb.ReadIndex:          true,
	pb.ReadIndexResp:      true,
	pb.Quiesce:            true,
	pb.SnapshotReceived:   true,
	pb.LeaderTransfer:     true,
	pb.TimeoutNow:         true,
	pb.RateLimit:          true,
	pb.RequestPreVote:     true,
	pb.RequestPreVoteResp: true,
}

func isRemoteType(t pb.MessageType) bool {
	return t >= 0 && int(t) < len(remoteTypes) && remoteTypes[t]
}

// inbound validates every message batch and snapshot chunk before
// Dragonboat sees it, whatever the transport. Nothing it lets through
// reaches a Dragonboat code path that panics on malformed input (missing
// To, unknown shard, conflicting or invalid address, local message types).
// It is safe for concurrent use.
type inbound struct {
	log   *slog.Logger
	reg   *nodeRegistry
	stats *transportStats
	// lastIndex, if set, returns the last index of the local replica's
	// saved Raft log, and whether it is known.
	lastIndex func(shardID uint64) (uint64, bool)
}

// wrap returns a factory whose transports hand inbound traffic to Dragonboat
// through in.
func (in *inbound) wrap(f config.TransportFactory) config.TransportFactory {
	return &validatingFactory{inner: f, in: in}
}

// validatingFactory wraps a transport factory's handlers with an inbound.
type validatingFactory struct {
	inner config.TransportFactory
	in    *inbound
}

var _ config.TransportFactory = (*validatingFactory)(nil)

// Create creates the inner transport with validating handlers.
func (f *validatingFactory) Create(cfg config.NodeHostConfig, h raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	return f.inner.Create(cfg, f.in.messageHandler(h), f.in.chunkHandler(ch))
}

// Validate reports whether addr is a valid address for the inner transport.
func (f *validatingFactory) Validate(addr string) bool {
	return validAddress(addr) && f.inner.Validate(addr)
}

// messageHandler returns h behind the batch filter.
func (in *inbound) messageHandler(h raftio.MessageHandler) raftio.MessageHandler {
	return func(b pb.MessageBatch) {
		if out, ok := in.filterBatch(b); ok {
			h(out)
		}
	}
}

// chunkHandler returns h behind the chunk filter. A refused chunk ends its
// snapshot connection, as a chunk Dragonboat rejects does.
func (in *inbound) chunkHandler(h raftio.ChunkHandler) raftio.ChunkHandler {
	return func(c pb.Chunk) bool {
		if reason := in.checkChunk(c); reason != "" {
			in.stats.droppedChunks.Add(1)
			in.stats.note(in.log, "chunk from replica", reason, attrShard, c.ShardID, "from", c.From)
			return false
		}
		return h(c)
	}
}

// filterBatch returns the part of b Dragonboat may see. A malformed batch,
// or one whose SourceAddress contradicts the recorded address of a sender,
// is dropped whole; messages for shards this member does not run, or for
// another replica than the one it runs, are dropped alone.
func (in *inbound) filterBatch(b pb.MessageBatch) (pb.MessageBatch, bool) {
	src := b.SourceAddress
	if reason := in.checkBatch(b); reason != "" {
		in.dropBatch(src, reason)
		return pb.MessageBatch{}, false
	}
	for _, m := range b.Requests {
		if ok, recorded := in.reg.consistent(m.ShardID, m.From, src); !ok {
			in.stats.conflicts.Add(1)
			in.dropBatch(src, "source address contradicts the recorded address of its sender",
				attrShard, m.ShardID, attrReplica, m.From, "recorded", recorded)
			return pb.MessageBatch{}, false
		}
	}
	kept := b.Requests[:0:0]
	for i, m := range b.Requests {
		local, ok := in.reg.localReplica(m.ShardID)
		reason := ""
		switch {
		case !ok:
			reason = "message for a shard not run here"
		case m.To != local:
			reason = "message for another replica"
		case m.Type == pb.Heartbeat && in.lastIndex != nil && m.Commit > 0:
			// A leader's heartbeat commits at most what this replica
			// acknowledged, i.e. saved; a larger index would stop the
			// replica (Dragonboat panics in commitTo).
			if last, known := in.lastIndex(m.ShardID); known && m.Commit > last {
				reason = "heartbeat commits past this replica's log"
			}
		}
		if reason != "" {
			in.stats.droppedMessages.Add(1)
			in.stats.note(in.log, src, reason, attrShard, m.ShardID, attrReplica, m.To)
			if kept == nil {
				kept = append(make([]pb.Message, 0, len(b.Requests)-1), b.Requests[:i]...)
			}
			continue
		}
		if ok, recorded := in.reg.learn(m.ShardID, m.From, src); !ok {
			// Raced with another address for the same replica.
			in.stats.conflicts.Add(1)
			in.dropBatch(src, "source address contradicts the recorded address of its sender",
				attrShard, m.ShardID, attrReplica, m.From, "recorded", recorded)
			return pb.MessageBatch{}, false
		}
		if kept != nil {
			kept = append(kept, m)
		}
	}
	if kept != nil {
		if len(kept) == 0 {
			return pb.MessageBatch{}, false
		}
		b.Requests = kept
	}
	return b, true
}

// checkBatch returns why b is malformed, or "".
func (in *inbound) checkBatch(b pb.MessageBatch) string {
	switch {
	case len(b.Requests) == 0:
		return "empty batch"
	case len(b.Requests) > maxBatchMessages:
		return "too many messages in batch"
	case !validAddress(b.SourceAddress):
		return "invalid source address"
	}
	for _, m := range b.Requests {
		switch {
		case m.To == 0:
			return "message without To"
		case m.From == 0:
			return "message without From"
		case m.ShardID == 0:
			return "message without ShardID"
		case m.From == m.To:
			return "message from a replica to itself"
		case !isRemoteType(m.Type):
			return "message type not sent between members"
		}
	}
	return ""
}

func (in *inbound) dropBatch(src, reason string, args ...any) {
	in.stats.droppedBatches.Add(1)
	in.stats.note(in.log, src, reason, args...)
}

// checkChunk returns why c must not reach Dragonboat's snapshot receiver,
// or "". Graft's on-disk state machines stream snapshots without external
// files, so every chunk is one piece of one snapshot file.
func (in *inbound) checkChunk(c pb.Chunk) string {
	local, ok := in.reg.localReplica(c.ShardID)
	base := path.Base(c.Filepath)
	switch {
	case c.ShardID == 0 || c.ReplicaID == 0 || c.From == 0:
		return "chunk without shard, replica or sender"
	case c.From == c.ReplicaID:
		return "chunk from a replica to itself"
	case !ok:
		return "chunk for a shard not run here"
	case c.ReplicaID != local:
		return "chunk for another replica"
	case c.Index == 0 || c.Term == 0:
		return "chunk without index or term"
	case c.IsPoisonChunk():
		return "poison chunk"
	case c.HasFileInfo:
		return "chunk of an external snapshot file"
	case c.FileChunkId != c.ChunkId:
		return "chunk file position differs from its stream position"
	case c.ChunkCount != pb.LastChunkCount && c.ChunkCount != 0 && c.ChunkId >= c.ChunkCount:
		return "chunk beyond its snapshot"
	case len(c.Data) > dragonboatChunkBytes:
		return "chunk data too large"
	case c.Filepath == "" || base == "." || base == ".." || base == "/":
		return "chunk without a file name"
	}
	return ""
}

// TransportStats counts inbound Raft traffic refused before Dragonboat saw
// it, since the Host started. Each refusal is also logged once per peer
// address and reason.
type TransportStats struct {
	// RefusedConnections counts inbound connections closed on accept
	// because 512 were being served already (Graft's TCP transport only).
	RefusedConnections uint64
	// BadFrames counts connections ended by an invalid frame: bad magic
	// number or header, oversized or truncated payload, checksum mismatch,
	// undecodable batch or chunk (Graft's TCP transport only).
	BadFrames uint64
	// DroppedBatches counts message batches dropped whole: malformed, or
	// sent from an address contradicting the recorded address of a sender.
	DroppedBatches uint64
	// DroppedMessages counts messages dropped from otherwise valid batches
	// because this member does not run their shard or replica.
	DroppedMessages uint64
	// DroppedChunks counts snapshot chunks refused.
	DroppedChunks uint64
	// AddressConflicts counts addresses refused because another one was
	// recorded for the same shard replica.
	AddressConflicts uint64
}

// TransportStats returns the counts of inbound Raft traffic refused.
func (h *Host) TransportStats() TransportStats {
	s := h.stats
	return TransportStats{
		RefusedConnections: s.refusedConns.Load(),
		BadFrames:          s.badFrames.Load(),
		DroppedBatches:     s.droppedBatches.Load(),
		DroppedMessages:    s.droppedMessages.Load(),
		DroppedChunks:      s.droppedChunks.Load(),
		AddressConflicts:   s.conflicts.Load(),
	}
}
