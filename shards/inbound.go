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
// To, unknown shard, local message types,
// and the content checks of raftcheck.go), except where the audit below
// says otherwise. It is safe for concurrent use.
//
// Audit (Dragonboat v4 076c7f6497dc) of the panics a well-formed batch or
// chunk from a peer speaking for itself can reach: site, then what keeps
// traffic from it. "Unreachable" means no message content leads there.
//
//	nodehost HandleMessageBatch "to field not set"      checkBatch: To
//	registry Add "invalid target",                      not reached: Graft's nodeRegistry replaces
//	  "inconsistent target"                             Dragonboat's registry and never panics
//	Peer.Handle "local message sent to Step"            checkBatch: isRemoteType
//	raft.Handle "preVote ... not enabled"               unreachable: shards enable PreVote
//	handleNodeRequestPreVote "m.term < r.term"          checkMessage: needsTerm (Term 0)
//	finalizeMessageTerm "RequestVote with 0 term"       checkMessage: Term < maxRaftValue (term+1 wraps)
//	doubleCheckTermMatched, dropRequestVote... panic    unreachable: other terms are adopted or dropped first
//	handleLeaderTransfer "target not set"               checkMessage: LeaderTransfer Hint
//	remote.tryUpdate/respondedTo: next wraps to 0,
//	  then makeInstallSnapshotMessage "empty snapshot"  checkMessage: LogIndex < maxRaftValue
//	ReplicateResp LogIndex past the leader's log        no panic below 2^62; NOT blocked: the leader
//	                                                    counts the sender as holding entries it may
//	                                                    not; the bound is the leader's unsaved last
//	                                                    index, which the filter cannot read
//	remote.decreaseTo/progress/setSnapshotAck/isPaused  unreachable: no LogIndex or Hint panics
//	entryLog.commitTo "invalid commitTo index"          Heartbeat: commit rule below; Replicate: checkReplicate
//	entryLog.tryAppend "conflicts with committed",
//	  append "committed entries being changed"          checkReplicate: entries numbered from LogIndex+1
//	inMemory.getEntries "invalid high value"            checkReplicate: LogTerm > 0 when LogIndex > 0
//	checkEntriesToAppend "hole", "term value"           checkReplicate: contiguous; terms from LogTerm up, <= Term
//	readIndex addRequest/confirm panics                 unreachable: local consistency; unknown contexts ignored
//	raft.restore "converting to nonVoting/witness",
//	  restoreRemotes "witness could not promote"        checkMembership: no non-voting or witness members
//	node.RestoreRemotes "invalid ConfChangeId"          checkMembership
//	StateMachine.getSSMeta "empty membership"           checkMembership
//	notifyCommittedEntries, processDroppedEntries
//	  "unknown entry type"; GetPayload                  checkEntry: entry type
//	StateMachine.handleEntry "not session managed"      checkEntry: command without client ID
//	node.ApplyUpdate "key is 0"                         checkEntry: session entry without key
//	getDecodedPayload (header, session, compression)    checkEntry: uncompressed version 0 header
//	stateMachine.Update error, then engine panicNow     checkEntry: isCommandBatch (Logic.Apply errors are fatal by contract)
//	configChange MustUnmarshal, membership.apply and
//	  applyConfigChange type, addNonVoting/addWitness   checkConfigChange: AddNode/RemoveNode of a replica
//	StateMachine setLastApplied/setApplied (gap, term)  checkReplicate; chunk term rule (Host.raftTerm)
//	getHeaderFromFirstChunk "too small", CRC slice      checkSnapshotHeader
//	SnapshotValidator MustUnmarshal, mustGetChecksum    checkSnapshotHeader
//	Chunk.save panicNow (append to an absent file)      checkChunkContent: file name of its Index
//	checkPartialSnapshotApplyOnDiskSM (witness)         checkChunkContent: Witness
//	inMemory.restore marker index wraps                 checkChunkContent: Index < maxRaftValue
//	Chunk.finalize, nodeRemoved, MustRemoveTempDir      disk errors only
//	session.recoverFromSnapshot (json, version, size)
//	  and the state machine's stream reader             NOT blocked: the file body is only seen after
//	                                                    the last chunk, and a peer can make its
//	                                                    checksums match
//
// The Heartbeat commit rule and the chunk term rule read replica state
// (saved last index, current term); every other check is pure.
type inbound struct {
	log   *slog.Logger
	reg   *nodeRegistry
	stats *transportStats
	// lastIndex, if set, returns the last index of the local replica's
	// saved Raft log, and whether it is known.
	lastIndex func(shardID uint64) (uint64, bool)
	// term, if set, returns the local replica's Raft term as of its last
	// leader update, and whether it is known.
	term func(shardID uint64) (uint64, bool)
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
// one whose SourceAddress is a NodeHost ID no member is known by, or one
// whose SourceAddress names another member than the recorded target of a
// sender, is dropped whole; messages for shards this member does not run, for
// another replica than the one it runs, or whose content checkMessage or
// the heartbeat commit rule refuses, are dropped alone.
func (in *inbound) filterBatch(b pb.MessageBatch) (pb.MessageBatch, bool) {
	src := b.SourceAddress
	if reason := in.checkBatch(b); reason != "" {
		in.dropBatch(src, reason)
		return pb.MessageBatch{}, false
	}
	if IsNodeHostID(src) {
		if _, known := in.reg.address(src); !known {
			in.dropBatch(src, reasonUnknownSourceID)
			return pb.MessageBatch{}, false
		}
	}
	for _, m := range b.Requests {
		if ok, recorded := in.reg.consistent(m.ShardID, m.From, src); !ok {
			in.stats.conflicts.Add(1)
			in.dropBatch(src, "source contradicts the recorded target of its sender",
				attrShard, m.ShardID, attrReplica, m.From, "recorded", recorded)
			return pb.MessageBatch{}, false
		}
	}
	kept := b.Requests[:0:0]
	for i := range b.Requests {
		m := &b.Requests[i]
		local, ok := in.reg.localReplica(m.ShardID)
		reason := ""
		switch {
		case !ok:
			reason = "message for a shard not run here"
		case m.To != local:
			reason = "message for another replica"
		default:
			reason = checkMessage(m)
		}
		if reason == "" && m.Type == pb.Heartbeat && in.lastIndex != nil && m.Commit > 0 {
			// A leader's heartbeat commits at most what this replica
			// acknowledged, i.e. saved; a larger index would stop the
			// replica (Dragonboat panics in commitTo).
			if last, known := in.lastIndex(m.ShardID); known && m.Commit > last {
				reason = "heartbeat commits past this replica's log"
			}
		}
		if reason != "" {
			in.stats.droppedMessages.Add(1)
			in.stats.note(in.log, src, reason, attrShard, m.ShardID, attrReplica, m.To, "type", m.Type)
			if kept == nil {
				kept = append(make([]pb.Message, 0, len(b.Requests)-1), b.Requests[:i]...)
			}
			continue
		}
		if ok, recorded, _ := in.reg.learn(m.ShardID, m.From, src); !ok {
			// Raced with another member's target for the same replica.
			in.stats.conflicts.Add(1)
			in.dropBatch(src, "source contradicts the recorded target of its sender",
				attrShard, m.ShardID, attrReplica, m.From, "recorded", recorded)
			return pb.MessageBatch{}, false
		}
		if kept != nil {
			kept = append(kept, *m)
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
	case !validTarget(b.SourceAddress):
		return "invalid source (neither a NodeHost ID nor host:port)"
	}
	for i := range b.Requests {
		m := &b.Requests[i]
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
	if reason := checkChunkContent(&c); reason != "" {
		return reason
	}
	if in.term != nil {
		// A snapshot from a later term than the replica's own would
		// leave its log and state machine at a term above the entries
		// it appends next as leader: the state machine panics applying
		// them ("invalid term"). A correct leader streams a snapshot
		// only after this replica answered its Replicate at its term.
		if t, ok := in.term(c.ShardID); !ok || c.Term > t {
			return "chunk from a term this replica has not reached"
		}
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
	// DroppedBatches counts message batches dropped whole: malformed, sent
	// from a NodeHost ID no member is known by, or from a source naming
	// another member than the recorded target of a sender.
	DroppedBatches uint64
	// DroppedMessages counts messages dropped from otherwise valid batches:
	// this member does not run their shard or replica, or their content
	// would take Dragonboat into a panic (see the audit in inbound.go).
	DroppedMessages uint64
	// DroppedChunks counts snapshot chunks refused: misaddressed, or
	// metadata, file name or header that would take Dragonboat into a panic.
	DroppedChunks uint64
	// AddressConflicts counts Raft targets refused: by the node registry
	// (an invalid target, or one naming another member than the target
	// recorded for the same shard replica; each logged once per shard
	// replica and reason), and batch sources naming another member than
	// the recorded target of their sender.
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
