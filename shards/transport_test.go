package shards

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/hostile"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/stretchr/testify/require"
)

// probeBundle is two Hosts running shard 1 (replicas 1 and 2) with a
// trickle of proposals, probed over loopback on n1's Raft port.
type probeBundle struct {
	n1, n2    *testNode
	committed atomic.Uint64 // proposals committed by the trickle
}

func setupProbe(t *testing.T) *probeBundle {
	t.Helper()
	dir := &testDir{}
	b := &probeBundle{n1: newTestNode(t, "n1", Config{Directory: dir}), n2: newTestNode(t, "n2", Config{Directory: dir})}
	members := map[uint64]string{1: b.n1.target(), 2: b.n2.target()}
	require.NoError(t, b.n1.h.StartShard(1, 1, members, false))
	require.NoError(t, b.n2.h.StartShard(1, 2, members, false))
	waitLeader(t, b.n1.h, 1)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := b.n1.h.Propose(pctx, 1, fmt.Appendf(nil, "trickle%d=%d", i, i)); err == nil {
				b.committed.Add(1)
			}
			pcancel()
		}
	})
	b.waitCommitting(t)
	return b
}

// waitCommitting waits until the trickle commits more proposals, and checks
// a proposal of its own commits.
func (b *probeBundle) waitCommitting(t *testing.T) {
	t.Helper()
	start := b.committed.Load()
	waitFor(t, 20*time.Second, "the trickle to commit", func() bool { return b.committed.Load() >= start+3 })
	_, err := b.n1.h.Propose(testCtx(t, 10*time.Second), 1, []byte("check=1"))
	require.NoError(t, err)
}

// send sends data to addr on a connection of its own and waits until the
// member closes it. How it closes (a reset when it left bytes unread) does
// not matter: the probes' effects are checked on the member.
func send(t *testing.T, addr string, data []byte) {
	t.Helper()
	_ = hostile.Send(addr, data, 5*time.Second)
}

// validBatch is a batch a Dragonboat peer at src could send.
func validBatch(src string, msgs ...pb.Message) pb.MessageBatch {
	return pb.MessageBatch{
		SourceAddress: src,
		BinVer:        raftio.TransportBinVersion,
		DeploymentId:  1, // Dragonboat's deployment ID when none is configured
		Requests:      msgs,
	}
}

