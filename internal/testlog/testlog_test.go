package testlog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records what Log receives and the
// cleanups registered.
type recorder struct {
	testing.TB
	lines    []string
	cleanups []func()
}

func (r *recorder) Log(args ...any) { r.lines = append(r.lines, args[0].(string)) }

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestWriterPrefixesAndMutesAtCleanup(t *testing.T) {
	r := &recorder{TB: t}
	w := New(r, "n1: ")
	n, err := w.Write([]byte("hello\n"))
	require.NoError(t, err)
	require.Equal(t, 6, n)
	w.Mute(true)
	_, _ = w.Write([]byte("muted\n"))
	w.Mute(false)
	_, _ = w.Write([]byte("again"))
	for _, f := range r.cleanups {
		f()
	}
	n, err = w.Write([]byte("after the test\n"))
	require.NoError(t, err)
	require.Equal(t, 15, n, "a muted writer still reports the write done")
	require.Equal(t, []string{"n1: hello", "n1: again"}, r.lines)
}
