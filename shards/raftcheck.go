package shards

// Pure checks of the content of inbound Raft messages and snapshot chunks:
// the invariants Dragonboat's Raft, log and state machine code assume of
// what a correct peer sends and panic on when they do not hold. See the
// audit table in inbound.go for the sites each check guards.

import (
	"encoding/binary"
	"fmt"
	"path"

	"github.com/lni/dragonboat/v4/client"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// maxRaftValue bounds every term and log index a peer may send. Dragonboat
// computes index+1, term+1 and LogIndex+len(Entries) without overflow
// checks (a ReplicateResp at index 2^64-1 makes the leader's next index 0
// and, without a snapshot, panic sending one); a term or index this large
// would take a correct cluster tens of thousands of years to reach.
const maxRaftValue = 1 << 62

// snapshotHeaderSize is Dragonboat's settings.SnapshotHeaderSize: a snapshot
// file starts with this many bytes holding an 8-byte little-endian header
// length, the marshalled pb.SnapshotHeader and its 4-byte CRC32.
const snapshotHeaderSize = 1024

// snapshotFileName is the name Dragonboat gives the snapshot file of index,
// on the sender and the receiver (internal/server.GetSnapshotFilename).
func snapshotFileName(index uint64) string {
	return fmt.Sprintf("snapshot-%016X.gbsnap", index)
}

// Encoded entry header of Dragonboat's internal/rsm/encoded.go: version 0,
// no compression, no session. Graft's shards set no EntryCompressionType,
// so every proposal with a command carries this header.
const encodedNoCompression byte = 0

// checkMessage returns why m, a message that already passed checkBatch's
// addressing checks, would take Dragonboat into a panic or is something a
// correct peer never sends, or "".
func checkMessage(m *pb.Message) string {
	switch {
	case m.Term >= maxRaftValue:
		return "term out of range"
	case m.LogIndex >= maxRaftValue || m.Commit >= maxRaftValue:
		return "log index out of range"
	case m.Term == 0 && needsTerm(m.Type):
		// A RequestPreVote at term 0 panics the receiver (m.term <
		// r.term); the others would be taken as sent at its term.
		return "message without term"
	case m.Type == pb.LeaderTransfer && m.Hint == 0:
		// handleLeaderTransfer panics: "leader transfer target not set".
		return "leader transfer without target"
	}
	switch m.Type {
	case pb.Replicate:
		return checkReplicate(m)
	case pb.Propose:
		for i := range m.Entries {
			if reason := checkEntry(&m.Entries[i]); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// needsTerm reports whether a correct peer always sets Term on messages of
// type t: votes carry the campaign's term (at least 1), and a leader's
// messages carry its term (finalizeMessageTerm), which is at least 1.
func needsTerm(t pb.MessageType) bool {
	switch t {
	case pb.RequestVote, pb.RequestPreVote,
		pb.Replicate, pb.Heartbeat, pb.TimeoutNow, pb.ReadIndexResp:
		return true
	}
	return false
}

// checkReplicate checks a Replicate against the shape of the leader's log
// that makeReplicateMessage sends: entries numbered LogIndex+1, LogIndex+2,
// ..., with terms from 1 up, never decreasing from LogTerm and never above
// the message's term.
func checkReplicate(m *pb.Message) string {
	if m.LogIndex > 0 && m.LogTerm == 0 {
		// Index 0 is the only index of term 0; a later one matches any
		// index past the local log, and appending there panics.
		return "replicate without the term of its previous entry"
	}
	prev := m.LogTerm
	for i := range m.Entries {
		e := &m.Entries[i]
		switch {
		case e.Index != m.LogIndex+1+uint64(i):
			// tryAppend panics on an entry at or below the commit
			// index ("conflicts with committed entry") and merge on a
			// hole.
			return "replicated entries not contiguous after their previous entry"
		case e.Term == 0:
			// An entry of term 0 past the local log "matches" and is
			// not appended, and committing it panics in commitTo.
			return "replicated entry without term"
		case e.Term < prev:
			return "replicated entry terms decrease"
		case e.Term > m.Term:
			// Appending after it at a lower term panics in merge
			// ("term value not expected") and in the state machine.
			return "replicated entry from a later term"
		}
		prev = e.Term
		if reason := checkEntry(e); reason != "" {
			return reason
		}
	}
	return ""
}

// checkEntry returns why applying e would panic every replica that commits
// it, or "". The shapes allowed are those Dragonboat's proposal path and
// Graft's batcher produce: the leader's empty entry, config changes, and
// session-managed entries whose payload is a Graft command batch.
func checkEntry(e *pb.Entry) string {
	switch e.Type {
	case pb.ConfigChangeEntry:
		return checkConfigChange(e.Cmd)
	case pb.ApplicationEntry, pb.EncodedEntry:
	case pb.MetadataEntry:
		// Sent to witnesses only, and always bare.
		if e.ClientID != client.NotSessionManagedClientID || len(e.Cmd) > 0 {
			return "metadata entry with content"
		}
		return ""
	default:
		// notifyCommittedEntries panics: "unknown entry type".
		return "entry type unknown"
	}
	if e.ClientID == client.NotSessionManagedClientID {
		// handleEntry panics: "not session managed, not empty".
		if len(e.Cmd) > 0 {
			return "entry without session carries a command"
		}
		return ""
	}
	if e.Key == 0 {
		// ApplyUpdate panics: "key is 0".
		return "session entry without proposal key"
	}
	if len(e.Cmd) == 0 && (e.SeriesID == client.SeriesIDForRegister || e.SeriesID == client.SeriesIDForUnregister) {
		return ""
	}
	payload := e.Cmd
	if e.Type == pb.EncodedEntry {
		// getDecodedPayload reads Cmd[0] and panics on any header but
		// version 0 with a known compression and no session.
		if len(payload) == 0 || payload[0] != encodedNoCompression {
			return "encoded entry header not uncompressed version 0"
		}
		payload = payload[1:]
	}
	// The state machine fails on a payload that is not a command batch,
	// and Dragonboat panics on the failure.
	if !isCommandBatch(payload) {
		return "entry payload not a command batch"
	}
	return ""
}

// checkConfigChange returns why the config change encoded in cmd would
// panic a replica applying it, or "". Graft adds and removes voting
// replicas only: a non-voting or witness change naming a replica that runs
// as a voting one panics it (addNonVoting, addWitness, restoreRemotes).
func checkConfigChange(cmd []byte) (reason string) {
	var cc pb.ConfigChange
	if err := unmarshalSafely(&cc, cmd); err != nil {
		// StateMachine.configChange panics in MustUnmarshal.
		return "config change entry undecodable"
	}
	switch {
	case cc.Type != pb.AddNode && cc.Type != pb.RemoveNode:
		return "config change type not used by Graft"
	case cc.ReplicaID == 0:
		return "config change without replica"
	}
	return ""
}

// unmarshaler is a generated Dragonboat protobuf type.
type unmarshaler interface{ Unmarshal([]byte) error }

// unmarshalSafely unmarshals data into v, turning a panic of the generated
// code into an error.
func unmarshalSafely(v unmarshaler, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecodePanics, r)
		}
	}()
	return v.Unmarshal(data)
}

// checkChunkContent returns why c's snapshot would take the receiver into a
// panic, or "": Dragonboat builds the InstallSnapshot message from the
// first chunk's metadata, validates the first chunk's header as it arrives,
// and writes each chunk to the file its Filepath names.
func checkChunkContent(c *pb.Chunk) string {
	switch {
	case c.Index >= maxRaftValue:
		// Terms need no bound here: the chunk's may not exceed the
		// receiver's, which the message checks keep below maxRaftValue.
		return "chunk index out of range"
	case c.Witness:
		// Graft runs no witnesses; applying a witness snapshot panics an
		// on-disk state machine behind its OnDiskIndex.
		return "witness snapshot chunk"
	case path.Base(c.Filepath) != snapshotFileName(c.Index):
		// A later chunk naming another file panics the receiver, which
		// opens that file for appending.
		return "chunk file name is not its snapshot's"
	}
	if reason := checkMembership(&c.Membership); reason != "" {
		return reason
	}
	if c.ChunkId == 0 {
		return checkSnapshotHeader(c.Data)
	}
	return ""
}

// checkMembership checks a snapshot's membership: RestoreRemotes panics on
// ConfigChangeId 0, the state machine on an empty membership once it takes
// a snapshot, and restore on non-voting or witness members naming the
// receiver.
func checkMembership(m *pb.Membership) string {
	switch {
	case m.ConfigChangeId == 0:
		return "chunk membership without config change id"
	case len(m.Addresses) == 0:
		return "chunk membership without members"
	case len(m.NonVotings) > 0 || len(m.Witnesses) > 0:
		return "chunk membership with non-voting or witness members"
	}
	if _, ok := m.Addresses[0]; ok {
		return "chunk membership with replica 0"
	}
	return ""
}

// checkSnapshotHeader checks a snapshot's first chunk as Dragonboat's
// SnapshotValidator reads it: it panics on a chunk shorter than the header
// area, slices past a short chunk for the header CRC, panics unmarshalling
// a header whose CRC matches (or is zero) and on a version 1 header with an
// unknown checksum type.
func checkSnapshotHeader(data []byte) string {
	if len(data) < snapshotHeaderSize {
		return "first chunk shorter than a snapshot header"
	}
	n := binary.LittleEndian.Uint64(data)
	if n > snapshotHeaderSize-8 || 12+n > uint64(len(data)) {
		return "snapshot header size out of range"
	}
	var h pb.SnapshotHeader
	if err := unmarshalSafely(&h, data[8:8+n]); err != nil {
		return "snapshot header undecodable"
	}
	switch {
	case h.Version != 1 && h.Version != 2:
		return "snapshot header version unknown"
	case h.ChecksumType != pb.CRC32IEEE:
		return "snapshot header checksum type unknown"
	case h.CompressionType != pb.NoCompression && h.CompressionType != pb.Snappy:
		return "snapshot header compression type unknown"
	}
	return ""
}
