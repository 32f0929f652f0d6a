// Package testlog passes the logs of the members a test runs to the test's
// own log. Its one job is the writer the packages' tests share: Dragonboat's
// logger is process-wide and Serf logs from its goroutines, so lines may
// arrive after a test ended, when t.Log would panic; the writer drops them
// from the moment the test's cleanup begins.
package testlog

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Writer is an io.Writer that passes each write to t.Log with a prefix,
// until it is muted.
type Writer struct {
	mu     sync.Mutex
	t      testing.TB
	prefix string
	muted  bool
}

// New returns a Writer for t that writes with prefix and mutes itself when
// t's cleanup begins.
func New(t testing.TB, prefix string) *Writer {
	w := &Writer{t: t, prefix: prefix}
	t.Cleanup(func() { w.Mute(true) })
	return w
}

// Write passes p, without its trailing newline, to t.Log, unless the
// writer is muted. It always reports p written.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.muted {
		w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Mute stops (on) or resumes (off) passing writes to t.Log.
func (w *Writer) Mute(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.muted = on
}

// Logger returns a text slog.Logger at level writing through New(t,
// prefix).
func Logger(t testing.TB, prefix string, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(New(t, prefix), &slog.HandlerOptions{Level: level}))
}
