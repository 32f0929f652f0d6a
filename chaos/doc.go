// Package chaos owns Graft's in-process, fault-injecting network: the one place
// where partitions, isolation, message loss and delay are decided for all three
// links between members.
//
// A [Network] joins named endpoints (one per member, e.g. "n1") and offers a
// transport for each link:
//
//   - gossip: [Network.MemberlistTransport], a memberlist.NodeAwareTransport;
//   - Raft: [Network.RaftTransportFactory], a Dragonboat config.TransportFactory;
//   - member RPC: [Network.Listen] and [Network.Dialer], net.Conn pairs that gRPC
//     can use through grpc.WithContextDialer.
//
// Every message, new connection and stream write asks [Network.Allowed] (the
// single decision point) whether it may pass and how long it is held back. Faults
// are set with [Network.Partition], [Network.Isolate], [Network.Drop],
// [Network.Delay] and cleared with [Network.Heal]; [Hooks] observe or veto
// individual sends. All randomness comes from the seed given to [NewNetwork], so
// a run is reproducible as far as goroutine scheduling allows; print
// [Network.Seed] when a test fails.
//
// Scenarios (a workload plus a fault schedule), crash/restart/wipe of members and
// the invariant checkers (no acknowledged workflow lost, linearizable history,
// gossip convergence, shards back to RF) are built on top of this package later;
// they are not here yet.
package chaos
