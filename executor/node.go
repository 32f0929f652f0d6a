package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
)

// Node adapts a user-defined node value to a uniform, JSON-in/JSON-out call
// interface. It is built once by Registry.Register, which validates the
// node's methods and caches their reflect types, so calls do no method
// lookup. A Node is safe for concurrent use as long as the user's node value
// is.
type Node struct {
	name     string
	recv     reflect.Value
	execute  method
	canStart *method // nil when the node has no CanStart method
}

// method is a validated Execute or CanStart method.
type method struct {
	fn      reflect.Value // method func taking the receiver as first argument
	withCtx bool          // first parameter is context.Context
	state   param
	config  *param // nil for the (state) form
}

// param is a validated state or config parameter type.
type param struct {
	name string // "state" or "config"
	typ  reflect.Type
	kind paramKind
}

type paramKind int

const (
	paramStruct paramKind = iota + 1
	paramPtrStruct
	paramMap
	paramAny
)

var (
	contextType    = reflect.TypeFor[context.Context]()
	errorType      = reflect.TypeFor[error]()
	nodeResultType = reflect.TypeFor[*NodeResult]()
	boolType       = reflect.TypeFor[bool]()
	stringType     = reflect.TypeFor[string]()
)

// Name returns the name the node was registered under (its GetName value).
func (n *Node) Name() string { return n.name }

// HasCanStart reports whether the node defines a CanStart method.
func (n *Node) HasCanStart() bool { return n.canStart != nil }

// CanStart decodes state and config into the node's own CanStart parameter
// types and calls its CanStart method. It returns true when the node has no
// CanStart method. Decoding follows the rules of Execute. A decode failure
// returns a Permanent *DecodeError; a panic returns a *PanicError. A nil ctx
// is replaced by context.Background().
func (n *Node) CanStart(ctx context.Context, state, config json.RawMessage) (bool, error) {
	if n.canStart == nil {
		return true, nil
	}
	out, err := n.call(ctx, n.canStart, state, config, nil)
	if err != nil {
		return false, err
	}
	return out[0].Bool(), nil
}

// Execute decodes state and config into the node's own Execute parameter
// types, calls its Execute method and encodes the returned NodeResult.
//
// Decoding: each call decodes into fresh values, so nothing is shared
// between calls. Empty or JSON null input yields the zero value of the
// parameter type: a zero struct, a new(T) for *T, an empty non-nil map, or
// nil for interface{}. A JSON object decodes into map[string]interface{}
// for an interface{} parameter. Numbers decode as float64 inside maps and
// interface{} values, as usual for encoding/json. Unknown fields are ignored.
// A decode failure returns a Permanent *DecodeError naming the field.
//
// Results: a non-nil error from the node is returned unchanged (so a
// Permanent marker is preserved) and the result is dropped. A nil
// *NodeResult means an empty result. An invalid result (see
// ErrInvalidResult) returns a Permanent error naming the node and, for next
// nodes, the offending next node. A panic returns a *PanicError.
//
// A nil ctx is replaced by context.Background().
func (n *Node) Execute(ctx context.Context, state, config json.RawMessage) (*Output, error) {
	var base json.RawMessage
	out, err := n.call(ctx, &n.execute, state, config, &base)
	if err != nil {
		return nil, err
	}
	if errv := out[1]; !errv.IsNil() {
		return nil, errv.Interface().(error)
	}
	res, _ := out[0].Interface().(*NodeResult)
	o, err := n.encode(res)
	if o != nil {
		o.Base = base
	}
	return o, err
}

// call decodes the arguments of m and calls it, recovering panics.
// When base is non-nil it receives the JSON encoding of the decoded state
// before the call: the state as the node sees it.
func (n *Node) call(ctx context.Context, m *method, state, config json.RawMessage, base *json.RawMessage) (out []reflect.Value, err error) {
	args := make([]reflect.Value, 1, 4)
	args[0] = n.recv
	if m.withCtx {
		if ctx == nil {
			ctx = context.Background()
		}
		args = append(args, reflect.ValueOf(&ctx).Elem())
	}
	sv, err := n.decode(&m.state, state)
	if err != nil {
		return nil, err
	}
	args = append(args, sv)
	if base != nil {
		if *base, err = json.Marshal(sv.Interface()); err != nil {
			return nil, Permanent(fmt.Errorf("graft: node %q: re-encoding its state: %w", n.name, err))
		}
	}
	if m.config != nil {
		cv, err := n.decode(m.config, config)
		if err != nil {
			return nil, err
		}
		args = append(args, cv)
	}

	defer func() {
		if v := recover(); v != nil {
			out = nil
			err = &PanicError{Node: n.name, Value: v, Stack: debug.Stack()}
		}
	}()
	return m.fn.Call(args), nil
}

