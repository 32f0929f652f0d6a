package shards

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"

	"github.com/lni/dragonboat/v4/client"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/stretchr/testify/require"
)

// testCommand is the Cmd of an entry Dragonboat proposes for Graft's
// batcher: the uncompressed version 0 header and a command batch.
func testCommand(cmds ...string) []byte {
	items := make([][]byte, len(cmds))
	for i, c := range cmds {
		items[i] = []byte(c)
	}
	return append([]byte{encodedNoCompression}, encodeBatch(items)...)
}

// testProposal is an entry as Host.Propose makes it, at index and term.
func testProposal(index, term uint64) pb.Entry {
	return pb.Entry{Type: pb.EncodedEntry, Index: index, Term: term, Key: 77, ClientID: 99,
		SeriesID: client.NoOPSeriesID, Cmd: testCommand("k=v", "x=y")}
}

// testConfigChange is a config change entry's Cmd.
func testConfigChange(t *testing.T, cc pb.ConfigChange) []byte {
	t.Helper()
	data, err := cc.Marshal()
	require.NoError(t, err)
	return data
}

// testSnapshotHeader is the start of a snapshot file carrying h, as
// Dragonboat's ChunkWriter writes it, followed by extra bytes.
func testSnapshotHeader(h pb.SnapshotHeader, extra int) []byte {
	data, err := h.Marshal()
	if err != nil {
		panic(err)
	}
	out := make([]byte, snapshotHeaderSize+extra)
	binary.LittleEndian.PutUint64(out, uint64(len(data)))
	copy(out[8:], data)
	binary.BigEndian.PutUint32(out[8+len(data):], crc32.ChecksumIEEE(data))
	return out
}

// testChunk is the first chunk of a snapshot at index 10, term 2, of shard
// 1 for replica 2 from replica 1, as a correct Dragonboat leader streams it.
func testChunk() pb.Chunk {
	return pb.Chunk{ShardID: 1, ReplicaID: 2, From: 1, Index: 10, Term: 2,
		Filepath: "snapshot-000000000000000A.gbsnap", BinVer: raftio.TransportBinVersion,
		Membership: pb.Membership{ConfigChangeId: 3, Addresses: map[uint64]string{1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}},
		Data:       testSnapshotHeader(pb.SnapshotHeader{Version: 2, ChecksumType: pb.CRC32IEEE, PayloadChecksum: []byte{0, 0, 0, 0}}, 0)}
}

// messageBundle is an inbound running replica 1 of shard 1, with replica
// 2's address recorded.
type messageBundle struct {
	in  *inbound
	src string
}

func setupMessages(t *testing.T) *messageBundle {
	t.Helper()
	stats := &transportStats{}
	reg := newNodeRegistry(testLogger(t, "reg"), stats, nil, "")
	reg.setLocal(1, 1)
	src := "127.0.0.1:7002"
	reg.Add(1, 2, src)
	return &messageBundle{in: &inbound{log: testLogger(t, "in"), reg: reg, stats: stats}, src: src}
}

// delivered reports whether m reaches Dragonboat, and checks that a refusal
// is counted as a dropped message.
func (b *messageBundle) delivered(t *testing.T, m pb.Message) bool {
	t.Helper()
	m.ShardID, m.To = 1, 1
	if m.From == 0 {
		m.From = 2
	}
	before := b.in.stats.droppedMessages.Load()
	out, ok := b.in.filterBatch(validBatch(b.src, m))
	if ok {
		require.Len(t, out.Requests, 1)
		require.Equal(t, before, b.in.stats.droppedMessages.Load())
		return true
	}
	require.Equal(t, before+1, b.in.stats.droppedMessages.Load())
	return false
}