func TestInboundProbesDoNotTakeMemberDown(t *testing.T) {
	t.Parallel()
	b := setupProbe(t)
	addr := b.n1.cfg.RaftAddress
	h := b.n1.h
	hb := hostile.RaftHeartbeat()

	droppedBatch := func(t *testing.T, before, after TransportStats) {
		require.Equal(t, before.DroppedBatches+1, after.DroppedBatches)
	}
	badFrame := func(t *testing.T, before, after TransportStats) {
		require.Equal(t, before.BadFrames+1, after.BadFrames)
	}
	// What each of hostile.RaftProbes must do to n1's transport counters.
	checks := map[string]func(t *testing.T, before, after TransportStats){
		hostile.RaftProbeToZero:       droppedBatch,
		hostile.RaftProbeNotAnAddress: droppedBatch,
		hostile.RaftProbeForgedReplica: func(t *testing.T, before, after TransportStats) {
			require.Equal(t, before.DroppedBatches+1, after.DroppedBatches)
			require.Equal(t, before.AddressConflicts+1, after.AddressConflicts)
		},
		hostile.RaftProbeHuge:      badFrame,
		hostile.RaftProbeMaxSize:   badFrame,
		hostile.RaftProbeLocalType: droppedBatch,
		hostile.RaftProbeSnapshot:  droppedBatch,
		hostile.RaftProbeUnknownShard: func(t *testing.T, before, after TransportStats) {
			require.Equal(t, before.DroppedMessages+1, after.DroppedMessages)
		},
		hostile.RaftProbeBadMagic:     badFrame,
		hostile.RaftProbePoison:       func(t *testing.T, before, after TransportStats) { require.Equal(t, before, after) },
		hostile.RaftProbeRandomHeader: badFrame,
	}
	probes := hostile.RaftProbes(rand.New(rand.NewPCG(5, 6)), "127.0.0.1:9")
	require.Len(t, probes, len(checks))
	for _, p := range probes {
		t.Run(p.Name, func(t *testing.T) {
			check, ok := checks[p.Name]
			require.True(t, ok, "no check for probe %q", p.Name)
			require.Less(t, len(p.Bytes), 100, "a probe is under 100 bytes")
			before := h.TransportStats()
			send(t, addr, p.Bytes)
			waitFor(t, 5*time.Second, "the probe to be counted", func() bool {
				after := h.TransportStats()
				return after != before || p.Name == hostile.RaftProbePoison
			})
			check(t, before, h.TransportStats())
			b.waitCommitting(t)
		})
	}

	// Forged heartbeats whose commit index is past n1's log: Dragonboat
	// would panic in commitTo if one reached it.
	forged := []struct {
		name  string
		data  []byte
		check func(t *testing.T, before, after TransportStats)
	}{
		{"forged heartbeat claiming a member on another host", hostile.RaftBatch("10.200.0.1:7000",
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1, Commit: 1 << 40}), badFrame},
		// A NodeHost ID no member has: the transport cannot place it on
		// any host.
		{"batch from an unknown NodeHost ID", hostile.RaftBatch(NodeHostIDOf("stranger"),
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}), badFrame},
		// n1's own ID (on this host) claiming to be replica 2, which the
		// shard records at n2: the registry's conflict, refused.
		{"batch from a known NodeHost ID claiming another member's replica", hostile.RaftBatch(b.n1.target(),
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedBatches+1, after.DroppedBatches)
				require.Equal(t, before.AddressConflicts+1, after.AddressConflicts)
			}},
		// The same forgery in n2's name, by its NodeHost ID.
		{"forged heartbeat from a member's NodeHost ID, committing past the log", hostile.RaftBatch(b.n2.target(),
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1 << 20, Commit: 1 << 40}),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedMessages+1, after.DroppedMessages)
			}},
		{"forged heartbeat from a member's own address, committing past the log", hostile.RaftBatch(b.n2.cfg.RaftAddress,
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1 << 20, Commit: 1 << 40}),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedMessages+1, after.DroppedMessages)
			}},
	}
	for _, f := range forged {
		t.Run(f.name, func(t *testing.T) {
			before := h.TransportStats()
			send(t, addr, f.data)
			waitFor(t, 5*time.Second, "the probe to be counted", func() bool { return h.TransportStats() != before })
			f.check(t, before, h.TransportStats())
			b.waitCommitting(t)
		})
	}

	t.Run("truncated frames", func(t *testing.T) {
		full := hostile.Probe{Name: "heartbeat", Bytes: hostile.RaftBatch(b.n2.cfg.RaftAddress, hb)}
		for _, p := range hostile.Truncations(full, len(full.Bytes)) {
			send(t, addr, p.Bytes)
		}
		b.waitCommitting(t)
	})

	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		t.Logf("seed 1,2")
		for _, p := range hostile.RandomProbes(rng, "random", 150, 99, nil) {
			send(t, addr, p.Bytes)
		}
		// Past the magic number check.
		for _, p := range hostile.RandomProbes(rng, "random after magic", 150, 97, []byte(hostile.RaftMagic)) {
			send(t, addr, p.Bytes)
		}
		b.waitCommitting(t)
	})

	t.Run("corrupted valid frames", func(t *testing.T) {
		full := hostile.RaftBatch(b.n2.cfg.RaftAddress, hb)
		rng := rand.New(rand.NewPCG(3, 4))
		for range 200 {
			data := append([]byte(nil), full...)
			data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			send(t, addr, data)
		}
		b.waitCommitting(t)
	})
}