// decode decodes data into a fresh value of p's type.
func (n *Node) decode(p *param, data json.RawMessage) (reflect.Value, error) {
	null := isNull(data)
	var ptr reflect.Value // pointer to the value to unmarshal into
	switch p.kind {
	case paramStruct:
		ptr = reflect.New(p.typ)
	case paramPtrStruct:
		ptr = reflect.New(p.typ.Elem())
		if null {
			return ptr, nil
		}
		if err := json.Unmarshal(data, ptr.Interface()); err != nil {
			return reflect.Value{}, n.decodeError(p, err)
		}
		return ptr, nil
	case paramMap:
		ptr = reflect.New(p.typ)
		ptr.Elem().Set(reflect.MakeMap(p.typ))
	case paramAny:
		ptr = reflect.New(p.typ)
	}
	if !null {
		if err := json.Unmarshal(data, ptr.Interface()); err != nil {
			return reflect.Value{}, n.decodeError(p, err)
		}
	}
	return ptr.Elem(), nil
}

func (n *Node) decodeError(p *param, err error) error {
	de := &DecodeError{Node: n.name, Param: p.name, Err: err}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		de.Field = te.Field
	}
	return Permanent(de)
}

// isNull reports whether data is empty or the JSON literal null.
func isNull(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) == 0 || string(data) == "null"
}

// encode converts a NodeResult into an Output.
func (n *Node) encode(res *NodeResult) (*Output, error) {
	out := &Output{}
	if res == nil {
		return out, nil
	}
	if res.GlobalState != nil {
		b, err := json.Marshal(res.GlobalState)
		if err != nil {
			return nil, n.resultError("encoding GlobalState", err)
		}
		switch {
		case string(b) == "null":
			// A nil pointer or nil map: state unchanged.
		case b[0] != '{':
			return nil, n.resultError(fmt.Sprintf("GlobalState must encode to a JSON object, got %s (%T)", jsonKind(b), res.GlobalState), nil)
		default:
			out.State = b
		}
	}
	if len(res.NextNodes) > 0 {
		out.Next = make([]Next, len(res.NextNodes))
	}
	for i, nn := range res.NextNodes {
		if nn.NodeName == "" {
			return nil, n.resultError(fmt.Sprintf("NextNodes[%d]: empty NodeName", i), nil)
		}
		next := Next{Node: nn.NodeName, Priority: nn.Priority}
		if nn.Config != nil {
			b, err := json.Marshal(nn.Config)
			if err != nil {
				return nil, n.resultError(fmt.Sprintf("NextNodes[%d] (%q): encoding Config", i, nn.NodeName), err)
			}
			if string(b) != "null" {
				next.Config = b
			}
		}
		if nn.Delay != nil && *nn.Delay > 0 {
			next.Delay = *nn.Delay
		}
		if nn.IdempotencyKey != nil {
			next.IdempotencyKey = *nn.IdempotencyKey
			next.HasKey = true
		}
		out.Next[i] = next
	}
	return out, nil
}

func (n *Node) resultError(msg string, err error) error {
	return Permanent(&nodeError{node: fmt.Sprintf("%q", n.name), msg: msg, kind: ErrInvalidResult, err: err})
}

// jsonKind names the JSON type of an encoded value.
func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	default:
		return "number"
	}
}

// newNode validates node and builds its adapter.
func newNode(node any) (*Node, error) {
	if node == nil {
		return nil, invalid("<nil>", "node is nil")
	}
	rv := reflect.ValueOf(node)
	rt := rv.Type()
	typeDesc := "of type " + rt.String()
	if rt.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, invalid(typeDesc, "node is a nil pointer")
	}

	name, err := nodeName(rv, typeDesc)
	if err != nil {
		return nil, err
	}
	quoted := fmt.Sprintf("%q", name)

	em, ok := rt.MethodByName("Execute")
	if !ok {
		return nil, invalid(quoted, "missing Execute method"+receiverHint(rt, "Execute"))
	}
	exec, err := newMethod(em, quoted, true)
	if err != nil {
		return nil, err
	}
	n := &Node{name: name, recv: rv, execute: exec}

	if cm, ok := rt.MethodByName("CanStart"); ok {
		cs, err := newMethod(cm, quoted, false)
		if err != nil {
			return nil, err
		}
		n.canStart = &cs
	} else if hint := receiverHint(rt, "CanStart"); hint != "" {
		return nil, invalid(quoted, "CanStart is not in the method set"+hint)
	}
	return n, nil
}

