package wf

import "fmt"

// MaxDepth is the deepest nesting of JSON objects and arrays accepted in a
// workflow's state, a node's config and a dev command's params; the root
// package exports it as graft.MaxStateDepth. Depth counts open containers:
// a scalar is 0 deep, {} and [1] are 1 deep, {"a":[2]} is 2 deep.
//
// Proposers enforce it (StartWorkflow, the executor on every step's result,
// BroadcastCommand and the receiving end of a command). The state machine
// does not, so that replaying a log written under another limit reaches the
// same state on every replica.
const MaxDepth = 100

// DepthError reports JSON nested deeper than its limit.
type DepthError struct {
	// Depth is how deep the JSON nests.
	Depth int
	// Limit is the deepest nesting allowed.
	Limit int
}

// Error says how deep the JSON nests and names the limit.
func (e *DepthError) Error() string {
	return fmt.Sprintf("nested %d levels deep, over the limit of %d (graft.MaxStateDepth)", e.Depth, e.Limit)
}

// Depth returns the deepest nesting of objects and arrays in the JSON text
// b, counting brackets outside strings in one pass over b without decoding
// it. It does not validate b: for text that is not JSON it returns some
// value between 0 and len(b).
func Depth(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth = max(depth-1, 0)
		case '"':
			// Skip the string: up to the next quote not escaped by a backslash.
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return deepest
}

// CheckDepth returns a *DepthError if b nests deeper than MaxDepth.
func CheckDepth(b []byte) error {
	if d := Depth(b); d > MaxDepth {
		return &DepthError{Depth: d, Limit: MaxDepth}
	}
	return nil
}
