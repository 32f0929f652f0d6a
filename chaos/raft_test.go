package chaos_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	dblogger "github.com/lni/dragonboat/v4/logger"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/chaos"
)

// recorder collects what a raw transport receives.
type recorder struct {
	mu      sync.Mutex
	batches []pb.MessageBatch
	chunks  []pb.Chunk
	got     chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1000)} }

func (r *recorder) handle(b pb.MessageBatch) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) chunk(c pb.Chunk) bool {
	r.mu.Lock()
	r.chunks = append(r.chunks, c)
	r.mu.Unlock()
	r.got <- struct{}{}
	return true
}

// terms returns the Term of each received batch's first request, in order.
func (r *recorder) terms() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, b := range r.batches {
		out = append(out, b.Requests[0].Term)
	}
	return out
}

func startRaw(t *testing.T, n *chaos.Network, name, addr string, r *recorder) raftio.ITransport {
	t.Helper()
	f := n.RaftTransportFactory(name)
	tr := f.Create(config.NodeHostConfig{RaftAddress: addr}, r.handle, r.chunk)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { require.NoError(t, tr.Close()) })
	return tr
}

func batch(term uint64) pb.MessageBatch {
	return pb.MessageBatch{SourceAddress: "a:1", Requests: []pb.Message{{Type: pb.Heartbeat, Term: term}}}
}

func TestRaftTransportDelivery(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	ra, rb := newRecorder(), newRecorder()
	a := startRaw(t, n, "a", "a:1", ra)
	startRaw(t, n, "b", "b:1", rb)
	ctx := context.Background()

	require.True(t, n.RaftTransportFactory("a").Validate("a:7000"))
	for _, bad := range []string{"", "a", ":7000", "a:x", "a:0"} {
		require.False(t, n.RaftTransportFactory("a").Validate(bad), bad)
	}

	_, err := a.GetConnection(ctx, "nobody:1")
	require.Error(t, err)
	c, err := a.GetConnection(ctx, "b:1")
	require.NoError(t, err)
	defer c.Close()

	// The batch is copied: changing it after sending changes nothing.
	b1 := batch(1)
	require.NoError(t, c.SendMessageBatch(b1))
	b1.Requests[0].Term = 99
	<-rb.got
	require.Equal(t, []uint64{1}, rb.terms())

	// Dropped: SendMessageBatch still returns nil, nothing arrives.
	n.Isolate("b")
	require.NoError(t, c.SendMessageBatch(batch(2)))
	n.Heal()

	// Delayed batches keep their order behind undelayed ones.
	n.Delay("a", "b", 20*time.Millisecond)
	require.NoError(t, c.SendMessageBatch(batch(3)))
	n.Heal()
	require.NoError(t, c.SendMessageBatch(batch(4)))
	<-rb.got
	<-rb.got
	require.Equal(t, []uint64{1, 3, 4}, rb.terms())
	s := n.Stats()
	require.Equal(t, uint64(1), s.Cut)
	require.Equal(t, uint64(1), s.Delayed)

	// Snapshot chunks are refused with an error across a cut.
	sc, err := a.GetSnapshotConnection(ctx, "b:1")
	require.NoError(t, err)
	defer sc.Close()
	require.NoError(t, sc.SendChunk(pb.Chunk{ShardID: 1, Data: []byte("x")}))
	<-rb.got
	n.Partition([]string{"a"}, []string{"b"})
	err = sc.SendChunk(pb.Chunk{ShardID: 1, ChunkId: 1})
	require.ErrorIs(t, err, chaos.ErrUnreachable)
	n.Heal()

	// A second transport cannot take a live address; after Close it can.
	dup := n.RaftTransportFactory("b2").Create(config.NodeHostConfig{RaftAddress: "b:1"}, rb.handle, rb.chunk)
	require.Error(t, dup.Start())
	require.NoError(t, dup.Close())
	require.NoError(t, dup.Close())
}

func TestRaftTransportCloseBreaksConnections(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	a := startRaw(t, n, "a", "a:1", newRecorder())
	f := n.RaftTransportFactory("b")
	b := f.Create(config.NodeHostConfig{RaftAddress: "b:1"}, newRecorder().handle, newRecorder().chunk)
	require.NoError(t, b.Start())

	c, err := a.GetConnection(context.Background(), "b:1")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.Error(t, c.SendMessageBatch(batch(1)), "the peer is gone")
	_, err = a.GetConnection(context.Background(), "b:1")
	require.Error(t, err)
}