func TestInboundMessageContentChecks(t *testing.T) {
	t.Parallel()
	addNode := func(id uint64) pb.Entry {
		return pb.Entry{Type: pb.ConfigChangeEntry, Key: 5,
			Cmd: testConfigChange(t, pb.ConfigChange{ConfigChangeId: 3, Type: pb.AddNode, ReplicaID: id, Address: "127.0.0.1:7003"})}
	}
	replicate := func(entries ...pb.Entry) pb.Message {
		return pb.Message{Type: pb.Replicate, Term: 3, LogIndex: 10, LogTerm: 2, Commit: 10, Entries: entries}
	}
	propose := func(entries ...pb.Entry) pb.Message {
		return pb.Message{Type: pb.Propose, Entries: entries}
	}
	noop := pb.Entry{Type: pb.ApplicationEntry, Index: 12, Term: 3} // a new leader's empty entry
	withEntry := func(mutate func(e *pb.Entry)) pb.Message {
		e := testProposal(11, 2)
		mutate(&e)
		return replicate(e)
	}

	// What correct Dragonboat peers running Graft's shards send.
	good := []struct {
		name string
		m    pb.Message
	}{
		{"replicate", replicate(testProposal(11, 2), noop)},
		{"replicate from the start of the log", pb.Message{Type: pb.Replicate, Term: 1, Entries: []pb.Entry{
			{Type: pb.ConfigChangeEntry, Index: 1, Term: 1, Cmd: testConfigChange(t, pb.ConfigChange{Type: pb.AddNode, ReplicaID: 1, Address: "127.0.0.1:7001", Initialize: true})},
			{Type: pb.ApplicationEntry, Index: 2, Term: 1}}}},
		{"replicate catching up below commit", pb.Message{Type: pb.Replicate, Term: 3, LogIndex: 4, LogTerm: 1, Commit: 30}},
		{"heartbeat", pb.Message{Type: pb.Heartbeat, Term: 3, Commit: 9, Hint: 123, HintHigh: 456}},
		{"propose", propose(testProposal(0, 0))},
		{"propose config change", propose(addNode(3))},
		{"propose session register", propose(pb.Entry{Type: pb.ApplicationEntry, Key: 8, ClientID: 4, SeriesID: client.SeriesIDForRegister})},
		{"witness metadata entry", withEntry(func(e *pb.Entry) { *e = pb.Entry{Type: pb.MetadataEntry, Index: e.Index, Term: e.Term} })},
		{"replicate response", pb.Message{Type: pb.ReplicateResp, Term: 3, LogIndex: 20}},
		{"replicate rejection", pb.Message{Type: pb.ReplicateResp, Term: 3, LogIndex: 20, Reject: true, Hint: math.MaxUint64}},
		{"prevote", pb.Message{Type: pb.RequestPreVote, Term: 4, LogIndex: 10, LogTerm: 3}},
		{"prevote rejection at term 0", pb.Message{Type: pb.RequestPreVoteResp, Reject: true}},
		{"vote", pb.Message{Type: pb.RequestVote, Term: 4, LogIndex: 10, LogTerm: 3}},
		{"leader transfer", pb.Message{Type: pb.LeaderTransfer, Hint: 2}},
		{"read index", pb.Message{Type: pb.ReadIndex, Hint: math.MaxUint64, HintHigh: math.MaxUint64}},
		{"read index response", pb.Message{Type: pb.ReadIndexResp, Term: 3, LogIndex: 9, Hint: 1}},
		{"timeout now", pb.Message{Type: pb.TimeoutNow, Term: 3}},
		{"snapshot received", pb.Message{Type: pb.SnapshotReceived}},
	}
	// Each refused by one rule of checkMessage; the comment names the
	// Dragonboat site that panics without it.
	bad := []struct {
		name string
		m    pb.Message
	}{
		// Term+1 overflows to 0: RequestVote with 0 term.
		{"term out of range", pb.Message{Type: pb.Heartbeat, Term: maxRaftValue}},
		// ReplicateResp: next = match+1 = 0, then an empty snapshot.
		{"replicate response at the last index", pb.Message{Type: pb.ReplicateResp, Term: 3, LogIndex: math.MaxUint64}},
		{"commit out of range", pb.Message{Type: pb.Heartbeat, Term: 3, Commit: maxRaftValue}},
		// handleNodeRequestPreVote: m.term < r.term.
		{"prevote without term", pb.Message{Type: pb.RequestPreVote, LogIndex: 10, LogTerm: 3}},
		{"vote without term", pb.Message{Type: pb.RequestVote, LogIndex: 10, LogTerm: 3}},
		{"replicate without term", pb.Message{Type: pb.Replicate, LogIndex: 10, LogTerm: 2}},
		{"heartbeat without term", pb.Message{Type: pb.Heartbeat}},
		{"timeout now without term", pb.Message{Type: pb.TimeoutNow}},
		{"read index response without term", pb.Message{Type: pb.ReadIndexResp, LogIndex: 9}},
		// handleLeaderTransfer: leader transfer target not set.
		{"leader transfer without target", pb.Message{Type: pb.LeaderTransfer}},
		// inMemory.getEntries: invalid high value.
		{"replicate previous entry without term", pb.Message{Type: pb.Replicate, Term: 3, LogIndex: 1 << 40, Entries: []pb.Entry{testProposal(1<<40+1, 3)}}},
		// tryAppend: entry conflicts with committed entry.
		{"replicate entry at its previous index", replicate(testProposal(10, 2))},
		{"replicate entries with a hole", replicate(testProposal(11, 2), testProposal(13, 2))},
		// commitTo: invalid commitTo index.
		{"replicate entry without term", replicate(testProposal(11, 0))},
		// merge, checkEntriesToAppend: term value not expected.
		{"replicate entry below the previous term", replicate(testProposal(11, 1))},
		{"replicate entry terms decreasing", replicate(testProposal(11, 3), testProposal(12, 2))},
		{"replicate entry from a later term", replicate(testProposal(11, 4))},
		// notifyCommittedEntries: unknown entry type.
		{"entry type unknown", withEntry(func(e *pb.Entry) { e.Type = 9 })},
		// handleEntry: not session managed, not empty.
		{"command without session", withEntry(func(e *pb.Entry) { e.ClientID = 0 })},
		// ApplyUpdate: key is 0.
		{"session entry without key", withEntry(func(e *pb.Entry) { e.Key = 0 })},
		{"session register without key", propose(pb.Entry{Type: pb.ApplicationEntry, ClientID: 4, SeriesID: client.SeriesIDForRegister})},
		// getDecodedPayload: index out of range, unknown compression,
		// v0 cmd has session info.
		{"encoded entry without header", withEntry(func(e *pb.Entry) { e.Cmd = nil })},
		{"encoded entry compressed", withEntry(func(e *pb.Entry) { e.Cmd[0] = 1 << 1 })},
		{"encoded entry with session", withEntry(func(e *pb.Entry) { e.Cmd[0] = 1 })},
		{"encoded entry version 1", withEntry(func(e *pb.Entry) { e.Cmd[0] = 1 << 4 })},
		// The state machine fails on the payload; the engine panics.
		{"encoded entry payload not a batch", withEntry(func(e *pb.Entry) { e.Cmd = append(e.Cmd, 0) })},
		{"application entry payload not a batch", withEntry(func(e *pb.Entry) { e.Type, e.Cmd = pb.ApplicationEntry, []byte{5, 1} })},
		{"empty application entry in a session", withEntry(func(e *pb.Entry) { e.Type, e.Cmd = pb.ApplicationEntry, nil })},
		// GetPayload: unknown entry type.
		{"metadata entry with a session", withEntry(func(e *pb.Entry) { e.Type, e.Cmd = pb.MetadataEntry, nil })},
		// StateMachine.configChange: MustUnmarshal.
		{"config change undecodable", propose(pb.Entry{Type: pb.ConfigChangeEntry, Key: 5, Cmd: []byte{0xff, 0xff}})},
		// addNonVoting, addWitness: is not a nonVoting / witness.
		{"config change adds non-voting", propose(pb.Entry{Type: pb.ConfigChangeEntry, Key: 5,
			Cmd: testConfigChange(t, pb.ConfigChange{ConfigChangeId: 3, Type: pb.AddNonVoting, ReplicaID: 1, Address: "127.0.0.1:7001"})})},
		{"config change adds witness", propose(pb.Entry{Type: pb.ConfigChangeEntry, Key: 5,
			Cmd: testConfigChange(t, pb.ConfigChange{ConfigChangeId: 3, Type: pb.AddWitness, ReplicaID: 1, Address: "127.0.0.1:7001"})})},
		// membership.apply: unknown config change type.
		{"config change type unknown", propose(pb.Entry{Type: pb.ConfigChangeEntry, Key: 5,
			Cmd: testConfigChange(t, pb.ConfigChange{ConfigChangeId: 3, Type: 9, ReplicaID: 3})})},
		{"config change without replica", propose(pb.Entry{Type: pb.ConfigChangeEntry, Key: 5, Cmd: nil})},
		{"propose entry type unknown", propose(pb.Entry{Type: 7})},
		{"replicated config change undecodable", replicate(pb.Entry{Type: pb.ConfigChangeEntry, Index: 11, Term: 2, Cmd: []byte{0x08}})},
	}
	for _, tt := range good {
		t.Run("delivers "+tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, setupMessages(t).delivered(t, tt.m))
		})
	}
	for _, tt := range bad {
		t.Run("drops "+tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupMessages(t)
			require.False(t, b.delivered(t, tt.m))
			require.NotEmpty(t, checkMessage(&tt.m))
		})
	}
}

