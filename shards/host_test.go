package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/lni/dragonboat/v4"
	"github.com/stretchr/testify/require"
)

func startSingle(t *testing.T, n *testNode, shardID uint64) {
	t.Helper()
	require.NoError(t, n.h.StartShard(shardID, 1, map[uint64]string{1: n.target()}, false))
	require.Equal(t, uint64(1), waitLeader(t, n.h, shardID))
}

func TestSingleReplicaElectsLeader(t *testing.T) {
	t.Parallel()
	type change struct{ shard, leader, term uint64 }
	changes := make(chan change, 16)
	n := newTestNode(t, "n1", Config{
		OnLeaderChange: func(shardID, leaderReplicaID, term uint64) {
			select {
			case changes <- change{shardID, leaderReplicaID, term}:
			default:
			}
		},
	})
	startSingle(t, n, 1)
	require.True(t, n.h.IsLeader(1))
	id, ok := n.h.LeaderID(1)
	require.True(t, ok)
	require.Equal(t, uint64(1), id)
	require.False(t, n.h.IsLeader(2))

	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.shard == 1 && c.leader == 1 {
				require.NotZero(t, c.term)
				return
			}
		case <-deadline:
			require.FailNow(t, "OnLeaderChange not called")
		}
	}
}

func TestConcurrentProposeGroupCommit(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "n1", Config{})
	startSingle(t, n, 1)
	ctx := testCtx(t, 30*time.Second)

	const workers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	seen := make(chan uint64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				cmd := fmt.Sprintf("w%d-%d=v%d", w, i, i)
				res, err := n.h.Propose(ctx, 1, []byte(cmd))
				if err != nil {
					errs <- err
					return
				}
				got, num, ok := strings.Cut(string(res), "@")
				if !ok || got != cmd {
					errs <- fmt.Errorf("result %q for command %q", res, cmd)
					return
				}
				v, err := strconv.ParseUint(num, 10, 64)
				if err != nil {
					errs <- err
					return
				}
				seen <- v
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	close(seen)
	counters := map[uint64]bool{}
	for v := range seen {
		require.False(t, counters[v], "counter %d returned twice", v)
		counters[v] = true
	}
	require.Len(t, counters, workers*each)

	// Group commit really packed several commands into one raft entry.
	perIndex, dups, applied, _ := n.logics.latest(t, 1).stats()
	require.Zero(t, dups)
	maxPerIndex := 0
	for _, c := range perIndex {
		maxPerIndex = max(maxPerIndex, c)
	}
	require.Greater(t, maxPerIndex, 1, "no raft entry held more than one command")
	s, err := n.h.shard(1)
	require.NoError(t, err)
	require.Less(t, s.stats.proposals.Load(), uint64(workers*each))
	require.Equal(t, uint64(workers*each), s.stats.commands.Load())
	t.Logf("%d commands in %d proposals, largest entry %d commands", s.stats.commands.Load(), s.stats.proposals.Load(), maxPerIndex)

	// Reads after the proposals completed see all of them.
	want := strconv.Itoa(workers * each)
	got, err := n.h.Read(ctx, 1, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	got, err = n.h.LocalRead(1, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	got, err = n.h.Read(ctx, 1, []byte("kv/w3-7"))
	require.NoError(t, err)
	require.Equal(t, "v7", string(got))
	require.NotZero(t, applied)

	// Logic errors from Lookup come back unchanged.
	_, err = n.h.Read(ctx, 1, []byte("bogus"))
	require.ErrorContains(t, err, "unknown query")
}

func TestReadSeesEachPropose(t *testing.T) {
	t.Parallel()
	// The state DB lives on an in-memory FS: the FS hook is honoured.
	fs := vfs.NewMem()
	n := newTestNode(t, "n1", Config{FS: fs})
	// No waiting for a leader: Propose and Read retry until one is elected.
	require.NoError(t, n.h.StartShard(1, 1, map[uint64]string{1: n.target()}, false))
	ctx := testCtx(t, 20*time.Second)
	got, err := n.h.Read(ctx, 1, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, "0", string(got))
	for i := 1; i <= 20; i++ {
		_, err := n.h.Propose(ctx, 1, fmt.Appendf(nil, "k=%d", i))
		require.NoError(t, err)
		got, err := n.h.Read(ctx, 1, []byte("kv/k"))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), string(got))
	}
	files, err := fs.List(filepath.Join(n.cfg.DataDir, "state"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	_, err = os.Stat(filepath.Join(n.cfg.DataDir, "state"))
	require.ErrorIs(t, err, os.ErrNotExist, "state DB must not touch the real FS")
}

func TestRestartKeepsStateAndAppliesOnce(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := Config{DataDir: dir, RaftAddress: addr, SnapshotEntries: 30, CompactionOverhead: 5}
	ctx := testCtx(t, 30*time.Second)

	n1 := newTestNode(t, "n1", cfg)
	startSingle(t, n1, 1)
	for i := range 50 {
		_, err := n1.h.Propose(ctx, 1, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	hash1, applied1, err := n1.h.StateHash(1)
	require.NoError(t, err)
	require.NoError(t, n1.h.Close())
	require.NoError(t, n1.h.Close(), "second Close")

	n2 := newTestNode(t, "n1-restarted", cfg)
	// Restart-safe: members are ignored because the replica exists on disk.
	require.NoError(t, n2.h.StartShard(1, 1, map[uint64]string{1: n2.target(), 2: NodeHostIDOf("gone")}, false))
	waitLeader(t, n2.h, 1)
	got, err := n2.h.Read(ctx, 1, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, "50", string(got))
	hash2, applied2, err := n2.h.StateHash(1)
	require.NoError(t, err)
	require.Equal(t, hash1, hash2)
	require.GreaterOrEqual(t, applied2, applied1)

	res, err := n2.h.Propose(ctx, 1, []byte("after=restart"))
	require.NoError(t, err)
	require.Equal(t, "after=restart@51", string(res))

	l := n2.logics.latest(t, 1)
	perIndex, dups, _, opens := l.stats()
	require.Zero(t, dups, "an entry was applied twice")
	require.GreaterOrEqual(t, opens, 1)
	for idx := range perIndex {
		require.Greater(t, idx, applied1, "index %d re-applied after restart", idx)
	}
}

func TestThreeReplicas(t *testing.T) {
	t.Parallel()
	nodes := make([]*testNode, 3)
	addrs := map[uint64]string{}
	dir := &testDir{}
	for i := range nodes {
		nodes[i] = newTestNode(t, fmt.Sprintf("n%d", i+1), Config{Directory: dir})
		addrs[uint64(i+1)] = nodes[i].target()
	}
	for i, n := range nodes {
		require.NoError(t, n.h.StartShard(5, uint64(i+1), addrs, false))
	}
	leader := waitLeader(t, nodes[0].h, 5)
	ctx := testCtx(t, 30*time.Second)

	// Propose through a follower: Dragonboat forwards to the leader.
	follower := nodes[leader%3]
	require.False(t, follower.h.IsLeader(5))
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			_, err := follower.h.Propose(ctx, 5, fmt.Appendf(nil, "k%d=%d", i, i))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	for _, n := range nodes {
		got, err := n.h.Read(ctx, 5, []byte("n"))
		require.NoError(t, err)
		require.Equal(t, "30", string(got))
	}
	// Every replica converges to the same state.
	hash0, applied0, err := nodes[0].h.StateHash(5)
	require.NoError(t, err)
	for _, n := range nodes[1:] {
		waitFor(t, 10*time.Second, "replica convergence", func() bool {
			h, a, err := n.h.StateHash(5)
			return err == nil && h == hash0 && a == applied0
		})
	}
}

func TestProposeWithoutQuorumTimesOut(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "n1", Config{})
	// Replica 2 never starts, so there is never a leader.
	require.NoError(t, n.h.StartShard(1, 1, map[uint64]string{1: n.target(), 2: NodeHostIDOf("never-started")}, false))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := n.h.Propose(ctx, 1, []byte("a=b"))
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, IsRetryable(err))

	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = n.h.Read(ctx2, 1, []byte("n"))
	require.ErrorIs(t, err, ErrTimeout)

	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	_, err = n.h.Propose(ctx3, 1, []byte("a=b"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestUnknownShardAndClose(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "n1", Config{})
	startSingle(t, n, 1)
	ctx := testCtx(t, 10*time.Second)

	_, err := n.h.Propose(ctx, 99, []byte("x=y"))
	require.ErrorIs(t, err, ErrShardNotFound)
	_, err = n.h.Read(ctx, 99, []byte("n"))
	require.ErrorIs(t, err, ErrShardNotFound)
	_, err = n.h.LocalRead(99, []byte("n"))
	require.ErrorIs(t, err, ErrShardNotFound)
	require.False(t, IsRetryable(err))
	require.Error(t, n.h.StartShard(1, 1, nil, false), "double start")

	// Callers blocked in Propose when Close runs get ErrClosed or succeed.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := 0; ; j++ {
				_, err := n.h.Propose(ctx, 1, fmt.Appendf(nil, "c%d=%d", i, j))
				if err != nil {
					require.ErrorIs(t, err, ErrClosed)
					return
				}
			}
		})
	}
	require.NoError(t, n.h.Close())
	require.NoError(t, n.h.Close())
	wg.Wait()

	_, err = n.h.Propose(ctx, 1, []byte("x=y"))
	require.ErrorIs(t, err, ErrClosed)
	_, err = n.h.Read(ctx, 1, []byte("n"))
	require.ErrorIs(t, err, ErrClosed)
	_, err = n.h.LocalRead(1, []byte("n"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, n.h.StartShard(2, 1, nil, false), ErrClosed)
	require.False(t, n.h.IsLeader(1))
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	newLogic := func(uint64) Logic { return newTestLogic() }
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"RaftAddress", "DataDir", "NewLogic"}},
		{"no address", Config{DataDir: "/tmp/x", NewLogic: newLogic}, []string{"RaftAddress"}},
		{"no data dir", Config{RaftAddress: "127.0.0.1:1", NewLogic: newLogic}, []string{"DataDir"}},
		{"no logic", Config{RaftAddress: "127.0.0.1:1", DataDir: "/tmp/x"}, []string{"NewLogic"}},
		{"election rtt", Config{RaftAddress: "127.0.0.1:1", DataDir: "/tmp/x", NewLogic: newLogic, ElectionRTT: 4, HeartbeatRTT: 2}, []string{"ElectionRTT (4)", "HeartbeatRTT (2)"}},
		{"negative batch", Config{RaftAddress: "127.0.0.1:1", DataDir: "/tmp/x", NewLogic: newLogic, MaxBatchBytes: -1, MaxInflight: -1}, []string{"MaxBatchBytes", "MaxInflight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			h, err := NewHost(cfg)
			require.Nil(t, h)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			// NewHost does not fill defaults into the caller's config.
			require.Zero(t, cfg.RTTMillisecond)
			require.Nil(t, cfg.Logger)
			require.True(t, cfg.LogDB.IsEmpty())
		})
	}
	require.NoError(t, Config{RaftAddress: "127.0.0.1:1", DataDir: "/tmp/x", NewLogic: newLogic}.Validate())
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	require.True(t, IsRetryable(fmt.Errorf("x: %w", ErrNotReady)))
	require.True(t, IsRetryable(errDropped))
	require.False(t, IsRetryable(ErrClosed))
	require.False(t, IsRetryable(nil))
	require.NoError(t, translate(nil))
	for db, want := range map[error]error{
		dragonboat.ErrShardNotReady: ErrNotReady,
		dragonboat.ErrSystemBusy:    ErrNotReady,
		dragonboat.ErrClosed:        ErrClosed,
		dragonboat.ErrShardNotFound: ErrShardNotFound,
		dragonboat.ErrTimeout:       ErrTimeout,
	} {
		got := translate(fmt.Errorf("ctx: %w", db))
		require.ErrorIs(t, got, want)
		require.ErrorContains(t, got, db.Error(), "original text kept")
		require.True(t, strings.HasPrefix(got.Error(), "graft: shards: "), got.Error())
	}
	other := errors.New("other")
	require.Equal(t, other, translate(other))
}

// With one of three hosts closed, the other two keep committing on every
// shard, including shards the closed host led: a proposal lost with the
// old leader is proposed again.
func TestSurvivesAClosedHost(t *testing.T) {
	t.Parallel()
	nodes := make([]*testNode, 3)
	addrs := map[uint64]string{}
	dir := &testDir{}
	for i := range nodes {
		nodes[i] = newTestNode(t, fmt.Sprintf("n%d", i+1), Config{Directory: dir})
		addrs[uint64(i+1)] = nodes[i].target()
	}
	for s := uint64(1); s <= 4; s++ {
		for i, n := range nodes {
			require.NoError(t, n.h.StartShard(s, uint64(i+1), addrs, false))
		}
	}
	for s := uint64(1); s <= 4; s++ {
		waitLeader(t, nodes[0].h, s)
	}
	require.NoError(t, nodes[2].h.Close())
	for round := range 3 {
		for s := uint64(1); s <= 4; s++ {
			for _, n := range nodes[:2] {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := n.h.Propose(ctx, s, fmt.Appendf(nil, "r%d=%d", round, s))
				cancel()
				require.NoError(t, err, "round %d shard %d via %s", round, s, n.cfg.NodeID)
			}
		}
	}
}
