package gossip

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	clusterKey = bytes.Repeat([]byte{7}, 32)
	wrongKey   = bytes.Repeat([]byte{9}, 32)
)

func TestRestrictedRefusesWrongKey(t *testing.T) {
	t.Parallel()
	restricted := func(key []byte) func(*Config) {
		return func(c *Config) { c.Policy = Restricted; c.Key = key }
	}
	nodes := startCluster(t, []string{"w1", "w2"}, restricted(clusterKey))
	peers := []string{addrOf(t, nodes[0]), addrOf(t, nodes[1])}

	cfg := testConfig(t, "w3-wrong", peers...)
	restricted(wrongKey)(&cfg)
	intruder := startNode(t, cfg)
	noKey := startNode(t, testConfig(t, "w4-nokey", peers...))

	// Wait for several failed join attempts, checking all along that the
	// intruders never appear in anyone's view.
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			require.Equal(t, []string{"w1", "w2"}, memberIDs(n))
		}
		require.Equal(t, []string{"w3-wrong"}, memberIDs(intruder))
		return intruder.joinAttempts.Load() >= 3 && noKey.joinAttempts.Load() >= 3
	}, waitFor, 10*time.Millisecond)
	require.False(t, intruder.joined.Load())

	// The right key joins.
	cfg = testConfig(t, "w5", peers...)
	restricted(clusterKey)(&cfg)
	good := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], nodes[1], good}, []string{"w1", "w2", "w5"})
}

func TestStrictRefusesUnlistedMember(t *testing.T) {
	t.Parallel()
	allowed := []string{"s-a", "s-b", "s-c"}
	strict := func(list []string) func(*Config) {
		return func(c *Config) { c.Policy = Strict; c.Key = clusterKey; c.AllowedNodes = list }
	}
	nodes := startCluster(t, []string{"s-a", "s-b"}, strict(allowed))
	peers := []string{addrOf(t, nodes[0]), addrOf(t, nodes[1])}

	// Right key, but not listed by the others (it lists itself).
	cfg := testConfig(t, "s-x", peers...)
	strict(append(slices.Clone(allowed), "s-x"))(&cfg)
	startNode(t, cfg)

	require.Eventually(t, func() bool {
		for _, n := range nodes {
			require.NotContains(t, memberIDs(n), "s-x")
		}
		return nodes[0].admission.refusals("s-x") > 0 && nodes[1].admission.refusals("s-x") > 0
	}, waitFor, 10*time.Millisecond)
	require.False(t, nodes[0].admission.admits("s-x"))

	// A listed member joins.
	cfg = testConfig(t, "s-c", peers...)
	strict(allowed)(&cfg)
	good := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], nodes[1], good}, allowed)
	for _, n := range []*Node{nodes[0], nodes[1], good} {
		require.NotContains(t, memberIDs(n), "s-x")
	}
}

// Admit refuses members by their tags, on join and on later tag updates.
func TestAdmitRefusesByTags(t *testing.T) {
	t.Parallel()
	sameTeam := func(c *Config) {
		c.Tags = map[string]string{"team": "a"}
		c.Admit = func(m Member) error {
			if m.Tags["team"] != "a" {
				return errors.New("another team")
			}
			return nil
		}
	}
	nodes := startCluster(t, []string{"t-a1", "t-a2"}, sameTeam)
	peers := []string{addrOf(t, nodes[0]), addrOf(t, nodes[1])}

	cfg := testConfig(t, "t-b1", peers...)
	cfg.Tags = map[string]string{"team": "b"}
	startNode(t, cfg) // it has no Admit: it lists them, they refuse it
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			require.NotContains(t, memberIDs(n), "t-b1")
		}
		return nodes[0].admission.refusals("t-b1") > 1 && nodes[1].admission.refusals("t-b1") > 1
	}, waitFor, 10*time.Millisecond)

	// A member of the team joins; when it changes teams its update is
	// refused and it stays listed with its old tags.
	cfg = testConfig(t, "t-a3", peers...)
	sameTeam(&cfg)
	good := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], nodes[1], good}, []string{"t-a1", "t-a2", "t-a3"})
	require.NoError(t, good.SetTags(map[string]string{"team": "b"}))
	require.Eventually(t, func() bool { return nodes[0].admission.refusals("t-a3") > 0 }, waitFor, 10*time.Millisecond)
	for _, m := range nodes[0].Members() {
		if m.ID == "t-a3" {
			require.Equal(t, "a", m.Tags["team"])
		}
	}
}
