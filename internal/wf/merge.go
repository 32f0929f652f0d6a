package wf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
)

// PatchOp sets or deletes one field of the workflow state. Path names nested
// object keys from the top; arrays and scalars are replaced whole.
type PatchOp struct {
	Path   []string        `json:"p"`
	Value  json.RawMessage `json:"v,omitempty"`
	Delete bool            `json:"d,omitempty"`
}

// Patch is the change a step made to the state it read.
type Patch []PatchOp

// Diff returns the changes that turn base into result. Both must be JSON
// objects (or empty, meaning {}). Objects are compared key by key, recursively;
// any other value that differs is replaced whole; keys present in base and
// absent from result are deleted. The ops come in a deterministic order.
//
// Diff decodes each input once and walks the two trees together, so its
// time and allocation grow with len(base)+len(result) plus the length of the
// emitted ops' paths (at most the nesting depth per op).
func Diff(base, result json.RawMessage) (Patch, error) {
	b, err := decodeObject(base)
	if err != nil {
		return nil, fmt.Errorf("state the step read: %w", err)
	}
	r, err := decodeObject(result)
	if err != nil {
		return nil, fmt.Errorf("state the step returned: %w", err)
	}
	d := differ{}
	if err := d.objects(b, r); err != nil {
		return nil, fmt.Errorf("state the step returned: %w", err)
	}
	return d.out, nil
}

// differ accumulates the ops of one Diff. path is the key path of the
// objects being compared; it is copied only into emitted ops.
type differ struct {
	path []string
	out  Patch
}

func (d *differ) objects(base, result map[string]any) error {
	keys := make([]string, 0, len(base)+len(result))
	for k := range base {
		keys = append(keys, k)
	}
	for k := range result {
		if _, ok := base[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		bv, inBase := base[k]
		rv, inResult := result[k]
		d.path = append(d.path, k)
		var err error
		switch {
		case !inResult:
			d.out = append(d.out, PatchOp{Path: slices.Clone(d.path), Delete: true})
		case !inBase:
			err = d.set(rv)
		default:
			bo, bIsObj := bv.(map[string]any)
			ro, rIsObj := rv.(map[string]any)
			switch {
			case bIsObj && rIsObj:
				err = d.objects(bo, ro)
			case !equal(bv, rv):
				err = d.set(rv)
			}
		}
		d.path = d.path[:len(d.path)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

// set emits an op setting the current path to v.
func (d *differ) set(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the value at %v: %w", d.path, err)
	}
	d.out = append(d.out, PatchOp{Path: slices.Clone(d.path), Value: b})
	return nil
}

// ApplyPatch applies p to state and returns the new state as canonical JSON
// (keys sorted). Setting a path whose parent is missing or not an object
// creates the parent objects; deleting a missing path is a no-op. Later ops
// win over earlier ones, so applying patches in commit order resolves
// conflicting writes to the same field deterministically: the last commit wins.
func ApplyPatch(state json.RawMessage, p Patch) (json.RawMessage, error) {
	if len(p) == 0 {
		return state, nil
	}
	root, err := decodeAny(state)
	if err != nil {
		return nil, err
	}
	for _, op := range p {
		if len(op.Path) == 0 {
			return nil, fmt.Errorf("patch op with empty path")
		}
		parent := root
		for _, k := range op.Path[:len(op.Path)-1] {
			child, ok := parent[k].(map[string]any)
			if !ok {
				if op.Delete {
					parent = nil
					break
				}
				child = map[string]any{}
				parent[k] = child
			}
			parent = child
		}
		if parent == nil {
			continue
		}
		last := op.Path[len(op.Path)-1]
		if op.Delete {
			delete(parent, last)
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(op.Value))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("patch value at %v: %w", op.Path, err)
		}
		parent[last] = v
	}
	return json.Marshal(root)
}

func decodeAny(b json.RawMessage) (map[string]any, error) {
	m := map[string]any{}
	if len(bytes.TrimSpace(b)) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return m, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("state is not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// decodeObject decodes a JSON object (empty or null meaning {}) as
// decodeAny does, refusing any other value and trailing data.
func decodeObject(b json.RawMessage) (map[string]any, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return map[string]any{}, nil
	}
	if t[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(t))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: data after the object")
	}
	return m, nil
}

// equal compares two decoded JSON values structurally: objects key by key
// (order does not matter), arrays element by element, numbers by their
// text, strings by their decoded value.
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && a == b
	case string:
		b, ok := b.(string)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case nil:
		return b == nil
	default:
		return false
	}
}
