package graft_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/ring"
	"github.com/stretchr/testify/require"
)

// Fleet-scale figures of TestTenMembersAtFleetScale.
const (
	fleetMembers   = 10
	fleetShards    = 16
	fleetWorkflows = 1000
	// fleetStarters is how many goroutines start the workflows, each from
	// a member picked at random per workflow.
	fleetStarters = 16
)

// TestTenMembersAtFleetScale runs ten full members (gossip, member RPC,
// shards) in one process on loopback: they form one cluster and place 16
// shards (RF 3) as the ring says, 1,000 workflows started from random
// members all complete with every step run once, every member's
// ClusterInfo agrees on the membership and shard view, and the replicas of
// each shard agree at the end (stopAtEnd).
func TestTenMembersAtFleetScale(t *testing.T) {
	if testing.Short() || raceDetector {
		// 20 to 45s here without the race detector (2 shared cores); under
		// it ten members starve their Raft and gossip timers: make test
		// runs it without -race.
		t.Skip("ten members in one process: runs without -short and -race (make test)")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	runs := &stepRuns{}
	peers := make([]graft.StaticPeer, fleetMembers)
	ids := make([]string, fleetMembers)
	for i := range peers {
		ids[i] = fmt.Sprintf("n%02d", i+1)
		peers[i] = graft.StaticPeer{ID: ids[i], Address: "127.0.0.1",
			Port: portOf(t, freeAddr(t)), GossipPort: portOf(t, freeAddr(t))}
	}
	began := time.Now()
	members := startMembers(t, peers, func(p graft.StaticPeer, cfg *graft.Config) {
		cfg.BindAddr = "127.0.0.1:" + strconv.Itoa(p.Port)
		cfg.Cluster.ShardCount = fleetShards
	}, runs.nodes(t))
	started := time.Since(began)
	place := placeOn(t, fleetShards, 3, ids...)
	requirePlaced(t, members, place, 90*time.Second)
	t.Logf("%d members started in %v, shards placed after %v", fleetMembers, started, time.Since(began))

	// Starts from random members, concurrently.
	wfs := make([]string, fleetWorkflows)
	from := make([]int, fleetWorkflows)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range wfs {
		wfs[i] = fmt.Sprintf("fleet-%04d", i)
		from[i] = rng.IntN(fleetMembers)
	}
	began = time.Now()
	require.NoError(t, forEach(fleetWorkflows, fleetStarters, func(i int) error {
		cm := members[from[i]]
		if err := cm.m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID: wfs[i], InitialNodes: []graft.NodeConfig{{Name: "A"}},
			InitialState: map[string]any{"trail": []string{}},
		}); err != nil {
			return fmt.Errorf("%s starting %s: %w", cm.cfg.NodeID, wfs[i], err)
		}
		return nil
	}))
	t.Logf("%d workflows started in %v", fleetWorkflows, time.Since(began))

	// Each completes, read through another member than the one that
	// started it.
	deadline := time.Now().Add(90 * time.Second)
	if err := forEach(fleetWorkflows, fleetStarters, func(i int) error {
		cm := members[(from[i]+1+i%(fleetMembers-1))%fleetMembers]
		if err := awaitTrail(cm, wfs[i], deadline); err != nil {
			return fmt.Errorf("%w; its steps ran: %v", err, runs.of(wfs[i], []string{"A", "B", "C"}))
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nshards led (as each member reports): %s", err, shardLeaders(members))
	}
	t.Logf("%d workflows completed %v after the first start", fleetWorkflows, time.Since(began))
	require.Empty(t, runs.notOnce(wfs, []string{"A", "B", "C"}), "steps that did not run exactly once")

	// Every member's ClusterInfo tells the same story.
	for until := time.Now().Add(30 * time.Second); ; {
		differ := fleetViewDisagreement(members, ids, place.ShardCount())
		if differ == "" {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("the members' cluster views never agreed: %s", differ)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	// The shard view is still the ring's placement.
	requirePlaced(t, members, place, 30*time.Second)
}

// stepRuns records every run of the steps of the A → B → C chain, with
// where and as which execution and attempt it ran, so that a test can
// tell how a step that ran twice came to.
type stepRuns struct {
	mu   sync.Mutex
	runs map[string][]string // workflowID/node → one line per run
}

// nodes registers the chain's nodes, recording into r.
func (r *stepRuns) nodes(t *testing.T) func(*graft.Manager) {
	return func(m *graft.Manager) {
		for _, n := range []seqNode{{"A", "B"}, {"B", "C"}, {"C", ""}} {
			require.NoError(t, m.RegisterNode(&recordingNode{n, r}))
		}
	}
}

// notOnce describes, for each workflow in ids, each of nodes that did not
// run exactly once, and its runs.
func (r *stepRuns) notOnce(ids, nodes []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range ids {
		for _, n := range nodes {
			if runs := r.runs[id+"/"+n]; len(runs) != 1 {
				out = append(out, fmt.Sprintf("%s/%s ran %d times: %v", id, n, len(runs), runs))
			}
		}
	}
	return out
}

// of describes the runs of the given nodes of workflow id.
func (r *stepRuns) of(id string, nodes []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range nodes {
		out = append(out, fmt.Sprintf("%s: %v", n, r.runs[id+"/"+n]))
	}
	return out
}

// recordingNode is a step of the A → B → C chain that records its runs.
type recordingNode struct {
	seqNode
	runs *stepRuns
}

func (n *recordingNode) Execute(ctx context.Context, s *seqState, c map[string]any) (*graft.NodeResult, error) {
	wc, _ := graft.GetWorkflowContext(ctx)
	n.runs.mu.Lock()
	if n.runs.runs == nil {
		n.runs.runs = map[string][]string{}
	}
	k := wc.WorkflowID + "/" + n.name
	n.runs.runs[k] = append(n.runs.runs[k], fmt.Sprintf("on %s as %s attempt %d at %s",
		wc.MemberID, wc.ExecutionID, wc.Attempt, time.Now().Format("15:04:05.000")))
	n.runs.mu.Unlock()
	return n.seqNode.Execute(ctx, s, c)
}

// forEach calls fn(i) for i in [0, n) from workers goroutines and returns
// the errors joined (each goroutine stops at its first error).
func forEach(n, workers int, fn func(i int) error) error {
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// awaitTrail reads id's status from cm until it is completed with the
// trail A, B, C, or returns an error naming what it saw at deadline.
func awaitTrail(cm *clusterMember, id string, deadline time.Time) error {
	var last *graft.WorkflowStatus
	var lastErr error
	for {
		s, err := cm.m.GetWorkflowStatus(id)
		switch {
		case err != nil:
			lastErr = err
		case s.Status == graft.WorkflowStateCompleted:
			if string(s.CurrentStateJSON) != `{"trail":["A","B","C"]}` {
				return fmt.Errorf("%s completed with state %s as %s sees it", id, s.CurrentStateJSON, cm.cfg.NodeID)
			}
			return nil
		default:
			last = s
		}
		if time.Now().After(deadline) {
			var running []string
			if last != nil {
				for _, x := range last.ExecutingNodes {
					running = append(running, fmt.Sprintf("%s on %s as %s attempt %d since %s",
						x.NodeName, x.MemberID, x.ExecutionID, x.Attempt, x.StartedAt.Format("15:04:05.000")))
				}
			}
			return fmt.Errorf("%s (shard %d) never completed as %s sees it (last: %s, executing %v, last read error: %v)",
				id, ring.ShardFor(id, fleetShards), cm.cfg.NodeID, describe(last), running, lastErr)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// shardLeaders lists the shards each member reports it leads.
func shardLeaders(members []*clusterMember) string {
	var b strings.Builder
	for _, cm := range members {
		fmt.Fprintf(&b, "%s %v; ", cm.cfg.NodeID, cm.m.GetClusterInfo().LeadShards)
	}
	return b.String()
}

// fleetViewDisagreement returns "" when every member's ClusterInfo agrees
// on what can be compared across members: one cluster ID, every member
// running and listing all the others as peers, the shard count, exactly
// one coordinator (the lowest ID), and each shard led by exactly one
// member. Otherwise it says what differs.
func fleetViewDisagreement(members []*clusterMember, ids []string, shards int) string {
	var problems []string
	clusterID := members[0].m.GetClusterInfo().ClusterID
	if clusterID == "" {
		problems = append(problems, members[0].cfg.NodeID+" reports no cluster ID")
	}
	var coordinators []string
	leaders := map[uint64][]string{}
	for _, cm := range members {
		info := cm.m.GetClusterInfo()
		id := cm.cfg.NodeID
		want := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
		peers := slices.Sorted(slices.Values(info.Peers))
		switch {
		case info.ClusterID != clusterID:
			problems = append(problems, fmt.Sprintf("%s reports cluster ID %q, %s %q", id, info.ClusterID, members[0].cfg.NodeID, clusterID))
		case info.Status != "running":
			problems = append(problems, fmt.Sprintf("%s is %q", id, info.Status))
		case !slices.Equal(peers, want):
			problems = append(problems, fmt.Sprintf("%s lists peers %v", id, peers))
		case info.Shards != shards:
			problems = append(problems, fmt.Sprintf("%s reports %d shards", id, info.Shards))
		}
		if info.IsLeader {
			coordinators = append(coordinators, id)
		}
		for _, s := range info.LeadShards {
			leaders[s] = append(leaders[s], id)
		}
	}
	if !slices.Equal(coordinators, ids[:1]) {
		problems = append(problems, fmt.Sprintf("coordinators %v, want [%s]", coordinators, ids[0]))
	}
	for s := uint64(1); s <= uint64(shards); s++ {
		if len(leaders[s]) != 1 {
			problems = append(problems, fmt.Sprintf("shard %d led by %v", s, leaders[s]))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprint(problems)
}
