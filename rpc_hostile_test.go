package graft_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/chaos"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/stretchr/testify/require"
)

// strangerCalls are member RPC calls an outsider could make to damage or
// read a cluster: each names the method and its payload.
func strangerCalls(shards int) map[string][]byte {
	shardBody := func(s uint64, body string) []byte {
		return append(binary.BigEndian.AppendUint64(nil, s), body...)
	}
	drop, _ := json.Marshal(map[string]any{"shard": 1, "replica": 1})
	replace, _ := json.Marshal(map[string]any{"shard": 1, "replica": 9, "new": true})
	calls := map[string][]byte{
		"drop":       drop,
		"replica":    replace,
		"membership": []byte(`{"shard":1}`),
		"event":      []byte(`[{"from":"n2","kind":2,"view":{"id":"forged"}}]`),
		"exec":       []byte(`{"node":"A","ctx":{},"state":{}}`),
	}
	for s := 1; s <= shards; s++ {
		calls[fmt.Sprintf("read/%d", s)] = shardBody(uint64(s), `{"op":"list"}`)
		calls[fmt.Sprintf("apply/%d", s)] = shardBody(uint64(s), `{}`)
	}
	return calls
}

// A process on the network that is no member of the cluster cannot use the
// member RPC: every method but admission is refused before it touches
// state, and the cluster goes on as before.
func TestStrangersCannotCallTheMemberRPC(t *testing.T) {
	net := chaos.NewNetwork(17)
	t.Cleanup(func() { require.NoError(t, net.Close()) })
	var runs atomic.Int64
	members := startChaosCluster(t, net, 3, seqNodes(t, &runs))
	hosted := hostedBy(members)
	var completed sync.Map
	for _, cm := range members {
		require.NoError(t, cm.m.OnWorkflowCompleted(func(e *graft.WorkflowCompletedEvent) { completed.Store(e.WorkflowID, true) }))
	}

	client, err := rpc.NewClient(net.Dialer("intruder"), rpc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cm := range members {
		addr := net.IP(cm.cfg.NodeID).String() + ":" + strconv.Itoa(chaos.RPCPort)
		for name, body := range strangerCalls(4) {
			method, _, _ := strings.Cut(name, "/")
			_, err := client.Call(ctx, addr, method, body)
			require.Error(t, err, "%s to %s", name, cm.cfg.NodeID)
			require.ErrorContains(t, err, "not a member of this cluster", "%s to %s", name, cm.cfg.NodeID)
		}
	}

	startSeq(t, members[0].m, "after-strangers")
	for _, cm := range members {
		waitDone(t, cm.m, "after-strangers")
	}
	_, forged := completed.Load("forged")
	require.False(t, forged, "a forged completion event was delivered")
	require.Equal(t, hosted, hostedBy(members))
}

// A request to delete or replace a replica is checked against the shard's
// committed membership, whoever sends it: sent for every shard to every
// member of a running cluster (from an address the members share, so it
// passes the caller check), it deletes nothing.
func TestReplicaDeletionIsCheckedAgainstTheShard(t *testing.T) {
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	peers := staticPeers(addrs...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, peers, nil))
	}
	var runs atomic.Int64
	members, rpcPorts := startOnRPCPorts(t, cfgs, seqNodes(t, &runs))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	placed := placeOn(t, 4, 3, "n1", "n2", "n3")
	requirePlaced(t, members, placed, 30*time.Second)
	startSeq(t, members[0].m, "before")
	waitDone(t, members[2].m, "before")

	client, err := rpc.NewClient(nil, rpc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	for i := range members {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[i]))
		for s := 1; s <= 4; s++ {
			// Founding members' replica IDs are their index in the sorted
			// founder list, plus one.
			drop, _ := json.Marshal(map[string]any{"shard": s, "replica": i + 1})
			_, err := client.Call(ctx, addr, "drop", drop)
			requireRefusedDeletion(t, err, "drop shard %d on n%d", s, i+1)
			replace, _ := json.Marshal(map[string]any{"shard": s, "replica": 50 + i, "new": true})
			_, err = client.Call(ctx, addr, "replica", replace)
			requireRefusedDeletion(t, err, "replace shard %d on n%d", s, i+1)
		}
	}
	require.Never(t, func() bool {
		for _, cm := range members {
			if len(cm.m.GetClusterInfo().HostedShards) != 4 {
				return true
			}
		}
		return false
	}, 2*time.Second, 50*time.Millisecond, "a replica was deleted: %v", hostedBy(members))
	startSeq(t, members[1].m, "after")
	for _, cm := range members {
		waitDone(t, cm.m, "before")
		waitDone(t, cm.m, "after")
	}
}

