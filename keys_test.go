package graft_test

import (
	"bytes"
	"encoding/base64"
	"sync/atomic"
	"testing"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// The gossip key rotates cluster-wide through any member, and the cluster
// keeps running workflows throughout.
func TestGossipKeyRotation(t *testing.T) {
	longScenario(t)
	oldKey, newKey := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, staticPeers(addrs...), func(c *graft.Config) {
			c.Cluster.Policy, c.Cluster.Key = graft.ClusterPolicyRestricted, oldKey
		}))
	}
	var runs atomic.Int64
	members := startConfigs(t, cfgs, seqNodes(t, &runs))
	b64 := base64.StdEncoding.EncodeToString

	keys, err := members[0].m.ListGossipKeys()
	require.NoError(t, err)
	require.Equal(t, map[string]int{b64(oldKey): 3}, keys)
	require.NoError(t, members[1].m.InstallGossipKey(newKey))
	startSeq(t, members[0].m, "during-rotation")
	require.NoError(t, members[2].m.UseGossipKey(newKey))
	require.Error(t, members[0].m.RemoveGossipKey(newKey), "the key in use cannot be removed")
	require.NoError(t, members[0].m.RemoveGossipKey(oldKey))
	keys, err = members[2].m.ListGossipKeys()
	require.NoError(t, err)
	require.Equal(t, map[string]int{b64(newKey): 3}, keys)
	startSeq(t, members[1].m, "after-rotation")
	for _, cm := range members {
		waitDone(t, cm.m, "during-rotation")
		waitDone(t, cm.m, "after-rotation")
	}
	requireAllSee(t, members, 2)

	lone := setup(t, nil, nil)
	_, err = lone.m.ListGossipKeys()
	require.ErrorIs(t, err, graft.ErrInvalidConfig)
}
