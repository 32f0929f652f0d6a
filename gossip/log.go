package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newStdLogger returns a *log.Logger for Serf and memberlist that writes to
// l, mapping their "[DEBUG]", "[INFO]", "[WARN]" and "[ERR]" prefixes to slog
// levels. (slog.NewLogLogger would log every line at one level, turning
// memberlist's chatty debug lines into info.)
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

// admissionRefusal marks the errors of admission.NotifyMerge in the lines
// memberlist and Serf log about them.
const admissionRefusal = "graft: member \""

var levelPrefixes = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[DEBUG] "), slog.LevelDebug},
	{[]byte("[TRACE] "), slog.LevelDebug},
	{[]byte("[INFO] "), slog.LevelInfo},
	{[]byte("[WARN] "), slog.LevelWarn},
	{[]byte("[ERR] "), slog.LevelError},
	{[]byte("[ERROR] "), slog.LevelError},
}

func (w *levelWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	for _, lp := range levelPrefixes {
		if bytes.HasPrefix(msg, lp.prefix) {
			level, msg = lp.level, msg[len(lp.prefix):]
			break
		}
	}
	if level > slog.LevelDebug && bytes.Contains(msg, []byte(admissionRefusal)) {
		// memberlist and Serf repeat our admission's refusals on every
		// message; the admission logs them itself, once.
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, string(msg))
	}
	return len(p), nil
}