// kv is a trivial in-memory state machine holding the last proposed value.
type kv struct {
	mu  sync.Mutex
	val string
}

func (s *kv) Update(e sm.Entry) (sm.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.val = string(e.Cmd)
	return sm.Result{Value: e.Index}, nil
}

func (s *kv) Lookup(any) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val, nil
}

func (s *kv) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := w.Write([]byte(s.val))
	return err
}

func (s *kv) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.val = string(b)
	return nil
}

func (s *kv) Close() error { return nil }

var quietDragonboat sync.Once

const shardID = 1

func startNodeHosts(t *testing.T, n *chaos.Network, names ...string) map[uint64]*dragonboat.NodeHost {
	t.Helper()
	quietDragonboat.Do(func() {
		for _, p := range []string{"config", "dragonboat", "gossip", "grpc", "logdb", "pebblekv",
			"raft", "raftpb", "registry", "rsm", "server", "settings", "tan", "tools", "transport"} {
			dblogger.GetLogger(p).SetLevel(dblogger.ERROR)
		}
	})
	members := make(map[uint64]string)
	for i, name := range names {
		members[uint64(i+1)] = name + ":7000"
	}
	hosts := make(map[uint64]*dragonboat.NodeHost)
	for i, name := range names {
		id := uint64(i + 1)
		nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
			NodeHostDir:    t.TempDir(),
			RTTMillisecond: 10,
			RaftAddress:    members[id],
			Expert: config.ExpertConfig{
				TransportFactory: n.RaftTransportFactory(name),
				LogDB:            config.GetTinyMemLogDBConfig(),
			},
		})
		require.NoError(t, err)
		t.Cleanup(nh.Close)
		err = nh.StartReplica(members, false, func(uint64, uint64) sm.IStateMachine { return &kv{} },
			config.Config{ReplicaID: id, ShardID: shardID, ElectionRTT: 10, HeartbeatRTT: 1,
				CheckQuorum: true, PreVote: true})
		require.NoError(t, err)
		hosts[id] = nh
	}
	return hosts
}

// leaderAmong waits until one of the given hosts leads the shard and every
// one of them agrees on it.
func leaderAmong(t *testing.T, hosts map[uint64]*dragonboat.NodeHost, ids ...uint64) uint64 {
	t.Helper()
	var leader uint64
	eventually(t, 15*time.Second, func() error {
		leader = 0
		for _, id := range ids {
			l, _, ok, err := hosts[id].GetLeaderID(shardID)
			if err != nil || !ok {
				return errorf("replica %d: no leader (%v)", id, err)
			}
			if leader != 0 && l != leader {
				return errorf("replicas disagree: %d vs %d", leader, l)
			}
			leader = l
		}
		for _, id := range ids {
			if id == leader {
				return nil
			}
		}
		return errorf("leader %d is not among %v", leader, ids)
	})
	return leader
}

func propose(t *testing.T, nh *dragonboat.NodeHost, val string) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := nh.SyncPropose(ctx, nh.GetNoOPSession(shardID), []byte(val))
		return err
	})
}

func read(t *testing.T, nh *dragonboat.NodeHost, want string) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		v, err := nh.SyncRead(ctx, shardID, nil)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("read %q, want %q", v, want)
		}
		return nil
	})
}

func TestRaftIsolateLeaderAndHeal(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 3)
	names := []string{"n1", "n2", "n3"}
	start := time.Now()
	hosts := startNodeHosts(t, n, names...)

	old := leaderAmong(t, hosts, 1, 2, 3)
	propose(t, hosts[old], "v1")
	for id := range hosts {
		read(t, hosts[id], "v1")
	}
	t.Logf("leader %d elected and v1 committed after %v", old, time.Since(start))

	cut := time.Now()
	n.Isolate(names[old-1])
	var rest []uint64
	for id := range hosts {
		if id != old {
			rest = append(rest, id)
		}
	}
	leader := leaderAmong(t, hosts, rest...)
	require.NotEqual(t, old, leader)
	propose(t, hosts[leader], "v2")
	t.Logf("replica %d isolated: %d leads and committed v2 after %v", old, leader, time.Since(cut))

	// The isolated replica cannot serve a linearizable read.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := hosts[old].SyncRead(ctx, shardID, nil)
	cancel()
	require.Error(t, err)

	healed := time.Now()
	n.Heal()
	read(t, hosts[old], "v2")
	t.Logf("healed: replica %d caught up after %v; stats %+v", old, time.Since(healed), n.Stats())
	require.NotZero(t, n.Stats().Cut)
}
