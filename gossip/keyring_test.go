package gossip

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cluster's gossip key rotates without downtime: install the new key,
// make it primary, remove the old one; a member restarted afterwards with
// only the old key in its config rejoins from its keyring file, and one
// that never had the new key cannot.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	dirs := map[string]string{}
	withKey := func(c *Config) {
		c.Policy, c.Key = Restricted, oldKey
		dirs[c.NodeID] = t.TempDir()
		c.KeyringFile = filepath.Join(dirs[c.NodeID], "serf.keyring")
	}
	ids := []string{"k1", "k2", "k3"}
	nodes := startCluster(t, ids, withKey)

	_, err := nodes[0].InstallKey([]byte("short"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	res, err := nodes[0].InstallKey(newKey)
	require.NoError(t, err)
	require.Equal(t, 3, res.Answered)
	_, err = nodes[1].UseKey(newKey)
	require.NoError(t, err)
	_, err = nodes[2].RemoveKey(newKey)
	require.Error(t, err, "the primary key cannot be removed")
	_, err = nodes[2].RemoveKey(oldKey)
	require.NoError(t, err)
	res, err = nodes[0].ListKeys()
	require.NoError(t, err)
	require.Equal(t, map[string]int{base64.StdEncoding.EncodeToString(newKey): 3}, res.Keys)

	// k3 restarts with its original config (old key) and its keyring file.
	require.NoError(t, nodes[2].Stop())
	cfg := testConfig(t, "k3", addrOf(t, nodes[0]))
	cfg.Policy, cfg.Key = Restricted, oldKey
	cfg.KeyringFile = filepath.Join(dirs["k3"], "serf.keyring")
	back := startNode(t, cfg)
	waitMembers(t, []*Node{nodes[0], nodes[1], back}, ids)

	// A member with only the old key cannot join any more.
	stale := testConfig(t, "k4", addrOf(t, nodes[0]))
	stale.Policy, stale.Key = Restricted, oldKey
	n4 := startNode(t, stale)
	require.Eventually(t, func() bool { return n4.joinAttempts.Load() >= 2 }, waitFor, 10*time.Millisecond)
	require.NotContains(t, memberIDs(nodes[0]), "k4")
}
