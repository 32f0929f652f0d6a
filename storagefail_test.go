package graft_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// ioFailFS is the real file system, except that once switched on every
// write and fsync of a file under one directory fails with EIO, as on a
// failing disk.
type ioFailFS struct {
	vfs.FS
	under  string
	on     atomic.Bool
	failed atomic.Int64
}

func (f *ioFailFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	return f.wrap(name, file, err)
}

func (f *ioFailFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.Open(name, opts...)
	return f.wrap(name, file, err)
}

func (f *ioFailFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname)
	return f.wrap(newname, file, err)
}

// wrap returns file, and a failing one for a file under f.under.
func (f *ioFailFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	osf, ok := file.(*os.File)
	if !ok || !strings.HasPrefix(name, f.under+string(filepath.Separator)) {
		return file, nil
	}
	return &ioFailFile{File: osf, fs: f}, nil
}

// fail returns the error of a failed op once the FS is switched on.
func (f *ioFailFS) fail(op, name string) error {
	if !f.on.Load() {
		return nil
	}
	f.failed.Add(1)
	return &os.PathError{Op: op, Path: name, Err: syscall.EIO}
}

type ioFailFile struct {
	*os.File
	fs *ioFailFS
}

func (f *ioFailFile) Write(p []byte) (int, error) {
	if err := f.fs.fail("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *ioFailFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail("write", f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *ioFailFile) Sync() error {
	if err := f.fs.fail("sync", f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

// The Raft log's disk starts failing every write and fsync (EIO) under a
// running member. Dragonboat cannot go on after a failed log write, and
// would leave the member frozen while it looked alive; instead the member
// stops by itself and says why: readiness "storage-failed", Health neither
// live nor ready with the failure named, the liveness and readiness probes
// answer 503, StartWorkflow and WaitUntilReady return ErrClosed naming the
// failure, and the process is not ended. Restarted on the repaired disk it
// has every workflow acknowledged before the failure, and finishes them.
func TestStorageFailureStopsTheMember(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs := &ioFailFS{FS: vfs.Default, under: filepath.Join(dir, "raft")}
	// B waits (its CanStart says no) until the member runs on a repaired
	// disk.
	newMember := func(fs vfs.FS, bMayRun bool) *graft.Manager {
		cfg := graft.DefaultConfig("n1", freeAddr(t), dir)
		cfg.Logger = testLogger(t, "n1")
		cfg.Cluster.ShardCount = 2
		cfg.Engine.RetryDelay = 5 * time.Millisecond
		cfg.Engine.MaxRetryDelay = 20 * time.Millisecond
		cfg.Engine.DrainTimeout = 2 * time.Second
		cfg.Expert.FS = fs
		m := graft.NewWithConfig(cfg)
		register(t, m,
			fnNode("A", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				return &graft.NodeResult{GlobalState: s, NextNodes: next("B")}, nil
			}),
			&gatedNode{mapNode: *fnNode("B", func(_ context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
				s["b"] = true
				return &graft.NodeResult{GlobalState: s}, nil
			}), can: func(map[string]any) bool { return bMayRun }})
		return m
	}
	m := newMember(fs, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = m.Stop()
		}
	})

	// Workflows acknowledged before the failure, waiting for B.
	var acked []string
	for i := range 5 {
		id := fmt.Sprintf("before-%d", i)
		require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}}))
		acked = append(acked, id)
	}
	for _, id := range acked {
		pollStatus(t, m, id, "waiting for B", func(s *graft.WorkflowStatus) bool {
			return len(s.ExecutedNodes) == 1 && len(s.PendingNodes) == 1
		})
	}

	fs.on.Store(true)
	// The next start writes the Raft log; it fails, or times out.
	err := m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "during", InitialNodes: []graft.NodeConfig{{Name: "A"}}})
	require.Error(t, err, "a start whose Raft log write failed cannot be acknowledged")
	select {
	case <-m.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("the member did not stop after its storage failed; readiness %q, health %+v", m.GetReadinessState(), m.Health())
	}
	require.NotZero(t, fs.failed.Load())

	require.Equal(t, graft.ReadinessStorageFailed, m.GetReadinessState())
	require.False(t, m.IsReady())
	h := m.Health()
	require.False(t, h.Live, "a member whose storage failed must be restarted")
	require.False(t, h.Ready)
	require.Equal(t, graft.ReadinessStorageFailed, h.State)
	var storage graft.HealthCheck
	for _, c := range h.Checks {
		if c.Name == "storage" {
			storage = c
		}
	}
	require.False(t, storage.OK)
	require.Contains(t, storage.Detail, "input/output error")
	require.Contains(t, storage.Detail, filepath.Join(dir, "raft"))
	for _, probe := range []http.Handler{m.LivezHandler(), m.ReadyzHandler()} {
		rec := httptest.NewRecorder()
		probe.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/probe", nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	}

	err = m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: "after", InitialNodes: []graft.NodeConfig{{Name: "A"}}})
	require.ErrorIs(t, err, graft.ErrClosed)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorContains(t, err, "storage failed")
	err = m.WaitUntilReady(context.Background())
	require.ErrorIs(t, err, graft.ErrClosed)
	require.ErrorContains(t, err, "input/output error")
	_ = m.Stop() // safe after the member stopped itself; its error is the first stop's
	stopped = true

	// The disk is repaired: a new process on the same directory.
	fs.on.Store(false)
	again := newMember(fs, true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	require.NoError(t, again.Start(ctx2, 0))
	t.Cleanup(func() { require.NoError(t, again.Stop()) })
	require.Equal(t, graft.ReadinessReady, again.GetReadinessState())
	for _, id := range acked {
		_, err := again.GetWorkflowStatus(id)
		require.NoError(t, err, "%s was acknowledged before the failure", id)
		s := waitStatus(t, again, id, graft.WorkflowStateCompleted)
		require.JSONEq(t, `{"b":true}`, string(s.CurrentStateJSON))
	}
	if _, err := again.GetWorkflowStatus("during"); err != nil && !errors.Is(err, graft.ErrWorkflowNotFound) {
		t.Fatalf("reading the start that failed: %v", err)
	}
}

