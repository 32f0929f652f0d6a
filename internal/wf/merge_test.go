package wf

import (
	"encoding/json"
	"fmt"
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
