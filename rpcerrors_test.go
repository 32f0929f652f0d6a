package graft_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/executor"
	"github.com/stretchr/testify/require"
)

// countState is a node state with a number field, so that a state whose "n"
// is not a number fails to decode.
type countState struct {
	N int `json:"n"`
}

// countNode decodes its state into countState.
type countNode struct{ name string }

func (n *countNode) GetName() string { return n.name }

func (n *countNode) Execute(_ context.Context, s countState, _ map[string]any) (*graft.NodeResult, error) {
	return &graft.NodeResult{GlobalState: s}, nil
}

// stepKind is what a failed step's error is, as the engine and handlers
// see it.
type stepKind struct {
	Text      string
	Permanent bool
	WillRetry bool
	Decode    string // "node param field" of a *executor.DecodeError
	Panic     string // "node value" of a *executor.PanicError, and whether it has a stack
}

func kindOf(ev *graft.NodeErrorEvent) stepKind {
	k := stepKind{Text: ev.Error.Error(), Permanent: executor.IsPermanent(ev.Error), WillRetry: ev.WillRetry}
	var de *executor.DecodeError
	if errors.As(ev.Error, &de) {
		k.Decode = fmt.Sprintf("%s %s %s", de.Node, de.Param, de.Field)
	}
	var pe *executor.PanicError
	if errors.As(ev.Error, &pe) {
		k.Panic = fmt.Sprintf("%s %v stack:%t", pe.Node, pe.Value, len(pe.Stack) > 0)
	}
	return k
}

// Errors cross the member RPC with their kinds. Two members with one
// replica per shard: the nodes are registered on n2 only, so a workflow of
// a shard n1 holds runs its steps on n2 through the member RPC (n1's engine
// reports the step's error), and one of a shard n2 holds runs them locally.
// Both must fail the same way: a permanent error without retries, a decode
// error as a permanent *executor.DecodeError, a panic as a retried
// *executor.PanicError. Reads and controls of unknown workflows, forwarded
// to the member holding their shard, are ErrWorkflowNotFound.
func TestRemoteErrorsKeepTheirKind(t *testing.T) {
	peers := make([]graft.StaticPeer, 2)
	cfgs := make([]*graft.Config, len(peers))
	for i := range peers {
		peers[i] = graft.StaticPeer{ID: fmt.Sprintf("n%d", i+1), Address: "127.0.0.1",
			Port: portOf(t, freeAddr(t)), GossipPort: portOf(t, freeAddr(t))}
	}
	for i, p := range peers {
		cfgs[i] = clusterConfig(t, p.ID, "127.0.0.1:"+strconv.Itoa(p.Port), p.GossipPort, peers)
		cfgs[i].Cluster.ReplicationFactor = 1
		cfgs[i].Engine.MaxRetries = 2
	}
	registered := 0
	members := startConfigs(t, cfgs, func(m *graft.Manager) {
		registered++
		if registered != 2 { // startConfigs registers in order: only n2 gets the nodes
			return
		}
		register(t, m,
			fnNode("Perm", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				return nil, graft.Permanent(errors.New("card declined"))
			}),
			fnNode("Panic", func(context.Context, map[string]any, map[string]any) (*graft.NodeResult, error) {
				panic("boom")
			}),
			&countNode{name: "Decode"},
		)
	})
	n1, n2 := members[0].m, members[1].m
	remoteEvs := collect(t, n1.OnNodeError)
	localEvs := collect(t, n2.OnNodeError)

	t.Run("step errors", func(t *testing.T) {
		const perKind = 8
		for _, node := range []string{"Perm", "Panic", "Decode"} {
			for i := range perKind {
				startWF(t, n2, fmt.Sprintf("%s-%d", node, i), map[string]any{"n": "not a number"}, node)
			}
		}
		// Every workflow fails; the last attempt's event tells where it ran.
		type outcome struct {
			kinds    []stepKind
			status   *graft.WorkflowStatus
			executed int
		}
		where := map[string]string{} // workflow -> "remote" or "local"
		events := map[string][]*graft.NodeErrorEvent{}
		for _, node := range []string{"Perm", "Panic", "Decode"} {
			for i := range perKind {
				id := fmt.Sprintf("%s-%d", node, i)
				s := waitStatus(t, n2, id, graft.WorkflowStateFailed)
				for len(events[id]) < len(s.ExecutedNodes) {
					select {
					case ev := <-remoteEvs:
						where[ev.WorkflowID] = "remote"
						events[ev.WorkflowID] = append(events[ev.WorkflowID], ev)
					case ev := <-localEvs:
						where[ev.WorkflowID] = "local"
						events[ev.WorkflowID] = append(events[ev.WorkflowID], ev)
					case <-time.After(20 * time.Second):
						t.Fatalf("%s: saw %d error events of %d attempts", id, len(events[id]), len(s.ExecutedNodes))
					}
				}
			}
		}
		for _, node := range []string{"Perm", "Panic", "Decode"} {
			seen := map[string]outcome{}
			for i := range perKind {
				id := fmt.Sprintf("%s-%d", node, i)
				s, err := n2.GetWorkflowStatus(id)
				require.NoError(t, err)
				o := outcome{status: s, executed: len(s.ExecutedNodes)}
				for _, ev := range events[id] {
					o.kinds = append(o.kinds, kindOf(ev))
				}
				if prev, ok := seen[where[id]]; ok {
					require.Equal(t, prev.kinds, o.kinds, "%s: %s runs differ", id, where[id])
				}
				seen[where[id]] = o
			}
			require.Contains(t, seen, "remote", "%s: no workflow ran its step on the other member (placement put every shard on n2)", node)
			require.Contains(t, seen, "local", "%s: no workflow ran its step locally (placement put every shard on n1)", node)
			remote, local := seen["remote"], seen["local"]
			require.Equal(t, local.kinds, remote.kinds, "%s: the remote step's errors differ from the local one's", node)
			require.Equal(t, local.executed, remote.executed, "%s: attempts", node)
			require.Equal(t, local.status.LastErrorText(), remote.status.LastErrorText(), node)
			require.Equal(t, node, remote.status.FailedNode)
			k := remote.kinds[0]
			switch node {
			case "Perm":
				require.Equal(t, 1, remote.executed, "a permanent error is not retried")
				require.True(t, k.Permanent)
				require.Equal(t, "card declined", k.Text)
			case "Decode":
				require.Equal(t, 1, remote.executed, "a decode error is not retried")
				require.True(t, k.Permanent)
				require.Equal(t, "Decode state n", k.Decode)
			case "Panic":
				require.Equal(t, 3, remote.executed, "a panic is retried MaxRetries times")
				require.False(t, k.Permanent)
				require.True(t, k.WillRetry)
				require.Equal(t, "Panic boom stack:true", k.Panic)
			}
		}
	})

	t.Run("workflow not found", func(t *testing.T) {
		// Each member holds some of the shards: of these IDs, each reads
		// about half through the other member.
		ctx := context.Background()
		for _, m := range []*graft.Manager{n1, n2} {
			for i := range 16 {
				id := fmt.Sprintf("missing-%d", i)
				_, err := m.GetWorkflowStatus(id)
				require.ErrorIs(t, err, graft.ErrWorkflowNotFound, id)
				require.ErrorIs(t, m.PauseWorkflow(ctx, id), graft.ErrWorkflowNotFound, id)
				require.ErrorIs(t, m.StopWorkflow(ctx, id), graft.ErrWorkflowNotFound, id)
			}
		}
	})
}
