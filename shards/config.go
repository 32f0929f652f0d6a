package shards

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/lni/dragonboat/v4/config"
)

// Defaults applied by NewHost to zero-valued Config fields.
const (
	// DefaultRTTMillisecond is the default Config.RTTMillisecond.
	DefaultRTTMillisecond uint64 = 10
	// DefaultElectionRTT is the default Config.ElectionRTT.
	DefaultElectionRTT uint64 = 10
	// DefaultHeartbeatRTT is the default Config.HeartbeatRTT.
	DefaultHeartbeatRTT uint64 = 1
	// DefaultSnapshotEntries is the default Config.SnapshotEntries.
	DefaultSnapshotEntries uint64 = 10000
	// DefaultCompactionOverhead is the default Config.CompactionOverhead.
	DefaultCompactionOverhead uint64 = 5000
	// DefaultMaxBatchBytes is the default Config.MaxBatchBytes (1 MiB).
	DefaultMaxBatchBytes = 1 << 20
	// DefaultMaxInflight is the default Config.MaxInflight.
	DefaultMaxInflight = 4
)

// Config configures a Host. The zero value of every optional field selects
// its documented default; NewHost never modifies the caller's Config.
type Config struct {
	// NodeID is the member name, used in logs and to derive the NodeHost
	// ID of a new data directory (NodeHostIDOf). Empty means a random ID.
	NodeID string
	// RaftAddress is the host:port Dragonboat listens on and that other
	// members use to reach this one. Required.
	RaftAddress string
	// DataDir holds the raft log (DataDir/raft) and the state machines'
	// Pebble database (DataDir/state). Required.
	DataDir string
	// RTTMillisecond is the round-trip time between members in milliseconds,
	// Dragonboat's logical clock tick. Zero means 10 ms.
	RTTMillisecond uint64
	// ElectionRTT is the election timeout in RTTMillisecond ticks. Zero means
	// 10. Must be greater than 2*HeartbeatRTT.
	ElectionRTT uint64
	// HeartbeatRTT is the leader heartbeat interval in RTTMillisecond ticks.
	// Zero means 1.
	HeartbeatRTT uint64
	// SnapshotEntries is how many applied entries trigger a snapshot, after
	// which the raft log is compacted. On-disk state machine snapshots are
	// cheap (only the applied index is recorded locally). Zero means 10000.
	SnapshotEntries uint64
	// CompactionOverhead is how many entries are kept in the raft log behind
	// a snapshot so slow followers can catch up without a snapshot. Zero
	// means 5000.
	CompactionOverhead uint64
	// MaxBatchBytes is the group-commit limit: the most command bytes packed
	// into one proposal. A single larger command is still proposed alone.
	// Zero means 1 MiB.
	MaxBatchBytes int
	// MaxInflight is the most concurrent proposals per shard. Zero means 4.
	MaxInflight int
	// LogDB configures Dragonboat's raft log storage. The zero value selects
	// a small configuration: config.GetTinyMemLogDBConfig with 4 LogDB shards
	// instead of 16 and 2 x 1 MiB write buffers. Measured with one shard: about
	// 1.2 MB on disk idle and 2.3 MB after 2,000 100-byte proposals (Tiny:
	// 4.7 MB and 9.1 MB), and ~110 fewer goroutines and ~70 fewer fds.
	// Dragonboat's own default uses ~142 MB per idle member.
	LogDB config.LogDBConfig
	// Logger receives this package's and Dragonboat's logs. Nil means
	// slog.Default().
	Logger *slog.Logger
	// NewLogic creates the Logic of one shard replica. Required.
	NewLogic func(shardID uint64) Logic
	// TransportFactory replaces Dragonboat's TCP transport, for example with
	// an in-memory or fault-injecting one. Nil means TCP.
	TransportFactory config.TransportFactory
	// Directory maps the NodeHost IDs of other members to their Raft
	// addresses (see Host.NodeHostID). Nil means only this Host's own ID
	// is known: enough for shards whose replicas all run here, or whose
	// memberships name replicas by Raft address (shards created before
	// NodeHost ID targets).
	Directory Directory
	// TLS, if set, secures the TCP transport's connections with mutual TLS
	// (ignored with a TransportFactory).
	TLS *TLS
	// OnLeaderChange, if set, is called when a shard's known leader changes
	// (leaderReplicaID 0 means no leader). It runs on a goroutine owned by
	// the Host, never on a Dragonboat goroutine, one event at a time; events
	// are dropped when it falls more than 1024 events behind. It must return
	// promptly: Close waits for it.
	OnLeaderChange func(shardID, leaderReplicaID, term uint64)
	// addressTargets makes the Host run as Graft's earlier versions did:
	// Dragonboat's own node registry, replicas named by Raft address. Only
	// this package's tests set it, to create data directories in that
	// format and restart on them.
	addressTargets bool
	// FS is the file system of everything the Host stores: the state
	// machines' Pebble database and Dragonboat's raft log database and
	// snapshots (through an adapter to Dragonboat's lni/vfs.FS, which is a
	// fork of this interface, not the same one). A member passes the real
	// file system (or Expert.FS) wrapped in disk.NoSpaceFS, which
	// releases its emergency reserve on ENOSPC and retries the write (see
	// internal/disk.Reserve); tests pass fault-injecting ones
	// (chaos.FaultFS). Nil means the real file system, unwrapped.
	//
	// A write the FS fails is fatal: Pebble panics on the next commit after
	// a failed WAL write, and Dragonboat on a failed raft log write, which
	// ends the process; with FS set Dragonboat runs in its error injection
	// mode (see dragonboatFS), where the panic instead stops the Host's
	// step worker for good, and Close returns the error. The FS is where
	// to notice such a failure (a member's stops the member, see
	// disk.NoSpaceFS).
	FS vfs.FS
}

