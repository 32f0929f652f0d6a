package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Bounds of the operator requests, checked by the decoders.
const (
	// MaxRequestBytes bounds one request's payload.
	MaxRequestBytes = 64 << 10
	// MaxWorkflowIDBytes bounds a workflow ID (graft.MaxWorkflowIDLength).
	MaxWorkflowIDBytes = 256
	// MaxListLimit is the largest ListRequest.Limit (graft.MaxListLimit).
	MaxListLimit = 1000
	// MaxMetadataPairs bounds a metadata filter (graft.MaxListMetadataPairs).
	MaxMetadataPairs = 8
	// MaxFilterBytes bounds each metadata key and value, and a node name,
	// of a filter (graft.MaxListFilterLen).
	MaxFilterBytes = 1024
	// MaxPageTokenBytes bounds a page token.
	MaxPageTokenBytes = 1024
	// MaxCommandNameBytes bounds a dev command's name.
	MaxCommandNameBytes = 256
	// MaxParamsBytes bounds a dev command's params (the member refuses
	// commands over graft.MaxCommandBytes encoded in any case).
	MaxParamsBytes = 4 << 10
)

// statuses are the statuses a Filter may select.
var statuses = [...]string{"running", "paused", "blocked", "completed", "failed", "stopped"}

// Statuses returns the statuses a Filter may select, in lifecycle order.
func Statuses() []string { return slices.Clone(statuses[:]) }

// Method is one operator method: how a member decodes its request, and
// serves a decoded request with a Service.
type Method struct {
	// Decode decodes a request: it touches no state, refuses what is
	// malformed or out of bounds, and allocates in proportion to the
	// payload.
	Decode func(payload []byte) (any, error)
	// Serve serves a request Decode returned and encodes the answer.
	Serve func(ctx context.Context, s Service, req any) ([]byte, error)
}

// Lookup returns the operator method named name.
func Lookup(name string) (Method, bool) {
	switch name {
	case MethodMembers:
		return method(decodeEmpty, func(ctx context.Context, s Service, _ struct{}) (any, error) { return s.Members(ctx) }), true
	case MethodShards:
		return method(decodeEmpty, func(ctx context.Context, s Service, _ struct{}) (any, error) { return s.Shards(ctx) }), true
	case MethodList:
		return method(DecodeList, func(ctx context.Context, s Service, r ListRequest) (any, error) { return s.List(ctx, r) }), true
	case MethodCount:
		return method(DecodeCount, func(ctx context.Context, s Service, f Filter) (any, error) { return s.Count(ctx, f) }), true
	case MethodShow:
		return method(DecodeWorkflow, func(ctx context.Context, s Service, r WorkflowRequest) (any, error) { return s.Show(ctx, r.ID) }), true
	case MethodPause, MethodResume, MethodStop:
		return method(DecodeWorkflow, func(ctx context.Context, s Service, r WorkflowRequest) (any, error) {
			return nil, s.Control(ctx, name, r.ID)
		}), true
	case MethodBroadcast:
		return method(DecodeCommand, func(ctx context.Context, s Service, r CommandRequest) (any, error) {
			return nil, s.Broadcast(ctx, r)
		}), true
	case MethodQuery:
		return method(DecodeCommand, func(ctx context.Context, s Service, r CommandRequest) (any, error) { return s.Query(ctx, r) }), true
	}
	return Method{}, false
}

// IsMethod reports whether name is an operator method.
func IsMethod(name string) bool {
	_, ok := Lookup(name)
	return ok
}

// method returns the Method of typed decode and serve functions; a nil
// answer encodes as {}.
func method[R any](decode func([]byte) (R, error), serve func(context.Context, Service, R) (any, error)) Method {
	return Method{
		Decode: func(payload []byte) (any, error) {
			req, err := decode(payload)
			return req, err
		},
		Serve: func(ctx context.Context, s Service, req any) ([]byte, error) {
			r, ok := req.(R)
			if !ok {
				return nil, fmt.Errorf("a %T is not a request of this method", req)
			}
			out, err := serve(ctx, s, r)
			if err != nil {
				return nil, err
			}
			if isNil(out) {
				return []byte("{}"), nil
			}
			return json.Marshal(out)
		},
	}
}

// isNil reports whether an answer is nil, typed or not.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch a := v.(type) {
	case *MembersAnswer:
		return a == nil
	case *ShardsAnswer:
		return a == nil
	case *ListAnswer:
		return a == nil
	case *Counts:
		return a == nil
	case *Workflow:
		return a == nil
	case *QueryAnswer:
		return a == nil
	}
	return false
}

