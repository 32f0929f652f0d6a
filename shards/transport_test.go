package shards

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	b := &probeBundle{n1: newTestNode(t, "n1", Config{}), n2: newTestNode(t, "n2", Config{})}
	members := map[uint64]string{1: b.n1.cfg.RaftAddress, 2: b.n2.cfg.RaftAddress}
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

// send dials addr, writes data and closes the connection.
func send(t *testing.T, addr string, data []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	_, _ = c.Write(data)
	require.NoError(t, c.Close())
}

// batchFrame is a complete raft frame carrying batch.
func batchFrame(t testing.TB, batch pb.MessageBatch) []byte {
	t.Helper()
	data, err := batch.Marshal()
	require.NoError(t, err)
	return appendFrame(nil, methodRaft, data)
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

// hugeHeader is a valid magic number and header declaring a payload of size
// bytes, with no payload.
func hugeHeader(size uint64) []byte {
	out := append([]byte(nil), frameMagic[:]...)
	var hb [frameHeaderSize]byte
	return append(out, frameHeader{method: methodRaft, size: size}.encode(hb[:])...)
}

func TestInboundProbesDoNotTakeMemberDown(t *testing.T) {
	t.Parallel()
	b := setupProbe(t)
	addr := b.n1.cfg.RaftAddress
	h := b.n1.h
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}

	type probe struct {
		name  string
		data  []byte
		check func(t *testing.T, before, after TransportStats)
	}
	toZero := hb
	toZero.To = 0
	droppedBatch := func(t *testing.T, before, after TransportStats) {
		require.Equal(t, before.DroppedBatches+1, after.DroppedBatches)
	}
	badFrame := func(t *testing.T, before, after TransportStats) {
		require.Equal(t, before.BadFrames+1, after.BadFrames)
	}
	probes := []probe{
		{"message with To=0", batchFrame(t, validBatch("127.0.0.1:1", toZero)), droppedBatch},
		{"source address not an address", batchFrame(t, validBatch("not-an-address", hb)), droppedBatch},
		{"replica 2 from an unknown address", batchFrame(t, validBatch("127.0.0.1:9", hb)),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedBatches+1, after.DroppedBatches)
				require.Equal(t, before.AddressConflicts+1, after.AddressConflicts)
			}},
		{"1 TiB payload declared", hugeHeader(1 << 40), badFrame},
		{"max uint64 payload declared", hugeHeader(^uint64(0)), badFrame},
		{"local message type", batchFrame(t, validBatch("127.0.0.1:9", pb.Message{Type: pb.LocalTick, ShardID: 1, From: 3, To: 1})), droppedBatch},
		{"install snapshot in a batch", batchFrame(t, validBatch("127.0.0.1:9", pb.Message{Type: pb.InstallSnapshot, ShardID: 1, From: 3, To: 1})), droppedBatch},
		{"unknown shard", batchFrame(t, validBatch("127.0.0.1:9", pb.Message{Type: pb.Heartbeat, ShardID: 77, From: 3, To: 1})),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedMessages+1, after.DroppedMessages)
			}},
		{"forged heartbeat claiming a member on another host", batchFrame(t, validBatch("10.200.0.1:7000",
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1, Commit: 1 << 40})), badFrame},
		{"forged heartbeat from a member's own address, committing past the log", batchFrame(t, validBatch(b.n2.cfg.RaftAddress,
			pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1 << 20, Commit: 1 << 40})),
			func(t *testing.T, before, after TransportStats) {
				require.Equal(t, before.DroppedMessages+1, after.DroppedMessages)
			}},
		{"bad magic", []byte("GET / HTTP/1.0\r\n\r\n"), badFrame},
		{"poison only", framePoison[:], func(t *testing.T, before, after TransportStats) { require.Equal(t, before, after) }},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			require.Less(t, len(p.data), 100, "a probe is under 100 bytes")
			before := h.TransportStats()
			send(t, addr, p.data)
			waitFor(t, 5*time.Second, "the probe to be counted", func() bool {
				after := h.TransportStats()
				return after != before || p.name == "poison only"
			})
			p.check(t, before, h.TransportStats())
			b.waitCommitting(t)
		})
	}

	t.Run("truncated frames", func(t *testing.T) {
		full := batchFrame(t, validBatch(b.n2.cfg.RaftAddress, hb))
		for cut := 1; cut < len(full); cut++ {
			send(t, addr, full[:cut])
		}
		b.waitCommitting(t)
	})

	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		t.Logf("seed 1,2")
		for range 300 {
			data := make([]byte, 1+rng.IntN(99))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 { // get past the magic number check
				copy(data, frameMagic[:])
			}
			send(t, addr, data)
		}
		b.waitCommitting(t)
	})

	t.Run("corrupted valid frames", func(t *testing.T) {
		full := batchFrame(t, validBatch(b.n2.cfg.RaftAddress, hb))
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
	junk := [][]byte{
		nil,                 // connect and close
		[]byte("hello"),     // bad magic
		frameMagic[:],       // magic, then nothing
		hugeHeader(1 << 40), // huge length prefix
		append(frameMagic[:2:2], make([]byte, 10)...), // truncated header
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= conns {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					continue
				}
				_, _ = c.Write(junk[i%int64(len(junk))])
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	b.waitCommitting(t)

	// Connections that sent only a magic number wait out the header
	// deadline; everything else ends at once.
	var endG int
	waitFor(t, 30*time.Second, "goroutines to return to baseline", func() bool {
		endG = goroutines()
		return endG <= baseG+10
	})
	endHeap := heap()
	t.Logf("goroutines: %d before, %d after %d junk connections; heap: %d KiB before, %d KiB after; stats %+v",
		baseG, endG, conns, baseHeap>>10, endHeap>>10, b.n1.h.TransportStats())
	require.LessOrEqual(t, endHeap, 2*baseHeap+32<<20)
}

func TestInboundSnapshotChunkChecks(t *testing.T) {
	t.Parallel()
	reg := newNodeRegistry(testLogger(t, "reg"), &transportStats{})
	reg.setLocal(1, 2)
	in := &inbound{log: testLogger(t, "in"), reg: reg, stats: reg.stats}
	good := pb.Chunk{ShardID: 1, ReplicaID: 2, From: 1, Index: 10, Term: 2, Filepath: "snapshot-000000000000000A.gbsnap",
		BinVer: raftio.TransportBinVersion, Data: []byte("x")}
	require.Empty(t, in.checkChunk(good))
	last := good
	last.ChunkId, last.FileChunkId, last.ChunkCount = 3, 3, pb.LastChunkCount
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

func TestNodeRegistryRefusesConflicts(t *testing.T) {
	t.Parallel()
	stats := &transportStats{}
	r := newNodeRegistry(testLogger(t, "reg"), stats)
	ok, _ := r.learn(1, 2, "127.0.0.1:7002")
	require.True(t, ok)
	ok, rec := r.learn(1, 2, "127.0.0.1:9999")
	require.False(t, ok)
	require.Equal(t, "127.0.0.1:7002", rec)

	// Committed membership replaces a learned address...
	r.Add(1, 2, "127.0.0.1:7102")
	addr, _, err := r.Resolve(1, 2)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7102", addr)
	// ...but nothing replaces a committed one.
	r.Add(1, 2, "127.0.0.1:7202")
	ok, _ = r.learn(1, 2, "127.0.0.1:7002")
	require.False(t, ok)
	addr, _, _ = r.Resolve(1, 2)
	require.Equal(t, "127.0.0.1:7102", addr)
	require.Equal(t, uint64(1), stats.conflicts.Load())

	r.Add(1, 3, "not-an-address")
	_, _, err = r.Resolve(1, 3)
	require.ErrorIs(t, err, errUnknownTarget)

	// The same member coming back with the same address is no conflict.
	r.Add(1, 2, "127.0.0.1:7102")
	ok, _ = r.learn(1, 2, "127.0.0.1:7102")
	require.True(t, ok)

	r.RemoveShard(1)
	_, _, err = r.Resolve(1, 2)
	require.ErrorIs(t, err, errUnknownTarget)
	require.NoError(t, r.Close())
}

func TestDragonboatRegistryPanicIsLogged(t *testing.T) {
	t.Parallel()
	routeDragonboatLogs(testLogger(t, "log"))
	reg := &dragonboatLogger{pkg: "registry", level: 4}
	require.NotPanics(t, func() { reg.Panicf("inconsistent target for %s", "[00001:00002]") })
	other := &dragonboatLogger{pkg: "dragonboat", level: 4}
	require.Panics(t, func() { other.Panicf("to field not set, %s", "Heartbeat") })
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

	l := newFrameLimits(DefaultMaxBatchBytes)
	require.Equal(t, uint64(64<<20+1<<20+1<<20), l.maxBatchFrame)
}