func TestInboundDropsOnlyTheMalformedMessage(t *testing.T) {
	t.Parallel()
	b := setupMessages(t)
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 3}
	bad := pb.Message{Type: pb.RequestPreVote, ShardID: 1, From: 2, To: 1}
	out, ok := b.in.filterBatch(validBatch(b.src, hb, bad, hb))
	require.True(t, ok)
	require.Equal(t, []pb.Message{hb, hb}, out.Requests)
	require.Equal(t, uint64(1), b.in.stats.droppedMessages.Load())
}

func TestInboundChunkContentChecks(t *testing.T) {
	t.Parallel()
	reg := newNodeRegistry(testLogger(t, "reg"), &transportStats{}, nil, "")
	reg.setLocal(1, 2)
	term, known := uint64(2), true
	in := &inbound{log: testLogger(t, "in"), reg: reg, stats: reg.stats,
		term: func(uint64) (uint64, bool) { return term, known }}
	good := testChunk()
	require.Empty(t, in.checkChunk(good))
	next := good
	next.ChunkId, next.FileChunkId, next.Data = 1, 1, []byte("rest of the file")
	require.Empty(t, in.checkChunk(next), "only the first chunk holds the header")
	big := good
	big.Data = testSnapshotHeader(pb.SnapshotHeader{Version: 2, ChecksumType: pb.CRC32IEEE, CompressionType: pb.Snappy}, 1<<20)
	require.Empty(t, in.checkChunk(big))

	header := func(h pb.SnapshotHeader) func(c *pb.Chunk) {
		return func(c *pb.Chunk) { c.Data = testSnapshotHeader(h, 0) }
	}
	// Each refused by one rule; the comment names the Dragonboat site that
	// panics without it.
	bad := map[string]func(c *pb.Chunk){
		// log.restore: markerIndex = Index+1 overflows.
		"index out of range": func(c *pb.Chunk) {
			c.Index = math.MaxUint64
			c.Filepath = snapshotFileName(c.Index)
		},
		// checkPartialSnapshotApplyOnDiskSM: ss.OnDiskIndex > s.onDiskIndex.
		"witness": func(c *pb.Chunk) { c.Witness = true },
		// Chunk.save: openChunkFileForAppend of a file never created.
		"file of another snapshot": func(c *pb.Chunk) { c.Filepath = snapshotFileName(11) },
		"file of another name":     func(c *pb.Chunk) { c.Filepath = "dir/other.gbsnap" },
		// node.RestoreRemotes: invalid ConfChangeId.
		"membership without config change id": func(c *pb.Chunk) { c.Membership.ConfigChangeId = 0 },
		// getSSMeta: empty membership.
		"membership without members": func(c *pb.Chunk) { c.Membership.Addresses = nil },
		// raft.restore: converting to nonVoting / witness.
		"membership with non-voting": func(c *pb.Chunk) { c.Membership.NonVotings = map[uint64]string{2: "127.0.0.1:7002"} },
		"membership with witness":    func(c *pb.Chunk) { c.Membership.Witnesses = map[uint64]string{3: "127.0.0.1:7003"} },
		"membership with replica 0":  func(c *pb.Chunk) { c.Membership.Addresses[0] = "127.0.0.1:7000" },
		// getHeaderFromFirstChunk: first chunk is too small, and slice
		// bounds out of range.
		"first chunk short": func(c *pb.Chunk) { c.Data = c.Data[:snapshotHeaderSize-1] },
		"header size past the chunk": func(c *pb.Chunk) {
			binary.LittleEndian.PutUint64(c.Data, snapshotHeaderSize-8)
		},
		"header size past the header area": func(c *pb.Chunk) {
			binary.LittleEndian.PutUint64(c.Data, snapshotHeaderSize)
		},
		// SnapshotValidator.AddChunk: MustUnmarshal.
		"header undecodable": func(c *pb.Chunk) {
			binary.LittleEndian.PutUint64(c.Data, 2)
			c.Data[8], c.Data[9] = 0xff, 0xff
		},
		// newV1Validator: failed to get checksum.
		"header checksum unknown":    header(pb.SnapshotHeader{Version: 1, ChecksumType: 3}),
		"header version unknown":     header(pb.SnapshotHeader{Version: 3}),
		"header compression unknown": header(pb.SnapshotHeader{Version: 2, CompressionType: 9}),
		// rsm setLastApplied: invalid term, once the replica leads at its
		// own, lower term.
		"term beyond the replica's": func(c *pb.Chunk) { c.Term = term + 1 },
	}
	for name, mutate := range bad {
		c := testChunk()
		mutate(&c)
		require.NotEmpty(t, in.checkChunk(c), name)
	}

	known = false
	require.NotEmpty(t, in.checkChunk(good), "replica's term unknown")
}

func TestIsCommandBatchAgreesWithDecodeBatch(t *testing.T) {
	t.Parallel()
	inputs := [][]byte{nil, {0}, {1}, {1, 0}, {1, 1, 'a'}, {2, 1, 'a', 0}, {2, 1, 'a'}, {0, 0},
		{0x80}, {1, 0x80}, encodeBatch(nil), encodeBatch([][]byte{[]byte("a=b"), nil, []byte("c")})}
	for _, in := range inputs {
		_, err := decodeBatch(in)
		require.Equal(t, err == nil, isCommandBatch(in), "%x", in)
	}
}