// DecodeRequest decodes the request of operator method name.
func DecodeRequest(name string, payload []byte) (any, error) {
	m, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown operator method %q", name)
	}
	req, err := m.Decode(payload)
	if err != nil {
		return nil, fmt.Errorf("decoding %s request: %w", name, err)
	}
	return req, nil
}

// strictJSON decodes payload, at most MaxRequestBytes of one JSON object
// without unknown fields or trailing data, into v.
func strictJSON(payload []byte, v any) error {
	if len(payload) > MaxRequestBytes {
		return fmt.Errorf("the request is %d bytes, over the limit of %d", len(payload), MaxRequestBytes)
	}
	if t := bytes.TrimSpace(payload); len(t) == 0 || t[0] != '{' {
		return errors.New("the request is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request is not valid: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the request has data after its JSON object")
	}
	return nil
}

// decodeEmpty decodes the request of a method without parameters: empty
// or {}.
func decodeEmpty(payload []byte) (struct{}, error) {
	var v struct{}
	if len(bytes.TrimSpace(payload)) == 0 {
		return v, nil
	}
	return v, strictJSON(payload, &v)
}

// DecodeList decodes a ListRequest.
func DecodeList(payload []byte) (ListRequest, error) {
	var r ListRequest
	if err := strictJSON(payload, &r); err != nil {
		return ListRequest{}, err
	}
	if err := r.Filter.check(); err != nil {
		return ListRequest{}, err
	}
	switch {
	case r.Limit < 0 || r.Limit > MaxListLimit:
		return ListRequest{}, fmt.Errorf("limit %d is not between 0 and %d", r.Limit, MaxListLimit)
	case len(r.PageToken) > MaxPageTokenBytes:
		return ListRequest{}, fmt.Errorf("page_token is %d bytes, over the limit of %d", len(r.PageToken), MaxPageTokenBytes)
	}
	return r, nil
}

// DecodeCount decodes the Filter of a count.
func DecodeCount(payload []byte) (Filter, error) {
	var f Filter
	if err := strictJSON(payload, &f); err != nil {
		return Filter{}, err
	}
	if err := f.check(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// check checks a filter's bounds.
func (f *Filter) check() error {
	if f.Status != "" && !slices.Contains(statuses[:], f.Status) {
		return fmt.Errorf("status %.40q is not one of %v", f.Status, statuses)
	}
	if len(f.Metadata) > MaxMetadataPairs {
		return fmt.Errorf("the metadata filter has %d pairs, over the limit of %d", len(f.Metadata), MaxMetadataPairs)
	}
	for k, v := range f.Metadata {
		switch {
		case k == "":
			return errors.New("the metadata filter has an empty key")
		case len(k) > MaxFilterBytes || len(v) > MaxFilterBytes:
			return fmt.Errorf("metadata filter %.40q: key or value over %d bytes", k, MaxFilterBytes)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("metadata filter %.40q: key or value is not valid UTF-8", k)
		}
	}
	if len(f.Node) > MaxFilterBytes || !utf8.ValidString(f.Node) {
		return fmt.Errorf("node %.40q is over %d bytes or not valid UTF-8", f.Node, MaxFilterBytes)
	}
	return nil
}

// DecodeWorkflow decodes a WorkflowRequest.
func DecodeWorkflow(payload []byte) (WorkflowRequest, error) {
	var r WorkflowRequest
	if err := strictJSON(payload, &r); err != nil {
		return WorkflowRequest{}, err
	}
	switch {
	case r.ID == "":
		return WorkflowRequest{}, errors.New("no workflow id")
	case len(r.ID) > MaxWorkflowIDBytes:
		return WorkflowRequest{}, fmt.Errorf("workflow id is %d bytes, over the limit of %d", len(r.ID), MaxWorkflowIDBytes)
	case !utf8.ValidString(r.ID):
		return WorkflowRequest{}, fmt.Errorf("workflow id %q is not valid UTF-8", r.ID)
	}
	return r, nil
}

// DecodeCommand decodes a CommandRequest.
func DecodeCommand(payload []byte) (CommandRequest, error) {
	var r CommandRequest
	if err := strictJSON(payload, &r); err != nil {
		return CommandRequest{}, err
	}
	switch {
	case r.Command == "":
		return CommandRequest{}, errors.New("no command")
	case len(r.Command) > MaxCommandNameBytes || !utf8.ValidString(r.Command):
		return CommandRequest{}, fmt.Errorf("command %.40q is over %d bytes or not valid UTF-8", r.Command, MaxCommandNameBytes)
	case len(r.Params) > MaxParamsBytes:
		return CommandRequest{}, fmt.Errorf("params are %d bytes, over the limit of %d", len(r.Params), MaxParamsBytes)
	}
	if len(r.Params) > 0 && string(r.Params) == "null" {
		r.Params = nil
	}
	return r, nil
}
