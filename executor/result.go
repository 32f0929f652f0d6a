package executor

import (
	"encoding/json"
	"time"
)

// NodeResult is what a node's Execute method returns: the new workflow state
// and the nodes to run next.
//
// Returning (nil, nil) from Execute is allowed and means "no state change and
// no next nodes", exactly like returning &NodeResult{}. If Execute returns a
// non-nil error, the NodeResult is ignored.
type NodeResult struct {
	// GlobalState replaces the workflow state. It may be a struct, a pointer
	// to a struct or a map with string keys, and must encode to a JSON
	// object; strings, numbers and slices are rejected. It is serialized to
	// JSON with encoding/json, so only exported fields and `json` tags count.
	// nil, a nil pointer and a nil map all mean "state unchanged".
	GlobalState interface{}

	// NextNodes lists the nodes to schedule after this one, in any order.
	// nil or empty means this branch of the workflow ends here.
	NextNodes []NextNode
}

// NextNode schedules one node to run after the current one.
type NextNode struct {
	// NodeName is the registered name of the node to run. Required.
	NodeName string

	// Config is passed to the next node as its config parameter. It is
	// serialized to JSON with encoding/json and decoded into the next node's
	// config type, so it should encode to an object for struct or map
	// configs. nil means no config: the next node receives its config
	// type's zero value (see Node.Execute).
	Config interface{}

	// Priority orders ready nodes: higher values run first. Zero is the
	// default priority; negative values are allowed.
	Priority int

	// Delay postpones the next node by at least this duration. nil, zero or
	// negative means run as soon as possible.
	Delay *time.Duration

	// IdempotencyKey, when non-nil, deduplicates scheduling: the engine runs
	// NodeName at most once for a given key. nil means no deduplication. An
	// empty (but non-nil) key is a valid key.
	IdempotencyKey *string
}

// Output is the encoded form of a NodeResult, produced by Node.Execute.
type Output struct {
	// State is the JSON object encoding of NodeResult.GlobalState; nil when
	// GlobalState was nil (state unchanged).
	State json.RawMessage

	// Base is the JSON encoding of the state as the node decoded it, before
	// the call: the state the node read. The engine merges State against it,
	// so fields the node's state type does not know are left alone.
	Base json.RawMessage

	// Next holds NodeResult.NextNodes in the same order, with Config encoded.
	Next []Next
}

// Next is the encoded form of a NextNode.
type Next struct {
	// Node is NextNode.NodeName; never empty.
	Node string
	// Config is the JSON encoding of NextNode.Config; nil when Config was nil.
	Config json.RawMessage
	// Priority is NextNode.Priority; higher runs first.
	Priority int
	// Delay is *NextNode.Delay, or zero when it was nil or negative.
	Delay time.Duration
	// IdempotencyKey is *NextNode.IdempotencyKey, or "" when it was nil.
	IdempotencyKey string
	// HasKey reports whether NextNode.IdempotencyKey was non-nil, so an empty
	// key can be told apart from no key.
	HasKey bool
}
