package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/shards"
)

// Errors across the member RPC. A member serving a call names the kind of
// its error (ToRemote): a sentinel of internal/errs it wraps, or a step's
// outcome; the member RPC carries the kind in the call's status details
// (internal/rpc), and the caller rebuilds an error of the same kind
// (FromRemote, RemoteStepError), so errors.Is and errors.As work as if the
// error had happened here. The text is the remote error's text.

// errorKind is an error that keeps its identity across the member RPC.
type errorKind struct {
	kind  string
	code  rpc.Code // the class an error of this kind travels with, unless the handler chose one
	match []error  // an error wrapping any of these is of this kind
	is    []error  // the caller's error wraps these
}

// errorKinds are the errors that keep their identity across the member
// RPC, most specific first. A member that is closing or not started is not
// ready for the caller, who may try another.
var errorKinds = []errorKind{
	{"workflow-not-found", rpc.CodeNotFound, []error{errs.ErrWorkflowNotFound}, []error{errs.ErrWorkflowNotFound}},
	{"workflow-exists", rpc.CodeExists, []error{errs.ErrWorkflowExists}, []error{errs.ErrWorkflowExists}},
	{"invalid-workflow", rpc.CodeInvalid, []error{errs.ErrInvalidWorkflow}, []error{errs.ErrInvalidWorkflow}},
	{"invalid-transition", rpc.CodeConflict, []error{errs.ErrInvalidTransition}, []error{errs.ErrInvalidTransition}},
	{"storage-full", rpc.CodeStorageFull, []error{errs.ErrStorageFull}, []error{errs.ErrStorageFull}},
	{"node-not-found", rpc.CodeNotFound, []error{executor.ErrNodeNotFound}, []error{executor.ErrNodeNotFound}},
	{"invalid-command", rpc.CodeInvalid, []error{errs.ErrInvalidCommand}, []error{errs.ErrInvalidCommand}},
	{"unknown-command", rpc.CodeNotFound, []error{errs.ErrUnknownCommand}, []error{errs.ErrUnknownCommand}},
	{"shard-not-found", rpc.CodeUnavailable, []error{shards.ErrShardNotFound}, []error{errs.ErrNotReady, shards.ErrShardNotFound}},
	{"timeout", rpc.CodeTimeout, []error{errs.ErrTimeout, shards.ErrTimeout}, []error{errs.ErrTimeout}},
	{"not-ready", rpc.CodeUnavailable, []error{errs.ErrNotReady, shards.ErrNotReady, errs.ErrClosed, shards.ErrClosed, errs.ErrNotStarted}, []error{errs.ErrNotReady}},
}

// Kinds of a step's failure, for a step run for another member (the
// member's exec service). detailPermanent is set when the error is
// Permanent.
const (
	kindStep       = "step"        // any other error the step returned
	kindStepDecode = "step-decode" // an *executor.DecodeError
	kindStepPanic  = "step-panic"  // an *executor.PanicError

	detailPermanent = "permanent"

	// MaxStepDetail and MaxStepStack bound the details of a step's
	// failure, in bytes, within the member RPC's 8 KiB of details.
	MaxStepDetail = 1 << 10
	MaxStepStack  = 4 << 10
)

// kindOf returns the kind of err, or nil.
func kindOf(err error) *errorKind {
	for i := range errorKinds {
		for _, target := range errorKinds[i].match {
			if errors.Is(err, target) {
				return &errorKinds[i]
			}
		}
	}
	return nil
}

// ToRemote returns err as a member RPC handler returns it: a
// *rpc.CodedError naming err's kind. A *rpc.CodedError in err's chain
// keeps its Code (and its Kind if it has one); otherwise the kind's Code
// applies. An error of no kind is returned as it is (CodeUnknown).
func ToRemote(err error) error {
	if err == nil {
		return nil
	}
	var ce *rpc.CodedError
	coded := errors.As(err, &ce)
	if coded && ce.Kind != "" {
		return err
	}
	k := kindOf(err)
	switch {
	case k == nil:
		return err
	case coded:
		return &rpc.CodedError{Code: ce.Code, Kind: k.kind, Details: ce.Details, Err: err}
	default:
		return &rpc.CodedError{Code: k.code, Kind: k.kind, Err: err}
	}
}

// remoteError is an error another member returned, rebuilt: it has the
// remote error's text and wraps the errors its kind names.
type remoteError struct {
	msg string
	is  []error
}

