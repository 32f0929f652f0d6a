package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/chaos/harness"
)

// -list names every scenario; an unknown scenario and a bad flag exit 2
// without running anything.
func TestCommandWithoutARun(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	require.Equal(t, 0, run([]string{"-list"}, &out, &errs))
	for _, s := range harness.Scenarios() {
		require.Contains(t, out.String(), s.Name+" ")
	}
	require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), len(harness.Scenarios()))

	errs.Reset()
	require.Equal(t, 2, run([]string{"-scenario", "nope"}, &out, &errs))
	require.Contains(t, errs.String(), `no scenario "nope"`)

	errs.Reset()
	require.Equal(t, 2, run([]string{"-members", "x"}, &out, &errs))
	require.Contains(t, errs.String(), "invalid value")
}
