package graft

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

type oneStep struct{ ran chan string }

func (n *oneStep) GetName() string { return "only" }

func (n *oneStep) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*NodeResult, error) {
	wc, _ := GetWorkflowContext(ctx)
	n.ran <- wc.MemberID
	return &NodeResult{GlobalState: s}, nil
}

// A start forwarded to the shard's leader is claimed by the leader, whatever
// claim the sender put in it (a sender that wrongly believed it led the
// shard), and the answer carries no claims for the sender to adopt: a
// sender adopting the leader's claim would give it back while the leader
// runs it, leaving the step pending with nobody to run it.
func TestForwardedStartIsClaimedByTheLeader(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := DefaultConfig("n1", addr, t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Cluster.ShardCount = 1
	m := NewWithConfig(cfg)
	node := &oneStep{ran: make(chan string, 1)}
	require.NoError(t, m.RegisterNode(node))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop()) }()

	cmd, err := m.startCommand(WorkflowTrigger{WorkflowID: "fwd", InitialNodes: []NodeConfig{{Name: "only"}}})
	require.NoError(t, err)
	cmd.Member, cmd.Incarnation, cmd.LeaseUntil = "elsewhere", "stale", time.Now().Add(time.Hour).UnixNano()
	cmd.Tasks[0].Claim = true
	raw, err := wf.EncodeCommand(cmd)
	require.NoError(t, err)
	h, err := m.running()
	require.NoError(t, err)

	out, err := m.applyHere(ctx, h, m.shardOf("fwd"), raw)
	require.NoError(t, err)
	res, err := wf.DecodeResult(out)
	require.NoError(t, err)
	require.Equal(t, wf.OK, res.Code)
	require.Empty(t, res.Claimed, "the leader's claims are not the sender's to adopt")

	select {
	case member := <-node.ran:
		require.Equal(t, "n1", member, "the leader ran the step it claimed")
	case <-ctx.Done():
		t.Fatal("the step never ran")
	}
	require.Eventually(t, func() bool {
		s, err := m.GetWorkflowStatus("fwd")
		return err == nil && s.Status == WorkflowStateCompleted
	}, 10*time.Second, 5*time.Millisecond)
}

// A shard's leader whose disk is below its hard floor refuses a forwarded
// write with CodeStorageFull (which the sender reports as ErrStorageFull)
// and stores nothing; once space returns it takes the write.
func TestForwardedWriteRefusedOnAFullDisk(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := DefaultConfig("n1", addr, t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Cluster.ShardCount = 1
	m := NewWithConfig(cfg)
	require.NoError(t, m.RegisterNode(&oneStep{ran: make(chan string, 1)}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop()) }()

	disk := &fakeDisk{free: 1 << 20} // 1 MiB: below the 32 MiB hard floor
	m.mu.Lock()
	m.disk.stopMonitor() // the member's own guard, replaced by one over the fake disk
	m.disk = newDiskGuard(cfg.DataDir, 64<<20, disk.read, nil, nil)
	m.mu.Unlock()
	cmd, err := m.startCommand(WorkflowTrigger{WorkflowID: "fwd-full", InitialNodes: []NodeConfig{{Name: "only"}}})
	require.NoError(t, err)
	raw, err := wf.EncodeCommand(cmd)
	require.NoError(t, err)
	payload := shardPayload(m.shardOf("fwd-full"), raw)

	_, err = m.serveRPC(ctx, rpcApply, payload)
	var ce *rpc.CodedError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, rpc.CodeStorageFull, ce.Code)
	require.ErrorIs(t, err, ErrStorageFull)
	_, err = m.GetWorkflowStatus("fwd-full")
	require.ErrorIs(t, err, ErrWorkflowNotFound, "a refused write stored nothing")

	disk.set(1<<40, nil)
	require.Eventually(t, func() bool {
		_, err := m.serveRPC(ctx, rpcApply, payload)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "the write is taken once space returns")
}
