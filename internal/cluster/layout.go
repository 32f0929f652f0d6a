package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/eleven-am/graft/internal/wire"
)

// The layout file, DataDir/cluster.json: which replicas this member holds,
// written durably and checked when read.

// layout is a cluster member's record of its replicas, kept in
// DataDir/cluster.json so a restarted member starts the same replicas with
// the same IDs. It is replaced (never modified in place) as rebalancing adds
// and drops replicas here.
type layout struct {
	// ClusterID identifies the cluster, created at its bootstrap: members
	// of clusters with other IDs are never admitted.
	ClusterID string `json:"cluster_id"`
	// Members are the node IDs the cluster bootstrapped with, sorted (the
	// bootstrap replica IDs are their index plus one); empty for a member
	// that joined later. Informational.
	Members []string `json:"members"`
	// Shards and RF are the shard count and replication factor.
	Shards int `json:"shards"`
	RF     int `json:"rf"`
	// Replicas maps each shard this member hosts to its replica ID.
	Replicas map[uint64]uint64 `json:"replicas"`
}

func loadLayout(dir string) (*layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster layout: %w", err)
	}
	l, err := parseLayout(b)
	if err != nil {
		return nil, fmt.Errorf("cluster layout %s is corrupt: %w", filepath.Join(dir, "cluster.json"), err)
	}
	return l, nil
}

// maxLayoutShards is the most shards a layout may record: the largest
// Cluster.ShardCount.
const maxLayoutShards = 4096

// parseLayout decodes and checks a layout file: a cluster ID, a shard count
// between 1 and maxLayoutShards, a replication factor of at least 1, member
// IDs that are not empty, and replicas only of shards 1 to Shards, with
// replica IDs that are not zero.
func parseLayout(b []byte) (*layout, error) {
	var l layout
	if err := wire.StrictJSON(b, &l); err != nil {
		return nil, err
	}
	switch {
	case l.ClusterID == "":
		return nil, errors.New("no cluster_id")
	case l.Shards < 1 || l.Shards > maxLayoutShards:
		return nil, fmt.Errorf("shards is %d, want 1 to %d", l.Shards, maxLayoutShards)
	case l.RF < 1:
		return nil, fmt.Errorf("rf is %d, want at least 1", l.RF)
	}
	for i, id := range l.Members {
		if id == "" {
			return nil, fmt.Errorf("members[%d] is empty", i)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(l.Replicas)) {
		if s < 1 || s > uint64(l.Shards) {
			return nil, fmt.Errorf("replicas names shard %d, outside 1 to %d", s, l.Shards)
		}
		if l.Replicas[s] == 0 {
			return nil, fmt.Errorf("replicas gives shard %d replica ID 0", s)
		}
	}
	if l.Replicas == nil {
		l.Replicas = map[uint64]uint64{}
	}
	return &l, nil
}

func saveLayout(dir string, l *layout) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileSync(filepath.Join(dir, "cluster.json"), b); err != nil {
		return fmt.Errorf("recording cluster layout: %w", err)
	}
	return nil
}

// WriteFileSync writes b to path durably: to a temporary file, synced,
// then renamed over path.
func WriteFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
