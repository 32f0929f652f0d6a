package wf

import (
	"bytes"
	"encoding/json"
	"fmt"
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
func Diff(base, result json.RawMessage) (Patch, error) {
	b, err := decodeObject(base)
	if err != nil {
		return nil, fmt.Errorf("state the step read: %w", err)
	}
	r, err := decodeObject(result)
	if err != nil {
		return nil, fmt.Errorf("state the step returned: %w", err)
	}
	var p Patch
	diffObjects(nil, b, r, &p)
	return p, nil
}

func diffObjects(path []string, base, result map[string]json.RawMessage, out *Patch) {
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
		sub := append(append([]string(nil), path...), k)
		switch {
		case !inResult:
			*out = append(*out, PatchOp{Path: sub, Delete: true})
		case !inBase:
			*out = append(*out, PatchOp{Path: sub, Value: compact(rv)})
		default:
			bo, bIsObj := asObject(bv)
			ro, rIsObj := asObject(rv)
			if bIsObj && rIsObj {
				diffObjects(sub, bo, ro, out)
				continue
			}
			if !jsonEqual(bv, rv) {
				*out = append(*out, PatchOp{Path: sub, Value: compact(rv)})
			}
		}
	}
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

func decodeObject(b json.RawMessage) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	t := bytes.TrimSpace(b)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return m, nil
	}
	if t[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func asObject(b json.RawMessage) (map[string]json.RawMessage, bool) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, false
	}
	return m, true
}

func compact(b json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// jsonEqual compares two JSON values structurally (key order and white space
// do not matter; numbers compare by their text).
func jsonEqual(a, b json.RawMessage) bool {
	ta, tb := bytes.TrimSpace(a), bytes.TrimSpace(b)
	if bytes.Equal(ta, tb) {
		return true
	}
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(ta))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(tb))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	ea, _ := json.Marshal(va)
	eb, _ := json.Marshal(vb)
	return bytes.Equal(ea, eb)
}
