// Package logkeys holds the slog attribute keys every Graft component uses,
// so that logs from all packages can be filtered the same way.
package logkeys

// Attribute keys.
const (
	// Component names the package that logged ("shards", "executor", ...).
	Component = "component"
	// Member is the member's node ID (Config.NodeID).
	Member = "graft.node"
	// Workflow is a workflow ID.
	Workflow = "graft.workflow.id"
	// Shard is a shard ID.
	Shard = "graft.shard.id"
	// Step is the name of a workflow node (the registered node type).
	Step = "graft.step"
)
