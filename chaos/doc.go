// Package chaos owns Graft's in-process, fault-injecting network: the one place
// where partitions, isolation, message loss and delay are decided for all three
// links between members. Its subpackage harness runs seeded scenarios (a
// workload under a fault schedule, with checkers and a report) on top of it;
// chaos/cmd/graft-chaos is the command.
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
// [Network.Delay] and cleared with [Network.Heal] (or [Network.Reconnect] for one
// isolation); [Hooks] observe or veto individual sends. All randomness comes from
// the seed given to [NewNetwork], so a run is reproducible as far as goroutine
// scheduling allows; print [Network.Seed] when a test fails. A graft.Manager uses
// a Network through Config.Expert.Network.
//
// This package imports nothing of Graft, so Graft's own packages can test with
// it; the harness, which drives graft.Managers, lives in chaos/harness for that
// reason.
package chaos