// defaultLogDB is the LogDB used when Config.LogDB is zero.
func defaultLogDB() config.LogDBConfig {
	c := config.GetTinyMemLogDBConfig()
	// One LogDB shard: with a single step worker (see engineConfig) every
	// Raft shard maps to LogDB shard 0 anyway.
	c.Shards = 1
	// Four 4 MiB write buffers, as in Dragonboat's tiny config. With two
	// 1 MiB buffers Dragonboat's busy check (buffers >= 95% full) trips while
	// a flush runs and, under sustained load, never clears: proposals then
	// fail with ErrSystemBusy for good (seen in graftbench raw-propose).
	c.KVWriteBufferSize = 4 << 20
	c.KVMaxWriteBufferNumber = 4
	c.KVTargetFileSizeBase = 4 << 20
	c.KVMaxBytesForLevelBase = 64 << 20
	c.KVKeepLogFileNum = 4
	return c
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	c.RTTMillisecond = cmp.Or(c.RTTMillisecond, DefaultRTTMillisecond)
	c.ElectionRTT = cmp.Or(c.ElectionRTT, DefaultElectionRTT)
	c.HeartbeatRTT = cmp.Or(c.HeartbeatRTT, DefaultHeartbeatRTT)
	c.SnapshotEntries = cmp.Or(c.SnapshotEntries, DefaultSnapshotEntries)
	c.CompactionOverhead = cmp.Or(c.CompactionOverhead, DefaultCompactionOverhead)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, DefaultMaxBatchBytes)
	c.MaxInflight = cmp.Or(c.MaxInflight, DefaultMaxInflight)
	if c.LogDB.IsEmpty() {
		c.LogDB = defaultLogDB()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	return c
}

// Validate reports every problem with c (after defaults are applied) in one
// error naming the offending fields. NewHost calls it.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []string
	if c.RaftAddress == "" {
		errs = append(errs, "RaftAddress is required")
	}
	if c.DataDir == "" {
		errs = append(errs, "DataDir is required")
	}
	if c.NewLogic == nil {
		errs = append(errs, "NewLogic is required")
	}
	if c.ElectionRTT <= 2*c.HeartbeatRTT {
		errs = append(errs, fmt.Sprintf("ElectionRTT (%d) must be greater than 2 * HeartbeatRTT (%d)", c.ElectionRTT, c.HeartbeatRTT))
	}
	if c.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Sprintf("MaxBatchBytes (%d) must not be negative", c.MaxBatchBytes))
	}
	if c.MaxInflight < 0 {
		errs = append(errs, fmt.Sprintf("MaxInflight (%d) must not be negative", c.MaxInflight))
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New("graft: shards: invalid config: " + strings.Join(errs, "; "))
}

// TLS secures the Raft links of the TCP transport.
type TLS struct {
	// Server is the configuration of accepted connections; it must require
	// and verify client certificates. Client is that of dialled ones.
	Server, Client *tls.Config
	// PeerID names the peer of a completed handshake (from its
	// certificate).
	PeerID func(tls.ConnectionState) string
	// Bind, if set, is asked about every message batch an accepted
	// connection delivers: peer is the connection's PeerID and source the
	// batch's SourceAddress (a NodeHost ID, or a Raft address from members
	// of earlier versions). A non-nil error drops the batch and ends the
	// connection, so a member speaks only for itself.
	Bind func(peer, source string) error
}
