package wf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiffAndApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, base, result, current, want string
	}{
		{"add field", `{"a":1}`, `{"a":1,"b":2}`, `{"a":1}`, `{"a":1,"b":2}`},
		{"delete field", `{"a":1,"b":2}`, `{"a":1}`, `{"a":1,"b":2}`, `{"a":1}`},
		{"unchanged", `{"a":1}`, `{"a":1}`, `{"a":1,"z":9}`, `{"a":1,"z":9}`},
		{"other branch field survives", `{"a":1}`, `{"a":1,"left":true}`, `{"a":1,"right":true}`, `{"a":1,"left":true,"right":true}`},
		{"nested merge", `{"o":{"x":1}}`, `{"o":{"x":1,"y":2}}`, `{"o":{"x":1,"z":3}}`, `{"o":{"x":1,"y":2,"z":3}}`},
		{"array replaced whole", `{"l":[1]}`, `{"l":[1,2]}`, `{"l":[1,3]}`, `{"l":[1,2]}`},
		{"same field last write wins", `{"a":1}`, `{"a":2}`, `{"a":5}`, `{"a":2}`},
		{"empty base", ``, `{"a":1}`, ``, `{"a":1}`},
		{"key order irrelevant", `{"a":1,"b":2}`, `{"b":2,"a":1}`, `{"a":1,"b":2}`, `{"a":1,"b":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Diff(json.RawMessage(tt.base), json.RawMessage(tt.result))
			require.NoError(t, err)
			got, err := ApplyPatch(json.RawMessage(tt.current), p)
			require.NoError(t, err)
			if tt.current == "" && len(p) == 0 {
				got = json.RawMessage(`{}`)
			}
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestDiffRefusesNonObject(t *testing.T) {
	t.Parallel()
	_, err := Diff(json.RawMessage(`{}`), json.RawMessage(`[1,2]`))
	require.ErrorContains(t, err, "not a JSON object")
}

func TestTwoBranchesBothSurvive(t *testing.T) {
	t.Parallel()
	base := json.RawMessage(`{"n":0}`)
	p1, err := Diff(base, json.RawMessage(`{"n":0,"b1":"x"}`))
	require.NoError(t, err)
	p2, err := Diff(base, json.RawMessage(`{"n":0,"b2":"y"}`))
	require.NoError(t, err)
	s, err := ApplyPatch(base, p1)
	require.NoError(t, err)
	s, err = ApplyPatch(s, p2)
	require.NoError(t, err)
	require.JSONEq(t, `{"n":0,"b1":"x","b2":"y"}`, string(s))
}

func TestLargeNumbersKeepPrecision(t *testing.T) {
	t.Parallel()
	p, err := Diff(json.RawMessage(`{}`), json.RawMessage(`{"id":9007199254740993}`))
	require.NoError(t, err)
	s, err := ApplyPatch(json.RawMessage(`{"x":12345678901234567890}`), p)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":9007199254740993,"x":12345678901234567890}`, string(s))
}

func TestDiffDeepState(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{1, 2, MaxDepth, 1000} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) {
			t.Parallel()
			base, result := nested(depth, "0"), nested(depth, "1")
			p, err := Diff(base, result)
			require.NoError(t, err)
			require.Len(t, p, 1)
			require.Len(t, p[0].Path, depth)
			require.Equal(t, "v", p[0].Path[depth-1])
			require.JSONEq(t, "1", string(p[0].Value))

			// Another branch added a field next to the changed one: it survives.
			current := nested(depth, `0,"other":true`)
			got, err := ApplyPatch(current, p)
			require.NoError(t, err)
			require.JSONEq(t, string(nested(depth, `1,"other":true`)), string(got))
		})
	}
}

func TestDiffWideState(t *testing.T) {
	t.Parallel()
	const n = 10000
	base, result, current := map[string]any{}, map[string]any{}, map[string]any{}
	want := map[string]any{}
	for i := range n {
		k := fmt.Sprintf("f%05d", i)
		v := map[string]any{"n": float64(i)}
		base[k], current[k] = v, v
		switch i % 4 {
		case 0: // unchanged
			result[k], want[k] = v, v
		case 1: // changed inside the nested object
			result[k] = map[string]any{"n": float64(-i)}
			want[k] = result[k]
		case 2: // deleted
		case 3: // replaced by an array
			result[k] = []any{float64(i)}
			want[k] = result[k]
		}
		if i%100 == 0 {
			result[fmt.Sprintf("new%05d", i)] = "added"
			want[fmt.Sprintf("new%05d", i)] = "added"
			current[fmt.Sprintf("other%05d", i)] = "kept"
			want[fmt.Sprintf("other%05d", i)] = "kept"
		}
	}
	enc := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	p, err := Diff(enc(base), enc(result))
	require.NoError(t, err)
	require.Len(t, p, 3*n/4+n/100)
	for i := 1; i < len(p); i++ {
		require.Less(t, p[i-1].Path[0], p[i].Path[0], "ops are sorted by path")
	}
	got, err := ApplyPatch(enc(current), p)
	require.NoError(t, err)
	require.JSONEq(t, string(enc(want)), string(got))
}

func TestDiffRefusesTrailingData(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`{}x`, `{} {}`, `{}]`, `{"a":1}"b"`} {
		_, err := Diff(json.RawMessage(`{}`), json.RawMessage(s))
		require.Error(t, err, s)
	}
}

