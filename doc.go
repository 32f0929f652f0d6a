// Package graft runs durable, multi-step workflows inside your Go process.
//
// Every process that imports graft is a member. A workflow is a graph of
// nodes (your types with GetName and Execute methods) that pass a JSON state
// along; its record lives in a Raft group (a shard) stored in Pebble, so an
// acknowledged workflow survives crashes and restarts, and the member that
// leads the shard runs its steps.
//
//	m := graft.New("node-1", "127.0.0.1:7000", "./data", logger)
//	_ = m.RegisterNode(&ProcessData{})
//	if err := m.Start(ctx, 8080); err != nil { ... }
//	defer m.Stop()
//	err := m.StartWorkflow(graft.WorkflowTrigger{
//		WorkflowID:   "order-42",
//		InitialNodes: []graft.NodeConfig{{Name: "ProcessData"}},
//		InitialState: map[string]any{"input": "raw"},
//	})
//	status, _ := m.GetWorkflowStatus("order-42")
//
// See the README for the node shapes, the merge rule for parallel branches,
// retries, CanStart, priorities, delays, idempotency keys and events.
package graft
