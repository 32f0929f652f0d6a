package graft_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/gossip"
	"github.com/stretchr/testify/require"
)

// Like the tests in cluster_test.go these run one at a time (no
// t.Parallel): several clusters at once on two cores under -race starve
// their Raft timers.

// seqNodes registers the A → B → C counting chain on m.
func seqNodes(t *testing.T, runs *atomic.Int64) func(*graft.Manager) {
	return func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"A", "B"}, runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"B", "C"}, runs}))
		require.NoError(t, m.RegisterNode(&countingNode{seqNode{"C", ""}, runs}))
	}
}

func startSeq(t *testing.T, m *graft.Manager, id string) {
	t.Helper()
	require.NoError(t, m.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}},
		InitialState: map[string]any{"trail": []string{}},
	}), "starting %s", id)
}

// waitDone waits until id completes as seen from m, reporting the last
// status and read error on failure.
func waitDone(t *testing.T, m *graft.Manager, id string) *graft.WorkflowStatus {
	t.Helper()
	return waitStatus(t, m, id, graft.WorkflowStateCompleted)
}

// requireAgree waits until id completes as seen from every member, then
// checks every member reports the same status, state and executed steps.
func requireAgree(t *testing.T, members []*clusterMember, id string) {
	t.Helper()
	var first *graft.WorkflowStatus
	for _, cm := range members {
		s := waitDone(t, cm.m, id)
		require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON), "%s seen from %s", id, cm.cfg.NodeID)
		if first == nil {
			first = s
			continue
		}
		require.Equal(t, first.Status, s.Status, "%s seen from %s", id, cm.cfg.NodeID)
		require.JSONEq(t, string(first.CurrentStateJSON), string(s.CurrentStateJSON), "%s seen from %s", id, cm.cfg.NodeID)
		require.Len(t, s.ExecutedNodes, len(first.ExecutedNodes), "%s seen from %s", id, cm.cfg.NodeID)
	}
}

func peersOf(m *graft.Manager) []string { return m.GetClusterInfo().Peers }

// memberAddr is one member's identity and ports.
type memberAddr struct {
	id           string
	raft, gossip int
}

func newMemberAddrs(t *testing.T, ids ...string) []memberAddr {
	out := make([]memberAddr, len(ids))
	for i, id := range ids {
		out[i] = memberAddr{id, portOf(t, freeAddr(t)), portOf(t, freeAddr(t))}
	}
	return out
}

func staticPeers(as ...memberAddr) []graft.StaticPeer {
	var peers []graft.StaticPeer
	for _, a := range as {
		peers = append(peers, graft.StaticPeer{ID: a.id, Address: "127.0.0.1", Port: a.raft, GossipPort: a.gossip})
	}
	return peers
}

// memberConfig builds a member's config like startCluster does, joining
// peers, then applies tweak.
func memberConfig(t *testing.T, a memberAddr, expected int, peers []graft.StaticPeer, tweak func(*graft.Config)) *graft.Config {
	cfg := clusterConfig(t, a.id, "127.0.0.1:"+strconv.Itoa(a.raft), a.gossip, peers)
	cfg.Cluster.ExpectedMembers = expected
	if tweak != nil {
		tweak(cfg)
	}
	return cfg
}

