package graft

import (
	"fmt"

	"github.com/eleven-am/graft/gossip"
)

// Gossip key rotation, cluster-wide and without downtime (Serf's key
// manager): InstallGossipKey(new) on any member, then UseGossipKey(new),
// then RemoveGossipKey(old). Each member records its keyring in
// DataDir/serf.keyring and uses it again after a restart, so Cluster.Key
// in the configuration may keep the old key; members started with a fresh
// data directory need the new key as Cluster.Key.

// InstallGossipKey adds key (16, 24 or 32 bytes) to every member's gossip
// keyring; the primary key does not change. It fails if any member
// refused or did not answer (run it again once they are back).
func (m *Manager) InstallGossipKey(key []byte) error {
	return m.keyOp(func(g *gossip.Node) error { _, err := g.InstallKey(key); return err })
}

// UseGossipKey makes key, installed before, the key every member encrypts
// gossip with.
func (m *Manager) UseGossipKey(key []byte) error {
	return m.keyOp(func(g *gossip.Node) error { _, err := g.UseKey(key); return err })
}

// RemoveGossipKey removes key, which must not be the one in use, from
// every member's keyring.
func (m *Manager) RemoveGossipKey(key []byte) error {
	return m.keyOp(func(g *gossip.Node) error { _, err := g.RemoveKey(key); return err })
}

// ListGossipKeys returns the gossip keys installed in the cluster
// (base64-encoded), each with how many members hold it.
func (m *Manager) ListGossipKeys() (map[string]int, error) {
	var keys map[string]int
	err := m.keyOp(func(g *gossip.Node) error {
		res, err := g.ListKeys()
		keys = res.Keys
		return err
	})
	return keys, err
}

// keyOp runs op on this member's gossip, if it runs one.
func (m *Manager) keyOp(op func(*gossip.Node) error) error {
	if err := m.member.Running(); err != nil {
		return err
	}
	g := m.member.Gossip()
	if g == nil {
		return fmt.Errorf("%w: gossip keys: a lone member runs no gossip", ErrInvalidConfig)
	}
	return op(g)
}
