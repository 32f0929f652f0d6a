package cluster

import (
	"testing"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/shards"
	"github.com/stretchr/testify/require"
)

func member(id, raft, nhid string, status gossip.MemberStatus) gossip.Member {
	tags := map[string]string{tagRaft: raft}
	if nhid != "" {
		tags[tagNodeHost] = nhid
	}
	return gossip.Member{ID: id, Tags: tags, Status: status}
}

func TestTargetsOfAMember(t *testing.T) {
	t.Parallel()
	random := "0b7c6f43-7d1e-4a8e-9b61-3f0c2a9d5e11"
	p := member("n1", "10.0.0.1:7000", random, gossip.StatusAlive)
	require.Equal(t, random, targetOf(p), "the published NodeHost ID names new replicas")
	require.Equal(t, []string{shards.NodeHostIDOf("n1"), "10.0.0.1:7000"}, aliasesOf(p))

	derived := member("n2", "10.0.0.2:7000", shards.NodeHostIDOf("n2"), gossip.StatusAlive)
	require.Equal(t, shards.NodeHostIDOf("n2"), targetOf(derived))
	require.Equal(t, []string{"10.0.0.2:7000"}, aliasesOf(derived))

	// A member of an earlier version publishes no ID: its Raft address,
	// which Dragonboat refuses as a new target.
	old := member("n3", "10.0.0.3:7000", "", gossip.StatusAlive)
	require.Equal(t, "10.0.0.3:7000", targetOf(old))
	bad := member("n4", "10.0.0.4:7000", "not-a-uuid", gossip.StatusAlive)
	require.Equal(t, "10.0.0.4:7000", targetOf(bad))
}

func TestTargetIndex(t *testing.T) {
	t.Parallel()
	random := "0b7c6f43-7d1e-4a8e-9b61-3f0c2a9d5e11"
	members := map[string]gossip.Member{
		"n1": member("n1", "10.0.0.1:7000", random, gossip.StatusAlive),
		"n2": member("n2", "10.0.0.2:7000", shards.NodeHostIDOf("n2"), gossip.StatusAlive),
		// n0, failed, publishes n1's random ID and n3's address; n9
		// publishes n2's derived ID.
		"n0": member("n0", "10.0.0.3:7000", random, gossip.StatusFailed),
		"n3": member("n3", "10.0.0.3:7000", "", gossip.StatusAlive),
		"n9": member("n9", "10.0.0.9:7000", shards.NodeHostIDOf("n2"), gossip.StatusAlive),
		// n5 and n6, both alive, publish the same ID: it names neither.
		"n5": member("n5", "10.0.0.5:7000", "5e0a9a43-7d1e-4a8e-9b61-3f0c2a9d5e11", gossip.StatusAlive),
		"n6": member("n6", "10.0.0.6:7000", "5e0a9a43-7d1e-4a8e-9b61-3f0c2a9d5e11", gossip.StatusAlive),
	}
	idx := targetIndex(members)
	require.Equal(t, "n1", idx[random], "an alive claimant wins over a failed one")
	require.Equal(t, "n9", idx["10.0.0.9:7000"])
	require.Equal(t, "n1", idx["10.0.0.1:7000"])
	require.Equal(t, "n1", idx[shards.NodeHostIDOf("n1")])
	require.Equal(t, "n2", idx[shards.NodeHostIDOf("n2")], "a derived ID names its node whatever others publish")
	require.Equal(t, "n3", idx["10.0.0.3:7000"])
	require.Empty(t, idx[shards.NodeHostIDOf("stranger")])
	_, named := idx["5e0a9a43-7d1e-4a8e-9b61-3f0c2a9d5e11"]
	require.False(t, named, "an ID two alive members claim names none")
	require.Equal(t, "n5", idx["10.0.0.5:7000"])
}
