// Package script runs the data-driven test scripts of the module's pure
// decision functions (ring placement, rebalancing plans). A script file is
// a sequence of blocks separated by blank lines; lines starting with # are
// comments. A block is a command line, a "----" line, and the output the
// command must print. Each package defines its commands; this package
// reads the files, compares outputs and, on request, rewrites them. It is
// used only by tests and imports the standard library and testify.
package script

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// RunDir runs every testdata/*.txt file under dir as a parallel subtest,
// each with a fresh command runner from newRunner (see RunFile).
func RunDir(t *testing.T, dir string, rewrite bool, newRunner func() func(line string) string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "testdata", "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no scripts in %s", filepath.Join(dir, "testdata"))
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			RunFile(t, file, rewrite, newRunner())
		})
	}
}

// RunFile checks one script file: run executes a command line and returns
// what it prints, which must be non-empty, contain no blank line, and equal
// the block's expected output. With rewrite, the file is written back with
// the outputs run printed instead of being checked.
func RunFile(t *testing.T, file string, rewrite bool, run func(line string) string) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		at := i + 1
		require.True(t, i+1 < len(lines) && lines[i+1] == "----", "%s:%d: command %q must be followed by ----", file, at, line)
		i += 2
		var want []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			want = append(want, lines[i])
		}
		i-- // the blank line, if any, is copied by the loop
		got := run(line)
		require.NotEmpty(t, got, "%s:%d: %q printed nothing", file, at, line)
		require.NotContains(t, got, "\n\n", "%s:%d: %q printed a blank line", file, at, line)
		out = append(out, line, "----", got)
		if !rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\nwant:\n%s\ngot:\n%s", file, at, line, strings.Join(want, "\n"), got)
		}
	}
	if rewrite {
		require.NoError(t, os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644))
	}
}
