package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/stretchr/testify/require"
)

// capturingFactory is a transport factory that hands the test the
// message handler Dragonboat gives its transport (its transport's
// handleRequest), and sends nothing.
type capturingFactory struct{ handler chan raftio.MessageHandler }

func (f *capturingFactory) Create(_ config.NodeHostConfig, h raftio.MessageHandler, _ raftio.ChunkHandler) raftio.ITransport {
	f.handler <- h
	return nullTransport{}
}

func (f *capturingFactory) Validate(addr string) bool { return validAddress(addr) }

type nullTransport struct{}

func (nullTransport) Name() string { return "null" }
func (nullTransport) Start() error { return nil }
func (nullTransport) Close() error { return nil }
func (nullTransport) GetConnection(context.Context, string) (raftio.IConnection, error) {
	return nil, errors.New("null transport")
}

func (nullTransport) GetSnapshotConnection(context.Context, string) (raftio.ISnapshotConnection, error) {
	return nil, errors.New("null transport")
}

// conflicting are the inputs of both registry tests: batches that teach
// (shard 1, replica 2) one target and then contradict it.
var conflicting = []struct {
	name   string
	first  string
	second string
}{
	{"another address", "127.0.0.1:7002", "127.0.0.1:9999"},
	{"an invalid target", "127.0.0.1:7002", "not-an-address"},
}

// Dragonboat's own registry panics when a batch names a replica with a
// target that contradicts the recorded one (Registry.Add, reached from
// its transport's handleRequest): the input Graft's registry must survive.
func TestDragonboatRegistryPanicsOnConflicts(t *testing.T) {
	t.Parallel()
	routeDragonboatLogs(testLogger(t, "dragonboat"))
	for _, c := range conflicting {
		t.Run(c.name, func(t *testing.T) {
			f := &capturingFactory{handler: make(chan raftio.MessageHandler, 1)}
			nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
				NodeHostDir: t.TempDir(), RTTMillisecond: 10, RaftAddress: freeAddr(t),
				Expert: config.ExpertConfig{LogDB: defaultLogDB(), TransportFactory: f, Engine: engineConfig()},
			})
			require.NoError(t, err)
			defer nh.Close()
			handle := <-f.handler
			batch := func(src string) pb.MessageBatch {
				return validBatch(src, pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1})
			}
			require.NotPanics(t, func() { handle(batch(c.first)) })
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				handle(batch(c.second))
			}()
			require.NotNil(t, recovered, "Dragonboat's registry accepted %q after %q", c.second, c.first)
			t.Logf("Dragonboat's registry panicked: %v", recovered)
		})
	}
}

// The same inputs, and Dragonboat's other Add calls, never panic Graft's
// registry: the recorded target stays, the refusal is counted and the
// replica still resolves.
func TestNodeRegistryRefusesConflictsWithoutPanicking(t *testing.T) {
	t.Parallel()
	for _, c := range conflicting {
		t.Run(c.name, func(t *testing.T) {
			stats := &transportStats{}
			r := newNodeRegistry(testLogger(t, "reg"), stats, nil, "")
			require.NotPanics(t, func() {
				r.Add(1, 2, c.first)
				r.Add(1, 2, c.second)
			})
			addr, _, err := r.Resolve(1, 2)
			require.NoError(t, err)
			require.Equal(t, c.first, addr)
			require.Equal(t, uint64(1), stats.conflicts.Load())
		})
	}
}

// idDir is a Directory of fixed answers.
type idDir map[string]string

func (d idDir) RaftAddress(id string) (string, bool) {
	addr, ok := d[id]
	return addr, ok
}

