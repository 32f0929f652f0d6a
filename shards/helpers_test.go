package shards

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// testLogic is an append-only key-value Logic that records every apply so
// tests can check batching and exactly-once application.
//
// Commands are "key=value"; the result is "<cmd>@<n>" where n counts every
// command ever applied to the shard. Queries: "n" returns the counter, "kv/<key>"
// a value, "last" the last applied raft index.
type testLogic struct {
	mu       sync.Mutex
	last     uint64         // highest index applied, persisted under "meta/last"
	cur      uint64         // index of the entry being applied by this instance
	perIndex map[uint64]int // commands applied per index by this instance
	dups     int            // applies of an index already applied
	applied  uint64         // last index passed to Applied
	opens    int
}

func newTestLogic() *testLogic { return &testLogic{perIndex: map[uint64]int{}} }

var _ Logic = (*testLogic)(nil)

func (l *testLogic) Open(r Reader) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.opens++
	l.cur = 0
	v, found, err := r.Get([]byte("meta/last"))
	if err != nil {
		return err
	}
	l.last = 0
	if found {
		l.last = binary.BigEndian.Uint64(v)
	}
	return nil
}

func (l *testLogic) Apply(w Writer, index uint64, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index < l.last || (index == l.last && l.cur != index) {
		l.dups++
	}
	l.cur, l.last = index, index
	l.perIndex[index]++
	if err := w.Set([]byte("meta/last"), binary.BigEndian.AppendUint64(nil, index)); err != nil {
		return nil, err
	}
	n, err := readCounter(w)
	if err != nil {
		return nil, err
	}
	n++
	if err := w.Set([]byte("meta/n"), []byte(strconv.FormatUint(n, 10))); err != nil {
		return nil, err
	}
	if k, v, ok := strings.Cut(string(cmd), "="); ok {
		if err := w.Set([]byte("kv/"+k), []byte(v)); err != nil {
			return nil, err
		}
	}
	return fmt.Appendf(nil, "%s@%d", cmd, n), nil
}

func (l *testLogic) Applied(index uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = index
}

func (l *testLogic) Lookup(r Reader, query []byte) ([]byte, error) {
	q := string(query)
	switch {
	case q == "n":
		n, err := readCounter(r)
		return []byte(strconv.FormatUint(n, 10)), err
	case strings.HasPrefix(q, "kv/"):
		v, _, err := r.Get(query)
		return v, err
	default:
		return nil, fmt.Errorf("unknown query %q", q)
	}
}

func readCounter(r Reader) (uint64, error) {
	v, found, err := r.Get([]byte("meta/n"))
	if err != nil || !found {
		return 0, err
	}
	return strconv.ParseUint(string(v), 10, 64)
}

// stats returns a copy of the recorded counters.
func (l *testLogic) stats() (perIndex map[uint64]int, dups int, applied uint64, opens int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	perIndex = make(map[uint64]int, len(l.perIndex))
	for k, v := range l.perIndex {
		perIndex[k] = v
	}
	return perIndex, l.dups, l.applied, l.opens
}

// logicSet remembers the Logic instances a Host created, by shard.
type logicSet struct {
	mu     sync.Mutex
	logics map[uint64][]*testLogic
}

func (s *logicSet) newLogic(shardID uint64) Logic {
	l := newTestLogic()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logics == nil {
		s.logics = map[uint64][]*testLogic{}
	}
	s.logics[shardID] = append(s.logics[shardID], l)
	return l
}

// latest returns the most recently created Logic of shardID.
func (s *logicSet) latest(t *testing.T, shardID uint64) *testLogic {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.logics[shardID]
	require.NotEmpty(t, ls, "no logic created for shard %d", shardID)
	return ls[len(ls)-1]
}

// testLogger sends logs to t.Log with a per-node prefix and stops before the
// test ends (Dragonboat's process-global logger may still point at it).
func testLogger(t *testing.T, node string) *slog.Logger {
	return testlog.Logger(t, node+": ", slog.LevelWarn)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// testDir is the Directory of a test's Hosts: newTestNode records each
// Host's NodeHost ID in the testDir of its Config.
type testDir struct {
	mu    sync.Mutex
	addrs map[string]string
}

var _ Directory = (*testDir)(nil)

// RaftAddress returns the Raft address recorded for nodeHostID.
func (d *testDir) RaftAddress(nodeHostID string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	addr, ok := d.addrs[nodeHostID]
	return addr, ok
}

func (d *testDir) add(nodeHostID, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.addrs == nil {
		d.addrs = map[string]string{}
	}
	d.addrs[nodeHostID] = addr
}

// testNode is one Host under test with the Logic instances it created.
type testNode struct {
	h      *Host
	cfg    Config
	logics *logicSet
}

// newTestNode starts a Host on a fresh directory unless cfg names one.
func newTestNode(t *testing.T, name string, cfg Config) *testNode {
	t.Helper()
	n := &testNode{logics: &logicSet{}}
	if cfg.RaftAddress == "" {
		cfg.RaftAddress = freeAddr(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.NodeID = name
	cfg.Logger = testLogger(t, name)
	cfg.NewLogic = n.logics.newLogic
	n.cfg = cfg
	h, err := NewHost(cfg)
	require.NoError(t, err)
	n.h = h
	if d, ok := cfg.Directory.(*testDir); ok {
		d.add(h.NodeHostID(), cfg.RaftAddress)
	}
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return n
}

// target is the Raft target of n's replicas.
func (n *testNode) target() string { return n.h.NodeHostID() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			require.FailNow(t, "timed out waiting for "+what)
		case <-tick.C:
		}
	}
}

// waitLeader waits until some replica of the shard is known to lead on h.
func waitLeader(t *testing.T, h *Host, shardID uint64) uint64 {
	t.Helper()
	var id uint64
	waitFor(t, 10*time.Second, "a leader", func() bool {
		var ok bool
		id, ok = h.LeaderID(shardID)
		return ok
	})
	return id
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
