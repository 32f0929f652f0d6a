// Package harness tests Graft under faults: it runs real members in one
// process over a [chaos.Network] (or each in a process of its own, see
// Process mode), drives a recorded workload through a
// seeded fault schedule, and checks the history and the cluster afterwards.
//
// # Running a scenario
//
// [Run] starts Options.Members members ("n1".."nN"), each with its own
// data directory, whose gossip, Raft and member-RPC links all go through
// one [chaos.Network]; runs the [Workload] while applying the [Scenario]'s
// faults; heals the network and restarts crashed members when the fault
// phase ends; waits for the workflows to settle (Options.Settle is the
// liveness bound); and returns a [Report] with each checker's verdict:
//
//	sc, _ := harness.ScenarioNamed("partition-minority")
//	rep, err := harness.Run(ctx, sc, harness.Options{Members: 3, Seed: 7,
//		Register: func(m *graft.Manager) error { return m.RegisterNode(MyNode{}) },
//		Workload: harness.Workload{Workflows: 40}})
//	if err != nil { ... }            // the run could not be carried out
//	if !rep.Passed { ... rep.Summary(), rep.WriteFiles(dir) ... }
//
// [Scenarios] lists the named scenarios; a Scenario is a name and a pure
// function from a seeded random source and a [Topology] to a list of
// [Fault]s, so users can write their own. The command
// chaos/cmd/graft-chaos runs a named scenario and writes report.json,
// history.json and, when the history is not linearizable, history.html.
//
// # Faults
//
// Network faults ([FaultPartition], [FaultIsolate], [FaultIsolateLeader],
// [FaultDrop], [FaultDelay], [FaultHeal]) set rules on the Network. Member
// faults act on the Manager: [FaultCrash] cuts the member's links and then
// stops its Manager, which is as close to a kill as one process allows
// (see FaultCrash for what differs); [FaultRestart] starts it again on the
// same data directory; [FaultWipe] deletes its data directory first;
// [FaultJoin] starts a member that was not a founder; [FaultLeave] stops
// one gracefully. In a run whose schedule has a file-system fault, every
// member runs on its own [chaos.FaultFS] (passed as
// graft.ExpertConfig.FS, under its Pebble database, its Raft log and
// snapshots, and its disk guard's free-space readings): [FaultDiskFull]
// makes it fail every create, write and sync with ENOSPC until
// [FaultDiskFree]; [FaultSlowDisk] delays its fsyncs until
// [FaultFastDisk]. A write that fails would end the process in production
// (Dragonboat and Pebble panic), so the harness crashes the member when
// that happens and restarts it when the disk is freed (see
// FaultDiskFull). Other runs keep the real file system, and Dragonboat its
// normal mode. [FaultDiskFloor] restarts a member with a free-space floor
// no disk meets, so only Graft's disk guard sees a full disk (refused
// starts and controls, held step writes) until [FaultDiskFloorOff].
//
// # Process mode
//
// With Options.Process set, every member runs in a child process of its
// own (the program [ProcessOptions] names, which calls [MemberMain]; by
// default this program) and the members talk over real loopback sockets.
// The workload, the history and the checkers stay in the harness process:
// each client operation is an HTTP call to the picked member's control
// server (127.0.0.1, a per-run token), timed in the harness around the
// call, and a call without an answer has an unknown outcome; each member
// streams its step executions to the harness over a pipe as they end
// (their times are wall-clock offsets from the run's start); and the
// members report their gossip views, replicas (state hashes) and led
// shards for the convergence checks. A crash is SIGKILL and a restart a
// new process on the same data directory and ports. The in-process
// [chaos.Network] and [chaos.FaultFS] cannot reach another process, so
// process mode applies only the faults [ProcessFaults] lists (crash,
// restart, wipe, join, leave, disk-floor and disk-floor-off) and Run
// refuses any other schedule with an error naming the fault.
//
// # Workload and history
//
// The workload starts workflows of six shapes ([AllShapes]: sequential,
// fan-out with a CanStart join, keyed steps, delays, injected step errors
// retried, long ones that pauses, resumes and stops find running) from
// random members, and reads their status from random members. Every client
// operation is recorded with its invocation and return times and outcome
// ([ClientOp]); every step execution with its workflow, node, task,
// idempotency key, execution ID, member and start and end ([StepRun]).
//
// # Checkers
//
// Each checker is a pure function of the history or of a cluster snapshot:
// [CheckNotLost], [CheckTerminalAfterFaults], [CheckKeyed], [CheckNoRerun],
// [CheckLinearizability] (porcupine, per workflow), and, on the members
// after the faults, [CheckReplicas], [CheckReplicationFactor],
// [CheckViews] and [CheckBalance].
//
// # Determinism
//
// The seed fixes the fault schedule ([Scenario.Schedule]), the workload's
// operations (their times, members, workflows and triggers, step durations)
// and the network's drop decisions in the order they are asked for. It
// cannot fix goroutine scheduling, Raft election timing, gossip timing, and
// hence which member leads a shard when a fault strikes, which operations
// are in flight at that moment, or which sends the drop decisions fall on.
// A repeated seed replays the same faults against the same workload, not
// the same history. Print the seed ([Report.Summary] does) when a run
// fails.
package harness