func TestInboundJunkConnectionsDoNotLeak(t *testing.T) {
	// Not parallel: it measures the process's goroutines and heap.
	b := setupProbe(t)
	addr := b.n1.cfg.RaftAddress

	goroutines := func() int { return runtime.NumGoroutine() }
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	baseG, baseHeap := goroutines(), heap()

	const conns, workers = 5000, 16
	failed := hostile.Junk(addr, conns, workers, hostile.RaftJunk()...)
	b.waitCommitting(t)

	// Connections that sent only a magic number wait out the header
	// deadline; everything else ends at once.
	var endG int
	waitFor(t, 30*time.Second, "goroutines to return to baseline", func() bool {
		endG = goroutines()
		return endG <= baseG+10
	})
	endHeap := heap()
	t.Logf("goroutines: %d before, %d after %d junk connections (%d dials failed); heap: %d KiB before, %d KiB after; stats %+v",
		baseG, endG, conns, failed, baseHeap>>10, endHeap>>10, b.n1.h.TransportStats())
	require.LessOrEqual(t, endHeap, 2*baseHeap+32<<20)
}

func TestInboundSnapshotChunkChecks(t *testing.T) {
	t.Parallel()
	reg := newNodeRegistry(testLogger(t, "reg"), &transportStats{}, nil, "")
	reg.setLocal(1, 2)
	in := &inbound{log: testLogger(t, "in"), reg: reg, stats: reg.stats}
	good := testChunk()
	require.Empty(t, in.checkChunk(good))
	last := good
	last.ChunkId, last.FileChunkId, last.ChunkCount = 3, 3, pb.LastChunkCount
	last.Data = []byte("x")
	require.Empty(t, in.checkChunk(last))

	bad := map[string]func(c *pb.Chunk){
		"no replica":     func(c *pb.Chunk) { c.ReplicaID = 0 },
		"to itself":      func(c *pb.Chunk) { c.From = 2 },
		"unknown shard":  func(c *pb.Chunk) { c.ShardID = 9 },
		"other replica":  func(c *pb.Chunk) { c.ReplicaID = 3 },
		"no index":       func(c *pb.Chunk) { c.Index = 0 },
		"poison":         func(c *pb.Chunk) { c.ChunkCount = pb.PoisonChunkCount },
		"external file":  func(c *pb.Chunk) { c.HasFileInfo = true },
		"file position":  func(c *pb.Chunk) { c.FileChunkId = 5 },
		"beyond count":   func(c *pb.Chunk) { c.ChunkId, c.FileChunkId, c.ChunkCount = 4, 4, 2 },
		"no file name":   func(c *pb.Chunk) { c.Filepath = "" },
		"dot file name":  func(c *pb.Chunk) { c.Filepath = "a/.." },
		"data too large": func(c *pb.Chunk) { c.Data = make([]byte, dragonboatChunkBytes+1) },
	}
	for name, mutate := range bad {
		c := good
		mutate(&c)
		require.NotEmpty(t, in.checkChunk(c), name)
	}
}

func TestFrameHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	var buf [frameHeaderSize]byte
	h := frameHeader{method: methodSnapshot, size: 12345, crc: 0xdeadbeef}
	got, err := decodeFrameHeader(h.encode(buf[:]))
	require.NoError(t, err)
	require.Equal(t, h, got)
	buf[3] ^= 1
	_, err = decodeFrameHeader(buf[:])
	require.ErrorIs(t, err, errBadHeader)

	// internal/hostile encodes frames independently; both agree.
	require.Equal(t, appendFrame(nil, methodRaft, []byte("payload")), hostile.RaftFrame([]byte("payload")))

	l := newFrameLimits(DefaultMaxBatchBytes)
	require.Equal(t, uint64(64<<20+1<<20+1<<20), l.maxBatchFrame)
}

