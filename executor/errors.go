package executor

import (
	"errors"
	"fmt"
)

// ErrInvalidNode is wrapped by every error Registry.Register returns for a
// node whose shape is not supported: missing or malformed GetName, Execute or
// CanStart methods, unsupported parameter or return types, a nil node or an
// empty name. The error text names the node and the exact problem.
var ErrInvalidNode = errors.New("graft: invalid node")

// ErrDuplicateNode is wrapped by the error Registry.Register returns when a
// node with the same name is already registered.
var ErrDuplicateNode = errors.New("graft: duplicate node")

// ErrNodeNotFound is wrapped by the error Registry.Unregister returns for a
// name that is not registered.
var ErrNodeNotFound = errors.New("graft: node not found")

// ErrInvalidResult is wrapped by the error Node.Execute returns when a node's
// NodeResult cannot be used: a GlobalState that does not encode to a JSON
// object, a value that cannot be encoded to JSON at all, or a NextNode with
// an empty NodeName. Such errors are also marked Permanent.
var ErrInvalidResult = errors.New("graft: invalid node result")

// ErrStopping is the cause (see context.Cause) attached to a step's context
// when it is cancelled because the member is shutting down. The step's
// outcome is not recorded: it runs again after the member restarts (or on
// the shard's next leader).
var ErrStopping = errors.New("graft: member stopping")

// ErrWorkflowStopped is the cause attached to a step's context when it is
// cancelled because its workflow ended meanwhile: stopped, or failed on
// another branch. The step's outcome is discarded.
var ErrWorkflowStopped = errors.New("graft: workflow stopped")

// Permanent marks err as non-retryable: the step failed and running it again
// would fail the same way. Errors not marked Permanent are retried.
// Permanent(nil) returns nil. The returned error has the same text as err and
// unwraps to it, so errors.Is and errors.As keep working.
//
// Nodes return Permanent(err) from Execute to stop retries. The executor
// itself marks decode errors and invalid results as permanent; panics are not.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether any error in err's chain was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// permanentError is the marker Permanent wraps errors in.
type permanentError struct {
	err error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// DecodeError reports that a node's state or config JSON could not be decoded
// into the node's parameter type. Node.Execute and Node.CanStart return it
// marked Permanent, so unwrap with errors.As.
type DecodeError struct {
	// Node is the node's registered name.
	Node string
	// Param is "state" or "config".
	Param string
	// Field is the dotted path of the offending field, e.g. "items.0.price";
	// empty when the error is not tied to a field (e.g. malformed JSON).
	Field string
	// Err is the underlying encoding/json error.
	Err error
}

// Error returns e.g. `graft: node "Charge": decoding config field "amount": json: ...`.
func (e *DecodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("graft: node %q: decoding %s field %q: %v", e.Node, e.Param, e.Field, e.Err)
	}
	return fmt.Sprintf("graft: node %q: decoding %s: %v", e.Node, e.Param, e.Err)
}

// Unwrap returns the underlying encoding/json error.
func (e *DecodeError) Unwrap() error { return e.Err }

// PanicError reports that a node's Execute or CanStart method panicked. The
// panic is recovered so it never crashes the process. PanicError is not
// Permanent: the step is retried like any other failure.
type PanicError struct {
	// Node is the node's registered name.
	Node string
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine stack captured at recovery (runtime/debug.Stack).
	Stack []byte
}

// Error returns e.g. `graft: node "Charge": panic: index out of range`. The
// stack is not included; read it from Stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("graft: node %q: panic: %v", e.Node, e.Value)
}

// nodeError is the error type for invalid nodes, duplicates, unknown names
// and invalid results. Its text is "graft: node <node>: <msg>[: <err>]" and
// it unwraps to both kind (a sentinel) and err (the cause, if any).
type nodeError struct {
	node string // already formatted: a quoted name or "of type T"
	msg  string
	kind error
	err  error
}

func (e *nodeError) Error() string {
	if e.err != nil {
		return "graft: node " + e.node + ": " + e.msg + ": " + e.err.Error()
	}
	return "graft: node " + e.node + ": " + e.msg
}

func (e *nodeError) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}