// In a loaded four-member cluster, n4's Raft log disk starts failing every
// write and fsync. n4 stops by itself instead of lingering with frozen
// replicas (which gossip would still show alive, so its shards would never
// move): the three others take over its shards (every shard back to three
// replicas, on them), and keep accepting and completing workflows; none
// acknowledged is lost or runs a step twice.
func TestStorageFailureMovesTheMembersShards(t *testing.T) {
	// runs counts the steps n1..n3 ran, n4runs those n4 ran.
	var runs, n4runs sync.Map
	members, cfg := startThreeOfFour(t, onceNodes(t, &runs))
	leaves := countLeaves(t, members)

	// n4 joins on a disk that will fail; it is stopped apart from the
	// others, since its Stop returns the failed write.
	fs := &ioFailFS{FS: vfs.Default, under: filepath.Join(cfg.DataDir, "raft")}
	cfg.Expert.FS = fs
	n4 := graft.NewWithConfig(cfg)
	onceNodes(t, &n4runs)(n4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, n4.Start(ctx, 0))
	t.Cleanup(func() { t.Logf("n4 stopped: %v", n4.Stop()) })
	all := append(slices.Clone(members), &clusterMember{cfg: cfg, m: n4})
	requirePlaced(t, all, placeOn(t, 8, 3, "n1", "n2", "n3", "n4"), 60*time.Second)

	l := load(t, "failing", func() []*clusterMember { return members })
	l.waitAcked(10)
	fs.on.Store(true)
	select {
	case <-n4.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("n4 did not stop after its storage failed; readiness %q", n4.GetReadinessState())
	}
	require.Equal(t, graft.ReadinessStorageFailed, n4.GetReadinessState())
	require.False(t, n4.Health().Live)

	requirePlaced(t, members, placeOn(t, 8, 3, "n1", "n2", "n3"), 60*time.Second)
	l.waitAcked(20)
	acked, errs := l.stop()
	require.Empty(t, errs, "starting workflows on the other members")
	for _, id := range acked {
		s := waitDone(t, members[0].m, id)
		require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON), id)
	}
	// A step n4 ran (and could not commit) may have run again on the
	// others; any other step ran once.
	for _, id := range acked {
		for _, node := range []string{"A", "B", "C"} {
			var here, there int64
			if v, ok := runs.Load(id + "/" + node); ok {
				here = v.(*atomic.Int64).Load()
			}
			if v, ok := n4runs.Load(id + "/" + node); ok {
				there = v.(*atomic.Int64).Load()
			}
			require.NotZero(t, here+there, "%s/%s never ran", id, node)
			require.LessOrEqual(t, there, int64(1), "%s/%s ran twice on n4", id, node)
			if here > 1 {
				leaves.requireExplains(t, fmt.Sprintf("%s/%s ran %d times on n1..n3", id, node, here), "n4")
			}
		}
	}
	t.Logf("%d workflows across n4's storage failure (%d failed writes and fsyncs)", len(acked), fs.failed.Load())
}