// refDiff is Diff as it was before it decoded each input once: it
// re-decoded every nested object at every level, so its time grew with the
// square of the nesting depth. FuzzDiff checks Diff still agrees with it.
func refDiff(base, result json.RawMessage) (Patch, error) {
	b, err := refDecodeObject(base)
	if err != nil {
		return nil, err
	}
	r, err := refDecodeObject(result)
	if err != nil {
		return nil, err
	}
	var p Patch
	refDiffObjects(nil, b, r, &p)
	return p, nil
}

func refDiffObjects(path []string, base, result map[string]json.RawMessage, out *Patch) {
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
			*out = append(*out, PatchOp{Path: sub, Value: rv})
		default:
			bo, bIsObj := refAsObject(bv)
			ro, rIsObj := refAsObject(rv)
			if bIsObj && rIsObj {
				refDiffObjects(sub, bo, ro, out)
				continue
			}
			if !refJSONEqual(bv, rv) {
				*out = append(*out, PatchOp{Path: sub, Value: rv})
			}
		}
	}
}

func refDecodeObject(b json.RawMessage) (map[string]json.RawMessage, error) {
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

func refAsObject(b json.RawMessage) (map[string]json.RawMessage, bool) {
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

func refJSONEqual(a, b json.RawMessage) bool {
	ta, tb := bytes.TrimSpace(a), bytes.TrimSpace(b)
	if bytes.Equal(ta, tb) {
		return true
	}
	return bytes.Equal(canonical(ta), canonical(tb))
}

// canonical decodes a JSON value (numbers kept as text) and re-encodes it
// with sorted keys; nil if it is not JSON.
func canonical(b []byte) []byte {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil
	}
	out, _ := json.Marshal(v)
	return out
}

// FuzzDiff diffs arbitrary pairs of JSON texts and applies the patch to a
// third: no panic; Diff accepts exactly what it accepted before and returns
// the same ops; the merged state is valid JSON; allocations stay within a
// linear function of the input length.
func FuzzDiff(f *testing.F) {
	f.Add(`{"a":1,"o":{"x":1,"l":[1]}}`, `{"o":{"x":2,"y":{"z":null},"l":[1,2]},"b":"s"}`, `{"a":1,"c":true}`)
	f.Add(`{"a":{"b":{"c":{}}}}`, `{"a":{"b":{"c":{"d":1}}}}`, `{"a":{"b":"scalar"}}`)
	f.Add(``, `{"n":9007199254740993,"e":1e2,"u":"\u00e9<"}`, `null`)
	f.Add(`{"k":1,"k":{"x":1}}`, `{"k":{"x":2}}`, `{}`)
	f.Add(`{}`, `[1]`, `{}`)
	f.Fuzz(func(t *testing.T, base, result, current string) {
		p, err := Diff(json.RawMessage(base), json.RawMessage(result))
		ref, refErr := refDiff(json.RawMessage(base), json.RawMessage(result))
		require.Equal(t, refErr == nil, err == nil, "Diff: %v; before: %v", err, refErr)
		if err != nil {
			return
		}
		require.Len(t, p, len(ref))
		for i := range p {
			require.Equal(t, ref[i].Path, p[i].Path)
			require.Equal(t, ref[i].Delete, p[i].Delete)
			require.Equal(t, string(canonical(ref[i].Value)), string(canonical(p[i].Value)))
		}
		cur := json.RawMessage(current)
		if _, err := decodeObject(cur); err != nil {
			return
		}
		got, err := ApplyPatch(cur, p)
		require.NoError(t, err)
		if len(p) > 0 {
			require.True(t, json.Valid(got), "%s", got)
		}
		n := len(base) + len(result) + len(current)
		allocs := testing.AllocsPerRun(1, func() {
			p, _ := Diff(json.RawMessage(base), json.RawMessage(result))
			_, _ = ApplyPatch(cur, p)
		})
		require.LessOrEqual(t, allocs, float64(64+8*n), "allocations for %d bytes of input", n)
	})
}

// nested returns a JSON object nested depth levels deep along key "a", with
// the innermost object holding {"v":leaf}: depth 1 is {"v":leaf}.
func nested(depth int, leaf string) json.RawMessage {
	var b []byte
	for range depth - 1 {
		b = append(b, `{"a":`...)
	}
	b = append(b, `{"v":`...)
	b = append(b, leaf...)
	b = append(b, '}')
	for range depth - 1 {
		b = append(b, '}')
	}
	return b
}

// BenchmarkMergeDepth diffs a state nested depth levels deep whose innermost
// field changed and applies the patch: one step's merge work. Time per op
// should grow in proportion to the depth (the state's size).
func BenchmarkMergeDepth(b *testing.B) {
	for _, depth := range []int{10, 100, 1000, 4000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			base, result := nested(depth, "0"), nested(depth, "1")
			b.SetBytes(int64(len(base)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := Diff(base, result)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ApplyPatch(base, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMergeWide diffs a flat state of n fields, one of which changed,
// and applies the patch.
func BenchmarkMergeWide(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("fields=%d", n), func(b *testing.B) {
			base, result := wide(n, "0"), wide(n, "1")
			b.SetBytes(int64(len(base)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := Diff(base, result)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ApplyPatch(base, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wide returns a flat object of n fields; the last one holds last.
func wide(n int, last string) json.RawMessage {
	b := []byte{'{'}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"field%05d":`, i)
		if i == n-1 {
			b = append(b, last...)
		} else {
			b = fmt.Appendf(b, `{"n":%d,"s":"text"}`, i)
		}
	}
	return append(b, '}')
}