// A request to start a replica is checked against the shard's committed
// membership too: sent for every shard to every member that does not hold
// it, it starts nothing, and the shards keep serving.
func TestStrayReplicaIsNotStarted(t *testing.T) {
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	peers := staticPeers(addrs...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, peers, func(c *graft.Config) { c.Cluster.ReplicationFactor = 2 }))
	}
	var runs atomic.Int64
	members, rpcPorts := startOnRPCPorts(t, cfgs, seqNodes(t, &runs))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	placed := placeOn(t, 4, 2, "n1", "n2", "n3")
	requirePlaced(t, members, placed, 30*time.Second)
	want := hostedBy(members)

	client, err := rpc.NewClient(nil, rpc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	asked := 0
	for i, cm := range members {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[i]))
		for s := uint64(1); s <= 4; s++ {
			if slices.Contains(placed.Replicas(s), cm.cfg.NodeID) {
				continue
			}
			asked++
			start, _ := json.Marshal(map[string]any{"shard": s, "replica": 60 + i, "new": true})
			_, err := client.Call(ctx, addr, "replica", start)
			require.Error(t, err, "start shard %d on %s", s, cm.cfg.NodeID)
			if !strings.Contains(err.Error(), "does not name replica") {
				require.ErrorContains(t, err, "cannot confirm that shard", "start shard %d on %s", s, cm.cfg.NodeID)
			}
		}
	}
	require.Positive(t, asked, "the placement puts every shard on every member: %v", want)
	require.Never(t, func() bool {
		return !maps.EqualFunc(hostedBy(members), want, slices.Equal)
	}, 2*time.Second, 50*time.Millisecond, "a stray replica was started: %v, want %v", hostedBy(members), want)
	startSeq(t, members[1].m, "after")
	waitDone(t, members[0].m, "after")
}

// requireRefusedDeletion checks that a request to delete a replica was
// refused: the shard says the replica is still a member, or (a loaded
// machine) the member could not confirm the removal in time.
func requireRefusedDeletion(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	require.Error(t, err, append([]any{what}, args...)...)
	if !strings.Contains(err.Error(), "still a member of the shard") {
		require.ErrorContains(t, err, "cannot confirm that replica", append([]any{what}, args...)...)
	}
}

// startOnRPCPorts starts one member per config, each with a member RPC
// port of its own that the test knows, and returns the members and ports.
func startOnRPCPorts(t *testing.T, cfgs []*graft.Config, register func(*graft.Manager)) ([]*clusterMember, []int) {
	t.Helper()
	longScenario(t)
	members := make([]*clusterMember, len(cfgs))
	ports := make([]int, len(cfgs))
	errs := make([]error, len(cfgs))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		ports[i] = portOf(t, freeAddr(t))
		m := graft.NewWithConfig(cfg)
		if register != nil {
			register(m)
		}
		members[i] = &clusterMember{cfg: cfg, m: m}
		wg.Go(func() { errs[i] = m.Start(ctx, ports[i]) })
	}
	wg.Wait()
	stopAtEnd(t, members)
	require.NoError(t, errors.Join(errs...), "starting the members")
	return members, ports
}
