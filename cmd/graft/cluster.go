package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/eleven-am/graft/internal/opclient"
	"github.com/spf13/cobra"
)

// membersCmd is graft members.
func (a *app) membersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the cluster's members as the member at --addr sees them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(func(c *opclient.Client) error {
				ans, err := c.Members(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, ans)
				}
				cluster := ans.ClusterID
				if cluster == "" {
					cluster = "none (a lone member)"
				}
				fmt.Fprintf(a.out, "answered by %s (%s), cluster %s, %d shards\n\n", ans.NodeID, ans.Status, cluster, ans.Shards)
				t := newTable(a.out, "ID", "STATUS", "RPC ADDR", "RAFT ADDR", "HELD", "LED", "EXECUTING", "QUEUED", "CAPACITY", "NODE TYPES", "STARTED", "METADATA")
				for _, m := range ans.Members {
					status := m.Status
					if m.DiskFull {
						status += " (disk full)"
					}
					t.row(m.ID, status, m.RPCAddr, m.RaftAddr, strconv.Itoa(len(m.ShardsHeld)), strconv.Itoa(len(m.ShardsLed)),
						strconv.Itoa(m.Executing), strconv.Itoa(m.Queued), strconv.Itoa(m.WorkerCapacity),
						strings.Join(m.NodeTypes, ","), when(m.StartedAt), pairs(m.Metadata))
				}
				return t.flush()
			})
		},
	}
}

// shardsCmd is graft shards.
func (a *app) shardsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "shards",
		Short: "List the cluster's shards: leader, replicas, and the answering member's replica",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(func(c *opclient.Client) error {
				ans, err := c.Shards(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, ans)
				}
				fmt.Fprintf(a.out, "answered by %s (LOCAL is its replica)\n\n", ans.NodeID)
				t := newTable(a.out, "SHARD", "LEADER", "REPLICAS", "LOCAL", "TERM", "VOTERS")
				for _, s := range ans.Shards {
					local, term, voters := "", "", ""
					if r := s.Local; r != nil {
						local = "replica " + strconv.FormatUint(r.Replica, 10)
						if r.Leader {
							local += " (leader)"
						}
						term = strconv.FormatUint(r.Term, 10)
						voters = ids(r.Members)
					}
					t.row(strconv.FormatUint(s.ID, 10), s.Leader, strings.Join(s.Replicas, ","), local, term, voters)
				}
				return t.flush()
			})
		},
	}
}
