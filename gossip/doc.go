// Package gossip owns Graft's cluster membership. It wraps Serf (which runs
// over memberlist) and provides:
//
//   - membership: who is in the cluster, with their tags (Members, Events);
//   - discovery: where to find peers (Static, DNS, MDNS) and the join and
//     rejoin loops that keep a member in the cluster after failed joins,
//     partitions longer than the suspicion timeout, and restarts;
//   - admission policies: OPEN, RESTRICTED (Serf gossip encryption key) and
//     STRICT (key plus a list of allowed node IDs);
//   - an advisory coordinator derived from the membership view (Coordinator);
//   - user events (Broadcast, OnUserEvent) and queries (Query, OnQuery).
//
// It does not own placement, replication or workflow state: nothing but
// membership, tags, user events and query replies travels over gossip.
//
// A minimal member:
//
//	n, err := gossip.New(gossip.Config{
//		NodeID:    "node-1",
//		BindAddr:  "10.0.0.1",
//		BindPort:  7946,
//		Discovery: []gossip.Discoverer{gossip.Static("10.0.0.2:7946", "10.0.0.3:7946")},
//	})
//	if err != nil { ... }
//	if err := n.Start(ctx); err != nil { ... }
//	defer n.Stop()
//
// # Ports
//
// A member uses one gossip port (BindPort), on both TCP and UDP. The Raft
// and RPC ports are chosen by the Manager and published as member tags.
//
// # Metrics
//
// Serf and memberlist also emit metrics through the process-global
// github.com/hashicorp/go-metrics sink; Graft does not configure it.
package gossip
