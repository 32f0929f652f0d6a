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

// With -processes, -list names only the scenarios process mode can apply,
// and a scenario with a network fault exits 2 naming the fault.
func TestCommandProcessMode(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	require.Equal(t, 0, run([]string{"-processes", "-list"}, &out, &errs))
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		names = append(names, strings.Fields(line)[0])
	}
	require.Equal(t, []string{"crash-past-grace", "crash-restart", "disk-floor", "join-leave", "wipe"}, names)

	out.Reset()
	require.Equal(t, 2, run([]string{"-processes", "-scenario", "lossy"}, &out, &errs))
	require.Contains(t, errs.String(), `process mode cannot apply scenario lossy's fault "drop"`)
}
