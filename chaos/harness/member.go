package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/eleven-am/graft"
)

// member is how the harness drives one running member: a Manager in this
// process, or a member process through its control server.
type member interface {
	// call issues one client operation and says what it returned.
	call(ctx context.Context, p plannedOp) opResult
	// state reads the member's gossip view, replicas and the shards it
	// leads.
	state(ctx context.Context) (memberView, error)
	// stop stops the member gracefully and waits until it has stopped.
	stop() error
}

// opResult is what a client operation returned, as the history records it.
type opResult struct {
	Outcome Outcome `json:"outcome"`
	// Error is the error text of a call that did not return nil.
	Error string `json:"error,omitempty"`
	// HasStatus is set for a successful status read, whose Status,
	// Committed and Shape follow.
	HasStatus bool     `json:"has_status,omitempty"`
	Status    string   `json:"status,omitempty"`
	Committed []string `json:"committed,omitempty"`
	Shape     string   `json:"shape,omitempty"`
	// Executing and Pending are the workflow's executions in flight and
	// its pending steps, as the read returned them.
	Executing []string `json:"executing,omitempty"`
	Pending   int      `json:"pending,omitempty"`
}

// memberView is what a member reports about itself.
type memberView struct {
	Peers       []string                      `json:"peers"`
	Replicas    map[uint64]graft.ReplicaState `json:"replicas"`
	LeadShards  []uint64                      `json:"lead_shards"`
	ServerError string                        `json:"error,omitempty"`
}

// callManager issues one client operation on m with timeout and says what
// it returned; both the in-process members and the member processes use
// it.
func callManager(ctx context.Context, m *graft.Manager, p plannedOp) opResult {
	var err error
	var st *graft.WorkflowStatus
	switch p.Kind {
	case OpStart:
		if p.Trigger == nil {
			err = errors.New("a start without a trigger")
			break
		}
		err = m.StartWorkflowContext(ctx, *p.Trigger)
	case OpStatus:
		st, err = m.GetWorkflowStatusContext(ctx, p.Workflow)
	case OpPause:
		err = m.PauseWorkflow(ctx, p.Workflow)
	case OpResume:
		err = m.ResumeWorkflow(ctx, p.Workflow)
	case OpStop:
		err = m.StopWorkflow(ctx, p.Workflow)
	default:
		err = errors.New("unknown operation kind " + string(p.Kind))
	}
	res := opResult{Outcome: classify(p.Kind, err)}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if st != nil {
		res.HasStatus, res.Status, res.Shape = true, string(st.Status), st.Metadata[shapeKey]
		for _, x := range st.ExecutedNodes {
			if x.Error == "" {
				res.Committed = append(res.Committed, x.ExecutionID)
			}
		}
		for _, x := range st.ExecutingNodes {
			res.Executing = append(res.Executing, fmt.Sprintf("%s attempt %d on %s since %s",
				x.ExecutionID, x.Attempt, x.MemberID, x.StartedAt.UTC().Format("15:04:05.000")))
		}
		res.Pending = len(st.PendingNodes)
	}
	return res
}

// viewOf reads m's gossip view, replicas and led shards.
func viewOf(m *graft.Manager) memberView {
	info := m.GetClusterInfo()
	return memberView{Peers: info.Peers, Replicas: m.ReplicaStates(), LeadShards: info.LeadShards}
}

// localMember is a member running in this process.
type localMember struct{ m *graft.Manager }

func (l localMember) call(ctx context.Context, p plannedOp) opResult { return callManager(ctx, l.m, p) }

func (l localMember) state(context.Context) (memberView, error) { return viewOf(l.m), nil }

func (l localMember) stop() error { return l.m.Stop() }