// Error returns the remote error's text.
func (e *remoteError) Error() string { return e.msg }

// Unwrap returns the errors the remote error's kind names.
func (e *remoteError) Unwrap() []error { return e.is }

// FromRemote maps an RPC error to the package's sentinels: a remote error
// of a kind in errorKinds wraps that kind's errors; one of no kind is
// mapped by its code (retryable ones to errs.ErrNotReady or errs.ErrTimeout, a full
// disk to errs.ErrStorageFull); an unreachable member is errs.ErrNotReady.
func FromRemote(err error) error {
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		for i := range errorKinds {
			if k := &errorKinds[i]; k.kind == re.Kind {
				return &remoteError{msg: re.Message, is: k.is}
			}
		}
		switch re.Code {
		case rpc.CodeUnavailable:
			return fmt.Errorf("%w: %s", errs.ErrNotReady, re.Message)
		case rpc.CodeTimeout:
			return fmt.Errorf("%w: %s", errs.ErrTimeout, re.Message)
		case rpc.CodeStorageFull:
			return fmt.Errorf("%w: %s", errs.ErrStorageFull, re.Message)
		}
		return errors.New(re.Message)
	}
	if errors.Is(err, rpc.ErrUnreachable) {
		return fmt.Errorf("%w: %w", errs.ErrNotReady, err)
	}
	return err
}

// StepFailure returns the error a step run for another member failed with,
// as the member's exec service answers it: its kind (a decode error, a panic, or any other
// error), whether it is Permanent, and what the caller needs to rebuild
// a decode error or a panic, each cut to MaxStepDetail bytes (the stack to
// MaxStepStack).
func StepFailure(err error) *rpc.CodedError {
	ce := &rpc.CodedError{Code: rpc.CodeUnknown, Kind: kindStep, Details: map[string]string{}, Err: err}
	var de *executor.DecodeError
	var pe *executor.PanicError
	switch {
	case errors.As(err, &pe):
		ce.Kind = kindStepPanic
		ce.Details["node"], ce.Details["value"] = clip(pe.Node, MaxStepDetail), clip(fmt.Sprint(pe.Value), MaxStepDetail)
		ce.Details["stack"] = clip(string(pe.Stack), MaxStepStack)
	case errors.As(err, &de):
		ce.Kind = kindStepDecode
		ce.Details["node"], ce.Details["param"], ce.Details["field"] = clip(de.Node, MaxStepDetail), clip(de.Param, MaxStepDetail), clip(de.Field, MaxStepDetail)
		if de.Err != nil {
			ce.Details["cause"] = clip(de.Err.Error(), MaxStepDetail)
		}
	}
	if executor.IsPermanent(err) {
		ce.Details[detailPermanent] = "1"
	}
	return ce
}

// clip returns s cut to at most n bytes, at a UTF-8 rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RemoteStepError returns the error of a step another member ran, rebuilt
// from its answer (see StepFailure), and whether err is one: an error with
// the step error's text that is Permanent if the step's was, and wraps an
// *executor.DecodeError or *executor.PanicError if the step's did.
func RemoteStepError(err error) (error, bool) {
	var re *rpc.RemoteError
	if !errors.As(err, &re) {
		return nil, false
	}
	d := re.Details
	rebuilt := &remoteError{msg: re.Message}
	switch re.Kind {
	case kindStep:
	case kindStepDecode:
		de := &executor.DecodeError{Node: d["node"], Param: d["param"], Field: d["field"]}
		if cause, ok := d["cause"]; ok {
			de.Err = errors.New(cause)
		}
		rebuilt.is = []error{de}
	case kindStepPanic:
		rebuilt.is = []error{&executor.PanicError{Node: d["node"], Value: d["value"], Stack: []byte(d["stack"])}}
	default:
		return nil, false
	}
	if d[detailPermanent] != "" {
		return executor.Permanent(rebuilt), true
	}
	return rebuilt, true
}

// ShardError gives a shard's error the code the caller retries by.
func ShardError(err error) error {
	if err == nil {
		return nil
	}
	code := rpc.CodeUnknown
	switch {
	case shards.IsRetryable(err) && errors.Is(err, shards.ErrTimeout):
		code = rpc.CodeTimeout
	case shards.IsRetryable(err), errors.Is(err, shards.ErrClosed), errors.Is(err, shards.ErrShardNotFound):
		code = rpc.CodeUnavailable
	}
	return &rpc.CodedError{Code: code, Err: err}
}
