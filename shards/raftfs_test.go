package shards

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/stretchr/testify/require"
)

// recordingFS is a vfs.FS that records the files created through it.
type recordingFS struct {
	vfs.FS
	mu      sync.Mutex
	created []string
}

func (r *recordingFS) Create(name string) (vfs.File, error) {
	r.mu.Lock()
	r.created = append(r.created, name)
	r.mu.Unlock()
	return r.FS.Create(name)
}

// createdUnder returns how many files were created under dir.
func (r *recordingFS) createdUnder(dir string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.created {
		if strings.HasPrefix(c, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// Config.FS carries both databases: the state machines' Pebble files and
// Dragonboat's raft log files are created through it, and a Host restarted
// on it keeps its state.
func TestHostStoresThroughConfigFS(t *testing.T) {
	t.Parallel()
	fs := &recordingFS{FS: vfs.Default}
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := Config{DataDir: dir, RaftAddress: addr, FS: fs}
	ctx := testCtx(t, 30*time.Second)

	n1 := newTestNode(t, "n1", cfg)
	startSingle(t, n1, 1)
	for i := range 10 {
		_, err := n1.h.Propose(ctx, 1, fmt.Appendf(nil, "k%d=%d", i, i))
		require.NoError(t, err)
	}
	require.NoError(t, n1.h.Close())
	require.Positive(t, fs.createdUnder(filepath.Join(dir, "state")), "no state file created through Config.FS")
	require.Positive(t, fs.createdUnder(filepath.Join(dir, "raft")), "no raft log file created through Config.FS")

	n2 := newTestNode(t, "n1-restarted", cfg)
	require.NoError(t, n2.h.StartShard(1, 1, map[uint64]string{1: n2.target()}, false))
	waitLeader(t, n2.h, 1)
	got, err := n2.h.Read(ctx, 1, []byte("n"))
	require.NoError(t, err)
	require.Equal(t, "10", string(got))
}

// raftFS gives Dragonboat what lni/vfs has and Pebble's FS lacks: opening
// a file for append writes after its end, and Seek and WriteAt reach the
// file.
func TestRaftFSAppendSeekWriteAt(t *testing.T) {
	t.Parallel()
	fs := raftFS{vfs.Default}
	name := filepath.Join(t.TempDir(), "chunk")
	f, err := fs.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	f, err = fs.OpenForAppend(name)
	require.NoError(t, err)
	_, err = f.Write([]byte("def"))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("X"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	f, err = fs.Open(name)
	require.NoError(t, err)
	got, err := io.ReadAll(f)
	require.NoError(t, err)
	require.Equal(t, "Xbcdef", string(got))
	pos, err := f.Seek(1, io.SeekStart)
	require.NoError(t, err)
	require.Equal(t, int64(1), pos)
	require.NoError(t, f.Close())

	_, err = fs.OpenForAppend(name + ".missing")
	require.Error(t, err)
	u, err := fs.GetDiskUsage(filepath.Dir(name))
	require.NoError(t, err)
	require.Positive(t, u.TotalBytes)
}

// Dragonboat's NewNodeHost returns a nil NodeHost and a nil error when it
// recovers a string panic while starting (it did for a file system its
// LogDB refuses); the Host turns that into an error instead of a nil
// NodeHost to crash on later.
func TestNilNodeHostIsAnError(t *testing.T) {
	t.Parallel()
	nh, err := checkNodeHost(nil, nil)
	require.Nil(t, nh)
	require.ErrorIs(t, err, errNoNodeHost)
	boom := errors.New("boom")
	_, err = checkNodeHost(nil, boom)
	require.Equal(t, boom, err)
}