func TestNodeRegistryRules(t *testing.T) {
	t.Parallel()
	a, b := NodeHostIDOf("a"), NodeHostIDOf("b")
	unknown := NodeHostIDOf("stranger")
	self := NodeHostIDOf("self")
	dir := idDir{a: "10.0.0.1:7000", b: "10.0.0.2:7000"}
	stats := &transportStats{}
	r := newNodeRegistry(testLogger(t, "reg"), stats, dir, "10.0.0.9:7000")
	_, err := registryFactory{r}.Create(self, 4, nil)
	require.NoError(t, err)

	// A NodeHost ID resolves to its member's Raft address, this Host's
	// own to its own; connections are partitioned by shard as in
	// Dragonboat's registry.
	r.Add(1, 1, self)
	r.Add(1, 2, a)
	addr, key, err := r.Resolve(1, 2)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:7000", addr)
	require.Equal(t, "10.0.0.1:7000-1", key)
	addr, _, err = r.Resolve(1, 1)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.9:7000", addr)

	// Unknown replicas and IDs no member has do not resolve.
	_, _, err = r.Resolve(1, 7)
	require.ErrorIs(t, err, errUnknownTarget)
	r.Add(1, 3, unknown)
	_, _, err = r.Resolve(1, 3)
	require.ErrorIs(t, err, errUnknownTarget)
	require.Zero(t, stats.conflicts.Load())

	// Another member's ID, or another address, for a committed target
	// is refused; the recorded target stays.
	r.Add(1, 2, b)
	ok, rec, reason := r.learn(1, 2, "10.0.0.2:7000")
	require.False(t, ok)
	require.Equal(t, a, rec)
	require.Equal(t, reasonConflictTarget, reason)
	require.Equal(t, uint64(1), stats.conflicts.Load(), "learn counts nothing: the inbound filter does")
	ok, _ = r.consistent(1, 2, b)
	require.False(t, ok)

	// A target naming the same member is accepted: a shard created
	// before NodeHost ID targets names replica 2 by address, its batches
	// carry the ID.
	r.Add(2, 2, "10.0.0.1:7000")
	ok, rec, _ = r.learn(2, 2, a)
	require.True(t, ok)
	require.Equal(t, "10.0.0.1:7000", rec, "the recorded target is kept")
	ok, _ = r.consistent(2, 2, a)
	require.True(t, ok)
	ok, _ = r.consistent(2, 2, b)
	require.False(t, ok)
	addr, _, err = r.Resolve(2, 2)
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:7000", addr, "an address target resolves to itself")

	// A learned target gives way to a committed one, never the reverse.
	ok, _, _ = r.learn(3, 2, b)
	require.True(t, ok)
	r.Add(3, 2, a)
	target, _ := r.target(3, 2)
	require.Equal(t, a, target)
	ok, _, _ = r.learn(3, 2, b)
	require.False(t, ok)

	// Invalid targets and non-canonical spellings of an ID are refused.
	before := stats.conflicts.Load()
	for _, bad := range []string{"", "not-an-address", "10.0.0.1", "{" + a + "}", "urn:uuid:" + a} {
		r.Add(4, 2, bad)
		_, found := r.target(4, 2)
		require.False(t, found, "%q recorded", bad)
	}
	require.Equal(t, before+5, stats.conflicts.Load())
	r.Add(0, 2, a)
	r.Add(4, 0, a)

	r.Remove(1, 2)
	_, _, err = r.Resolve(1, 2)
	require.ErrorIs(t, err, errUnknownTarget)
	r.RemoveShard(2)
	_, _, err = r.Resolve(2, 2)
	require.ErrorIs(t, err, errUnknownTarget)
	require.NoError(t, r.Close())
}