// requireAllSee waits until every member sees want peers. Gossip spreads
// joins and failures in the background; on a loaded machine (-race, other
// packages' tests alongside) that takes several times its unloaded time.
func requireAllSee(t *testing.T, members []*clusterMember, want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, cm := range members {
			if len(peersOf(cm.m)) != want {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "not every member sees %d peers", want)
}

// requireNeverSeen checks for about 2s that no member lists id as a peer.
func requireNeverSeen(t *testing.T, members []*clusterMember, id string) {
	t.Helper()
	require.Never(t, func() bool {
		for _, cm := range members {
			if slices.Contains(peersOf(cm.m), id) {
				return true
			}
		}
		return false
	}, 2*time.Second, 20*time.Millisecond, "refused member %s joined", id)
}

func TestFiveMemberCluster(t *testing.T) {
	var runs atomic.Int64
	var commands sync.Map // member → sender
	members := startCluster(t, 5, seqNodes(t, &runs))
	leaves := countLeaves(t, members)
	for _, cm := range members {
		require.Equal(t, 3, cm.cfg.Cluster.ReplicationFactor)
		id := cm.cfg.NodeID
		require.NoError(t, cm.m.RegisterCommandHandler("ping", func(_ context.Context, from string, _ any) error {
			commands.Store(id, from)
			return nil
		}))
	}

	var ids []string
	for i, cm := range members {
		for j := range 6 {
			id := fmt.Sprintf("five-%d-%d", i, j)
			ids = append(ids, id)
			startSeq(t, cm.m, id)
		}
	}
	for _, id := range ids {
		requireAgree(t, members, id)
	}
	if n := runs.Load(); n != int64(3*len(ids)) {
		require.Greater(t, n, int64(3*len(ids)))
		leaves.requireExplains(t, fmt.Sprintf("%d step runs for %d steps", n, 3*len(ids)))
	}

	sender := members[3].cfg.NodeID
	require.NoError(t, members[3].m.BroadcastCommand(context.Background(), &graft.DevCommand{Command: "ping"}))
	// The broadcast reaches the others through gossip, in the background.
	require.Eventually(t, func() bool {
		for _, cm := range members {
			if from, ok := commands.Load(cm.cfg.NodeID); !ok || from != sender {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "the broadcast did not reach every member")
}

func TestClusterRestartSameDataDir(t *testing.T) {
	var runs atomic.Int64
	register := seqNodes(t, &runs)
	members := startCluster(t, 3, register)
	for i, cm := range members {
		startSeq(t, cm.m, fmt.Sprintf("before-%d", i))
	}
	for i := range members {
		requireAgree(t, members, fmt.Sprintf("before-%d", i))
	}

	require.NoError(t, members[1].m.Stop())
	// n1 learns of the leave through gossip.
	require.Eventually(t, func() bool { return !slices.Contains(peersOf(members[0].m), "n2") },
		30*time.Second, 10*time.Millisecond, "n1 still lists n2 after it stopped")

	// A new Manager with n2's exact config reloads its layout and rejoins.
	m := graft.NewWithConfig(members[1].cfg)
	register(m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	members[1] = &clusterMember{cfg: members[1].cfg, m: m} // stopped at the end
	require.NoError(t, m.Start(ctx, 0))

	require.Eventually(t, func() bool { return slices.Contains(peersOf(members[0].m), "n2") },
		30*time.Second, 10*time.Millisecond, "n1 never listed the restarted n2")
	requireAllSee(t, members, 2)
	// Its graceful stop moved its replicas off; back, it holds and serves
	// its share again (new replicas: removed IDs never come back).
	requirePlaced(t, members, placeOn(t, 4, 3, "n1", "n2", "n3"), 30*time.Second)

	var ids []string
	for i, cm := range members {
		for j := range 4 {
			id := fmt.Sprintf("after-%d-%d", i, j)
			ids = append(ids, id)
			startSeq(t, cm.m, id)
		}
	}
	for _, id := range append(ids, "before-0", "before-1", "before-2") {
		requireAgree(t, members, id)
	}
}

func TestClusterPolicyRestrictedRefusesWrongKey(t *testing.T) {
	key := []byte("0123456789abcdef")
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, staticPeers(addrs...), func(c *graft.Config) {
			c.Cluster.Policy = graft.ClusterPolicyRestricted
			c.Cluster.Key = key
		}))
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	requireAllSee(t, members, 2)

	// A 4th member with the wrong key expects 4 members: it never joins,
	// so it never bootstraps.
	out := newMemberAddrs(t, "n4")[0]
	cfg := memberConfig(t, out, 4, staticPeers(append(slices.Clone(addrs), out)...), func(c *graft.Config) {
		c.Cluster.Policy = graft.ClusterPolicyRestricted
		c.Cluster.Key = []byte("fedcba9876543210")
	})
	var logs lockedBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	intruder := graft.NewWithConfig(cfg)
	seqNodes(t, &runs)(intruder)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	startErr := make(chan error, 1)
	go func() { startErr <- intruder.Start(ctx, 0) }()
	t.Cleanup(func() { _ = intruder.Stop() })

	requireNeverSeen(t, members, "n4")
	select {
	case err := <-startErr:
		require.Error(t, err, "the member with the wrong key bootstrapped")
	case <-time.After(10 * time.Second):
		t.Fatal("Start of the member with the wrong key did not return after its context ended")
	}
	require.NoError(t, intruder.Stop())

	// The cluster still works.
	startSeq(t, members[2].m, "restricted-after")
	requireAgree(t, members, "restricted-after")
}

func TestClusterPolicyStrictRefusesUnlisted(t *testing.T) {
	key := []byte("0123456789abcdef")
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, staticPeers(addrs...), func(c *graft.Config) {
			c.Cluster.Policy = graft.ClusterPolicyStrict
			c.Cluster.Key = key
			c.Cluster.AllowedNodes = []string{"n1", "n2", "n3"}
		}))
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	requireAllSee(t, members, 2)

	// An unlisted member holding the right key never enters their view,
	// and although its own one-sided view lists them, none admits it, so
	// it neither joins nor bootstraps (from that view it could: it expects
	// 4 members and sees 4).
	out := newMemberAddrs(t, "intruder")[0]
	cfg := memberConfig(t, out, 4, staticPeers(append(slices.Clone(addrs), out)...), func(c *graft.Config) {
		c.Cluster.Policy = graft.ClusterPolicyRestricted
		c.Cluster.Key = key
	})
	var logs lockedBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	intruder := graft.NewWithConfig(cfg)
	seqNodes(t, &runs)(intruder)
	// Start reports ErrNotAdmitted only once a member refused it before its
	// context ended: time enough for its gossip to find the others and ask
	// them on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	startErr := make(chan error, 1)
	go func() { startErr <- intruder.Start(ctx, 0) }()
	t.Cleanup(func() { _ = intruder.Stop() })

	requireNeverSeen(t, members, "intruder")
	select {
	case err := <-startErr:
		require.ErrorIs(t, err, graft.ErrNotAdmitted, "the unlisted member started")
		require.Contains(t, logs.String(), "not admitted to the cluster yet", "the refused member says why")
	case <-time.After(30 * time.Second):
		t.Fatal("Start of the unlisted member did not return after its context ended")
	}
	require.NoError(t, intruder.Stop())

	startSeq(t, members[0].m, "strict-after")
	requireAgree(t, members, "strict-after")
}

// With RF 3 of 5 members every member lacks replicas of some shards, so
// starting many workflows from every member, and reading them from every
// member, exercises forwarding.
func TestClusterForwardsStartsAndReads(t *testing.T) {
	var runs atomic.Int64
	members := startCluster(t, 5, seqNodes(t, &runs))
	leaves := countLeaves(t, members)
	const perMember = 40
	idOf := func(i, j int) string { return fmt.Sprintf("fwd-%d-%d", i, j) }

	// Every member starts its workflows (concurrently, to keep the test short).
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, cm := range members {
		wg.Go(func() {
			for j := range perMember {
				if err := cm.m.StartWorkflow(graft.WorkflowTrigger{
					WorkflowID: idOf(i, j), InitialNodes: []graft.NodeConfig{{Name: "A"}},
					InitialState: map[string]any{"trail": []string{}},
				}); err != nil {
					errs[i] = fmt.Errorf("%s starting %s: %w", cm.cfg.NodeID, idOf(i, j), err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	// All complete, as seen from the first member.
	want := map[string]*graft.WorkflowStatus{}
	for i := range members {
		for j := range perMember {
			s := waitDone(t, members[0].m, idOf(i, j))
			require.JSONEq(t, `{"trail":["A","B","C"]}`, string(s.CurrentStateJSON))
			want[idOf(i, j)] = s
		}
	}

	// Every member reads the same status and state for every workflow.
	for k, cm := range members {
		wg.Go(func() {
			for id, w := range want {
				s, err := cm.m.GetWorkflowStatus(id)
				for deadline := time.Now().Add(20 * time.Second); err != nil && graft.IsRetryable(err) && time.Now().Before(deadline); {
					s, err = cm.m.GetWorkflowStatus(id) // a read may time out through a leader change
				}
				switch {
				case err != nil:
					errs[k] = fmt.Errorf("%s reading %s: %w", cm.cfg.NodeID, id, err)
				case s.Status != w.Status || string(s.CurrentStateJSON) != string(w.CurrentStateJSON) || len(s.ExecutedNodes) != len(w.ExecutedNodes):
					errs[k] = fmt.Errorf("%s sees %s as %s, want %s", cm.cfg.NodeID, id, describe(s), describe(w))
				default:
					continue
				}
				return
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	if n := runs.Load(); n != int64(3*len(want)) {
		require.Greater(t, n, int64(3*len(want)))
		leaves.requireExplains(t, fmt.Sprintf("%d step runs for %d steps", n, 3*len(want)))
	}
}

// Three members that know nothing of each other but an mDNS service type
// find each other, bootstrap and run workflows.
func TestClusterFormsOverMDNS(t *testing.T) {
	svc := mdnsService(t)

	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, nil, func(c *graft.Config) {
			c.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryMDNS, Service: svc}}
		}))
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	requireAllSee(t, members, 2)
	startSeq(t, members[2].m, "over-mdns")
	requireAgree(t, members, "over-mdns")
}

// mdnsService returns an mDNS service type of its own for one test, or
// skips the test where multicast is unavailable.
func mdnsService(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	svc := "_g" + hex.EncodeToString(b) + "._tcp"
	stop, err := gossip.MDNS(svc).Advertise(gossip.Self{NodeID: "probe", Addr: "127.0.0.1", Port: 1})
	if err != nil {
		t.Skipf("no multicast here: %v", err)
	}
	require.NoError(t, stop())
	return svc
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Stop hands the shards a member leads to other replicas before it closes:
// the others lead them before its Stop returns, instead of electing a
// leader an election timeout after it went silent.
func TestStopHandsOffLeadership(t *testing.T) {
	var runs atomic.Int64
	members := startCluster(t, 3, seqNodes(t, &runs))
	requirePlaced(t, members, placeOn(t, 4, 3, "n1", "n2", "n3"), 30*time.Second)
	// The member leading the most shards stops; the others watch.
	var led []uint64
	for i, cm := range members {
		var its []uint64
		for s := uint64(1); s <= 4; s++ {
			if graft.LeadsShard(cm.m, s) {
				its = append(its, s)
			}
		}
		if len(its) > len(led) {
			led = its
			members[0], members[i] = members[i], members[0]
		}
	}
	require.NotEmpty(t, led, "no member leads a shard")

	var mu sync.Mutex
	first := map[uint64]time.Time{} // when another member first led each shard
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, s := range led {
				for _, cm := range members[1:] {
					if graft.LeadsShard(cm.m, s) {
						mu.Lock()
						if _, ok := first[s]; !ok {
							first[s] = time.Now()
						}
						mu.Unlock()
					}
				}
			}
			time.Sleep(time.Millisecond)
		}
	})
	const pollSlack = 20 * time.Millisecond
	stopping := time.Now()
	require.NoError(t, members[0].m.Stop())
	stopped := time.Now()
	// Look at once too, from this goroutine: on a loaded machine the poller
	// may not run for longer than pollSlack, and a leader seen now was
	// elected before now.
	for _, s := range led {
		for _, cm := range members[1:] {
			if graft.LeadsShard(cm.m, s) {
				now := time.Now()
				mu.Lock()
				if at, ok := first[s]; !ok || now.Before(at) {
					first[s] = now
				}
				mu.Unlock()
			}
		}
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) == len(led)
	}, 30*time.Second, 5*time.Millisecond, "the shards %s led never elected another leader", members[0].cfg.NodeID)
	close(done)
	wg.Wait()
	for _, s := range led {
		t.Logf("shard %d: led by another member %v after %s began stopping (Stop took %v)", s, first[s].Sub(stopping), members[0].cfg.NodeID, stopped.Sub(stopping))
		// The poller samples every millisecond and may run late under load
		// (make test once saw 85µs); an election without the hand-off
		// takes at least the election timeout (10 RTTs, 100ms here).
		require.False(t, first[s].After(stopped.Add(pollSlack)), "shard %d had no other leader until %v after %s's Stop returned", s, first[s].Sub(stopped), members[0].cfg.NodeID)
	}
	startSeq(t, members[1].m, "after")
	waitDone(t, members[2].m, "after")
}
