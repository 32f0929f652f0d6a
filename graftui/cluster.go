package graftui

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/eleven-am/graft"
)

// clusterData is the cluster page's data.
type clusterData struct {
	Info   graft.ClusterInfo
	Health graft.Health
	Shards []shardRow
	// Local are this member's replicas (Replicas set): applied index,
	// voting replicas, state hash.
	Local    []localReplica
	Replicas bool
}

// shardRow is one shard: the members holding a replica of it and the one
// leading it, as the cluster state reports them.
type shardRow struct {
	ID       uint64
	Replicas []string
	Leaders  []string
	// HeldHere and LedHere describe this member.
	HeldHere, LedHere bool
}

// localReplica is one replica this member runs.
type localReplica struct {
	Shard uint64
	graft.ReplicaState
}

// cluster serves the cluster page. ?replicas=1 adds this member's replicas
// with their applied index and state hash (it reads each shard's whole
// state, so it is off by default).
func (h *handler) cluster(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var replicas bool
	switch q.Get("replicas") {
	case "", "0", "false":
	case "1", "true":
		replicas = true
	default:
		h.badParam(w, r, "replicas", "%q is not 1 or 0", q.Get("replicas"))
		return
	}
	info := h.m.GetClusterInfo()
	d := clusterData{Info: info, Health: h.m.Health(), Shards: shardRows(info), Replicas: replicas}
	if replicas {
		states := h.m.ReplicaStates()
		for id, s := range states {
			d.Local = append(d.Local, localReplica{Shard: id, ReplicaState: s})
		}
		slices.SortFunc(d.Local, func(a, b localReplica) int { return cmp.Compare(a.Shard, b.Shard) })
	}
	h.render(w, r, http.StatusOK, "cluster", "Cluster", "cluster", d)
}

// shardRows lists shards 1..info.Shards with the members that hold and
// lead each.
func shardRows(info graft.ClusterInfo) []shardRow {
	rows := make([]shardRow, info.Shards)
	for i := range rows {
		id := uint64(i + 1)
		rows[i] = shardRow{ID: id, HeldHere: slices.Contains(info.HostedShards, id), LedHere: slices.Contains(info.LeadShards, id)}
		for _, m := range info.Members {
			if slices.Contains(m.ShardsHeld, id) {
				rows[i].Replicas = append(rows[i].Replicas, m.ID)
			}
			if slices.Contains(m.ShardsLed, id) {
				rows[i].Leaders = append(rows[i].Leaders, m.ID)
			}
		}
	}
	return rows
}