// Batches and chunks a member's peer could send that pass frame decoding
// and addressing but, without the content checks of raftcheck.go, panic
// the member receiving them (or, for proposals, every member applying
// them). Each is sent from the other member's address in its name.
func TestInboundCraftedRaftContentDoesNotTakeMemberDown(t *testing.T) {
	t.Parallel()
	b := setupProbe(t)
	nodes := map[uint64]*testNode{1: b.n1, 2: b.n2}
	leader := waitLeader(t, b.n1.h, 1)
	follower := 3 - leader
	L, F := nodes[leader], nodes[follower]
	_, term, _, err := F.h.nh.GetLeaderID(1)
	require.NoError(t, err)
	require.NotZero(t, term)
	t.Logf("leader %d, follower %d, term %d", leader, follower, term)

	// toLeader and toFollower are messages from the other replica.
	toLeader := func(m pb.Message) (*testNode, []byte) {
		m.ShardID, m.From, m.To = 1, follower, leader
		return L, hostile.RaftBatch(F.cfg.RaftAddress, m)
	}
	toFollower := func(m pb.Message) (*testNode, []byte) {
		m.ShardID, m.From, m.To = 1, leader, follower
		return F, hostile.RaftBatch(L.cfg.RaftAddress, m)
	}
	chunk := testChunk()
	chunk.ReplicaID, chunk.From, chunk.DeploymentId = follower, leader, 1
	chunk.Index, chunk.Term = 1<<20, 1
	chunk.Filepath = snapshotFileName(chunk.Index)
	chunk.Membership.Addresses = map[uint64]string{1: b.n1.target(), 2: b.n2.target()}
	chunk.Data = chunk.Data[:10]
	payload, err := chunk.Marshal()
	require.NoError(t, err)

	messages := func(before, after TransportStats) bool { return after.DroppedMessages == before.DroppedMessages+1 }
	chunks := func(before, after TransportStats) bool { return after.DroppedChunks == before.DroppedChunks+1 }
	tests := []struct {
		name    string
		send    func() (*testNode, []byte)
		dropped func(before, after TransportStats) bool
	}{
		// handleNodeRequestPreVote: m.term < r.term.
		{"prevote without term", func() (*testNode, []byte) {
			return toLeader(pb.Message{Type: pb.RequestPreVote, LogIndex: 1 << 30, LogTerm: term})
		}, messages},
		// handleLeaderTransfer: leader transfer target not set.
		{"leader transfer without target", func() (*testNode, []byte) {
			return toLeader(pb.Message{Type: pb.LeaderTransfer})
		}, messages},
		// The leader takes the sender to hold every index: with the
		// sender's progress in retry its next index wraps to 0 and the next
		// Replicate finds no snapshot to send (got an empty snapshot); in
		// replicate state, as here, the leader never resends it what it
		// misses and the shard stops committing through it.
		{"replicate response at the last index", func() (*testNode, []byte) {
			return toLeader(pb.Message{Type: pb.ReplicateResp, Term: term, LogIndex: math.MaxUint64})
		}, messages},
		// Appended and committed, then every member panics applying it:
		// not session managed, not empty.
		{"proposal without session", func() (*testNode, []byte) {
			return toLeader(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.ApplicationEntry, Cmd: []byte("k=v")}}})
		}, messages},
		// Every member's state machine fails on it and Dragonboat panics.
		{"proposal not a command batch", func() (*testNode, []byte) {
			return toLeader(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.EncodedEntry, Key: 1, ClientID: 2,
				Cmd: []byte{encodedNoCompression, 9, 9}}}})
		}, messages},
		// Matches any index past the follower's log; appending there:
		// invalid high value.
		{"replicate previous entry without term", func() (*testNode, []byte) {
			return toFollower(pb.Message{Type: pb.Replicate, Term: term, LogIndex: 1 << 40,
				Entries: []pb.Entry{{Type: pb.ApplicationEntry, Index: 1<<40 + 1, Term: term}}})
		}, messages},
		// SnapshotValidator: first chunk is too small.
		{"first snapshot chunk shorter than a header", func() (*testNode, []byte) {
			return F, appendFrame(nil, methodSnapshot, payload)
		}, chunks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, data := tt.send()
			before := to.h.TransportStats()
			send(t, to.cfg.RaftAddress, data)
			waitFor(t, 5*time.Second, "the message to be refused", func() bool { return tt.dropped(before, to.h.TransportStats()) })
			b.waitCommitting(t)
		})
	}
}