// Concurrent Adds of conflicting targets, learns, resolves and removals
// (run with -race) leave each replica with one of its candidates.
func TestNodeRegistryConcurrentUse(t *testing.T) {
	t.Parallel()
	ids := []string{NodeHostIDOf("a"), NodeHostIDOf("b"), NodeHostIDOf("c")}
	dir := idDir{ids[0]: "10.0.0.1:7000", ids[1]: "10.0.0.2:7000", ids[2]: "10.0.0.3:7000"}
	r := newNodeRegistry(discardLogger(), &transportStats{}, dir, "10.0.0.9:7000")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				s, rid := uint64(i%5+1), uint64(i%3+1)
				target := ids[(i+w)%3]
				switch i % 4 {
				case 0:
					r.Add(s, rid, target)
				case 1:
					r.learn(s, rid, dir[target])
				case 2:
					_, _, _ = r.Resolve(s, rid)
					r.consistent(s, rid, target)
				case 3:
					if i%40 == 3 {
						r.Remove(s, rid)
					}
				}
			}
		})
	}
	wg.Wait()
	for s := uint64(1); s <= 5; s++ {
		for rid := uint64(1); rid <= 3; rid++ {
			if target, ok := r.target(s, rid); ok {
				addr, _, err := r.Resolve(s, rid)
				require.NoError(t, err, "shard %d replica %d target %s", s, rid, target)
				require.Contains(t, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}, addr, fmt.Sprint(s, rid))
			}
		}
	}
}

// A batch whose source is a NodeHost ID no member is known by is dropped
// whole; one from a known member's ID, for the replica recorded at that
// member, passes.
func TestInboundFilterMapsNodeHostIDs(t *testing.T) {
	t.Parallel()
	a, b := NodeHostIDOf("a"), NodeHostIDOf("b")
	stats := &transportStats{}
	reg := newNodeRegistry(testLogger(t, "reg"), stats, idDir{a: "10.0.0.1:7000", b: "10.0.0.2:7000"}, "10.0.0.9:7000")
	reg.setLocal(1, 1)
	reg.Add(1, 2, a)
	in := &inbound{log: testLogger(t, "in"), reg: reg, stats: stats}
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}

	_, ok := in.filterBatch(validBatch(NodeHostIDOf("stranger"), hb))
	require.False(t, ok, "unknown NodeHost ID")
	require.Equal(t, uint64(1), stats.droppedBatches.Load())

	_, ok = in.filterBatch(validBatch(b, hb))
	require.False(t, ok, "another member's ID for replica 2")
	require.Equal(t, uint64(2), stats.droppedBatches.Load())
	require.Equal(t, uint64(1), stats.conflicts.Load())

	_, ok = in.filterBatch(validBatch("{"+a+"}", hb))
	require.False(t, ok, "non-canonical ID")

	out, ok := in.filterBatch(validBatch(a, hb))
	require.True(t, ok)
	require.Equal(t, []pb.Message{hb}, out.Requests)
	// The member's Raft address speaks for it too (members of earlier
	// versions send it).
	_, ok = in.filterBatch(validBatch("10.0.0.1:7000", hb))
	require.True(t, ok)
}

// lockedBuf is a bytes.Buffer safe for concurrent writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A refusal is logged once per shard replica and reason, and counted
// every time.
func TestNodeRegistryLogsEachRefusalOnce(t *testing.T) {
	t.Parallel()
	var logs lockedBuf
	stats := &transportStats{}
	r := newNodeRegistry(slog.New(slog.NewTextHandler(&logs, nil)), stats, nil, "")
	r.Add(1, 2, "127.0.0.1:7002")
	for range 3 {
		r.Add(1, 2, "127.0.0.1:9999") // conflict, replica 2
		r.Add(1, 3, "not-an-address") // invalid, replica 3
	}
	r.Add(1, 2, "bad target") // invalid, replica 2
	r.Add(2, 2, "127.0.0.1:7002")
	r.Add(2, 2, "127.0.0.1:9999") // conflict, shard 2
	require.Equal(t, uint64(8), stats.conflicts.Load())
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 4, logs.String())
	for i, want := range []string{
		`graft.shard.id=1 graft.replica.id=2 reason="` + reasonConflictTarget,
		`graft.shard.id=1 graft.replica.id=3 reason="` + reasonInvalidTarget,
		`graft.shard.id=1 graft.replica.id=2 reason="` + reasonInvalidTarget,
		`graft.shard.id=2 graft.replica.id=2 reason="` + reasonConflictTarget,
	} {
		require.Contains(t, lines[i], want)
	}
	require.Contains(t, lines[2], "recorded=127.0.0.1:7002", "the recorded target is named")
}