// nodeName validates and calls the GetName method.
func nodeName(rv reflect.Value, typeDesc string) (name string, err error) {
	rt := rv.Type()
	m, ok := rt.MethodByName("GetName")
	if !ok {
		return "", invalid(typeDesc, "missing GetName method"+receiverHint(rt, "GetName"))
	}
	mt := m.Type // includes the receiver as In(0)
	if mt.NumIn() != 1 || mt.NumOut() != 1 || mt.Out(0) != stringType {
		return "", invalid(typeDesc, fmt.Sprintf("GetName must be func() string, got %s", methodSig(mt)))
	}
	defer func() {
		if v := recover(); v != nil {
			err = invalid(typeDesc, fmt.Sprintf("GetName panicked: %v", v))
		}
	}()
	name = m.Func.Call([]reflect.Value{rv})[0].String()
	if name == "" {
		return "", invalid(typeDesc, "GetName returned an empty name")
	}
	return name, nil
}

// newMethod validates an Execute (isExecute) or CanStart method.
func newMethod(m reflect.Method, node string, isExecute bool) (method, error) {
	mt := m.Type // includes the receiver as In(0)
	fail := func(format string, args ...any) (method, error) {
		return method{}, invalid(node, m.Name+": "+fmt.Sprintf(format, args...))
	}
	if mt.IsVariadic() {
		return fail("must not be variadic, got %s", methodSig(mt))
	}

	nparams := mt.NumIn() - 1
	in := func(i int) reflect.Type { return mt.In(i + 1) }
	res := method{fn: m.Func}
	var stateAt, configAt int
	switch nparams {
	case 3:
		if in(0) != contextType {
			return fail("first parameter must be context.Context, got %s", in(0))
		}
		res.withCtx = true
		stateAt, configAt = 1, 2
	case 2:
		if in(0) == contextType {
			return fail("context.Context must be followed by state and config parameters, got %s", methodSig(mt))
		}
		stateAt, configAt = 0, 1
	case 1:
		if in(0) == contextType {
			return fail("context.Context must be followed by state and config parameters, got %s", methodSig(mt))
		}
		stateAt, configAt = 0, -1
	default:
		return fail("must take (ctx, state, config), (state, config) or (state), got %d parameters", nparams)
	}

	state, err := newParam("state", in(stateAt))
	if err != nil {
		return fail("%v", err)
	}
	res.state = state
	if configAt >= 0 {
		config, err := newParam("config", in(configAt))
		if err != nil {
			return fail("%v", err)
		}
		res.config = &config
	}

	if isExecute {
		if mt.NumOut() != 2 {
			return fail("must return (*NodeResult, error), got %d return values", mt.NumOut())
		}
		if mt.Out(0) != nodeResultType {
			return fail("first return value must be *NodeResult, got %s", mt.Out(0))
		}
		if mt.Out(1) != errorType {
			return fail("second return value must be error, got %s", mt.Out(1))
		}
	} else if mt.NumOut() != 1 || mt.Out(0) != boolType {
		return fail("must return bool, got %s", methodSig(mt))
	}
	return res, nil
}

// newParam classifies a state or config parameter type.
func newParam(name string, t reflect.Type) (param, error) {
	p := param{name: name, typ: t}
	switch {
	case t.Kind() == reflect.Struct:
		p.kind = paramStruct
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		p.kind = paramPtrStruct
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		p.kind = paramMap
	case t.Kind() == reflect.Interface && t.NumMethod() == 0:
		p.kind = paramAny
	default:
		return p, fmt.Errorf("%s parameter must be a struct, pointer to struct, map with string keys or interface{}, got %s", name, t)
	}
	return p, nil
}

// receiverHint explains a method missing from t's method set because it is
// declared on *t.
func receiverHint(t reflect.Type, name string) string {
	if t.Kind() == reflect.Pointer {
		return ""
	}
	if _, ok := reflect.PointerTo(t).MethodByName(name); ok {
		return fmt.Sprintf(" (%s has a pointer receiver; register a *%s)", name, t)
	}
	return ""
}

// methodSig formats a method type without its receiver, e.g. "func(string) int".
func methodSig(mt reflect.Type) string {
	in := make([]reflect.Type, 0, mt.NumIn()-1)
	for i := 1; i < mt.NumIn(); i++ {
		in = append(in, mt.In(i))
	}
	out := make([]reflect.Type, mt.NumOut())
	for i := range out {
		out[i] = mt.Out(i)
	}
	return reflect.FuncOf(in, out, mt.IsVariadic()).String()
}

func invalid(node, msg string) error {
	return &nodeError{node: node, msg: msg, kind: ErrInvalidNode}
}
