package wf

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string
		want int
	}{
		{``, 0},
		{`1`, 0},
		{`"x"`, 0},
		{`{}`, 1},
		{`[1,2]`, 1},
		{`{"a":[2]}`, 2},
		{`{"a":{"b":{}},"c":[]}`, 3},
		{`{"a":"{[{["}`, 1},
		{`{"a\"{":"\\"}`, 1},
		{`{"a":"\\\"[[["}`, 1},
		{`[[],[[]],[]]`, 3},
		{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), MaxDepth},
		{`}}}{`, 1},   // not JSON: still bounded
		{`{"open`, 1}, // unterminated string
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Depth([]byte(tt.json)))
		})
	}
}

func TestCheckDepth(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckDepth(nested(MaxDepth, "1")))
	err := CheckDepth(nested(MaxDepth+1, "1"))
	var de *DepthError
	require.True(t, errors.As(err, &de))
	require.Equal(t, DepthError{Depth: MaxDepth + 1, Limit: MaxDepth}, *de)
	require.EqualError(t, err, "nested 101 levels deep, over the limit of 100 (graft.MaxStateDepth)")
}

// refDepth is the nesting depth of valid JSON per encoding/json's tokenizer.
func refDepth(b []byte) (int, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // numbers too large for float64 (1E700) are still valid JSON
	depth, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return deepest, nil
		}
		if err != nil {
			return 0, err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzDepth checks the scanner never panics, stays within len(b), and
// agrees with encoding/json on valid JSON.
func FuzzDepth(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"}\"]"}]}`))
	f.Add([]byte(`[[[[]]]]`))
	f.Add([]byte(`"\\"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Depth(b)
		require.GreaterOrEqual(t, got, 0)
		require.LessOrEqual(t, got, len(b))
		if !json.Valid(b) {
			return
		}
		want, err := refDepth(b)
		require.NoError(t, err)
		require.Equal(t, want, got, "%q", b)
	})
}

// BenchmarkDepth scans a wide state of about 1 MiB and one nested
// MaxDepth levels deep: throughput (MB/s) should not depend on the shape.
func BenchmarkDepth(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"wide-1MiB", wide(30000, "0")},
		{"deep", nested(MaxDepth, `"`+strings.Repeat(`\"{[`, 1000)+`"`)},
	} {
		in := bc.in
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if Depth(in) == 0 {
					b.Fatal("no depth")
				}
			}
		})
	}
}
