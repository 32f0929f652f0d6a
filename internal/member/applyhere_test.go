package member

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/disk/disktest"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/stretchr/testify/require"
)

type oneStep struct{ ran chan string }

func (n *oneStep) GetName() string { return "only" }

func (n *oneStep) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*executor.NodeResult, error) {
	wc, _ := executor.GetWorkflowContext(ctx)
	n.ran <- wc.MemberID
	return &executor.NodeResult{GlobalState: s}, nil
}

// A start forwarded to the shard's leader is claimed by the leader, whatever
// claim the sender put in it (a sender that wrongly believed it led the
// shard), and the answer carries no claims for the sender to adopt: a
// sender adopting the leader's claim would give it back while the leader
// runs it, leaving the step pending with nobody to run it.
func TestForwardedStartIsClaimedByTheLeader(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cluster.ShardCount = 1
	m := New(cfg, nil)
	node := &oneStep{ran: make(chan string, 1)}
	require.NoError(t, m.RegisterNode(node))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop(nil)) }()

	cmd := startCommand("fwd")
	cmd.Member, cmd.Incarnation, cmd.LeaseUntil = "elsewhere", "stale", time.Now().Add(time.Hour).UnixNano()
	cmd.Tasks[0].Claim = true
	raw, err := wf.EncodeCommand(cmd)
	require.NoError(t, err)
	h, err := m.running()
	require.NoError(t, err)

	r := m.router()
	r.Host = h
	out, err := r.ApplyHere(ctx, m.ShardOf("fwd"), raw)
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
		a, err := m.Status(ctx, "fwd")
		return err == nil && a.Found && a.View.Status == wf.StatusCompleted
	}, 10*time.Second, 5*time.Millisecond)
}

// A shard's leader whose disk is below its hard floor refuses a forwarded
// write with CodeStorageFull (which the sender reports as errs.ErrStorageFull)
// and stores nothing; once space returns it takes the write.
func TestForwardedWriteRefusedOnAFullDisk(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cluster.ShardCount = 1
	m := New(cfg, nil)
	require.NoError(t, m.RegisterNode(&oneStep{ran: make(chan string, 1)}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	defer func() { require.NoError(t, m.Stop(nil)) }()

	fake := disktest.New(1 << 20) // 1 MiB: below the 32 MiB hard floor
	m.mu.Lock()
	m.disk.StopMonitor() // the member's own guard, replaced by one over the fake disk
	m.disk = disk.New(cfg.DataDir, 64<<20, fake.Free, nil, nil)
	m.mu.Unlock()
	cmd := startCommand("fwd-full")
	raw, err := wf.EncodeCommand(cmd)
	require.NoError(t, err)
	payload := wire.ShardPayload(m.ShardOf("fwd-full"), raw)

	_, err = m.serveRPC(ctx, wire.MethodApply, payload)
	var ce *rpc.CodedError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, rpc.CodeStorageFull, ce.Code)
	require.ErrorIs(t, err, errs.ErrStorageFull)
	a, err := m.Status(ctx, "fwd-full")
	require.NoError(t, err)
	require.False(t, a.Found, "a refused write stored nothing")

	fake.Set(1<<40, nil)
	require.Eventually(t, func() bool {
		_, err := m.serveRPC(ctx, wire.MethodApply, payload)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "the write is taken once space returns")
}

// startCommand is the start command of a one-step workflow id, as
// graft.Manager's StartWorkflow encodes it.
func startCommand(id string) *wf.Command {
	return &wf.Command{Op: wf.OpStart, WF: id, Now: time.Now().UnixNano(), Starter: "n1", Nonce: id,
		State: json.RawMessage("{}"), Tasks: []wf.NewTask{{Node: "only"}}}
}
