package graftui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/eleven-am/graft"
)

// timeLayout is how the pages show instants (always in UTC).
const timeLayout = "2006-01-02 15:04:05.000 UTC"

// funcs are the functions the templates call.
func (h *handler) funcs() template.FuncMap {
	return template.FuncMap{
		"ts":          formatTime,
		"ago":         func(now, t time.Time) string { return formatAgo(now, t) },
		"dur":         formatDuration,
		"join":        strings.Join,
		"shards":      formatShards,
		"workflowURL": h.workflowURL,
		"stateClass":  stateClass,
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
	}
}

// formatTime shows t in UTC to the millisecond; "—" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(timeLayout)
}

// formatAgo shows how long before now t was ("3.2s ago"), or after it
// ("in 1.5s"); "" for the zero time.
func formatAgo(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + formatDuration(-d)
	}
	return formatDuration(d) + " ago"
}

// formatDuration rounds d to two or three significant figures.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// formatShards lists shard IDs ("1, 2, 5"); "—" for none.
func formatShards(ids []uint64) string {
	if len(ids) == 0 {
		return "—"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ", ")
}

// stateClass is the CSS class of a workflow status's badge.
func stateClass(s graft.WorkflowState) string {
	switch s {
	case graft.WorkflowStateRunning, graft.WorkflowStatePaused, graft.WorkflowStateBlocked,
		graft.WorkflowStateCompleted, graft.WorkflowStateFailed, graft.WorkflowStateStopped:
		return "st-" + string(s)
	}
	return "st-unknown"
}

// indentJSON formats raw JSON with two-space indentation; raw is returned
// as it is when it is not JSON.
func indentJSON(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return unescapeHTMLChars(buf.Bytes())
}

// unescapeHTMLChars turns the \u003c, \u003e and \u0026 escapes that
// encoding/json writes for <, > and & back into the characters, so that
// the page (which escapes them itself) shows the state as it was written.
// Other escapes are kept; b must be valid JSON.
func unescapeHTMLChars(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out.WriteByte(b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c", "003C":
				out.WriteByte('<')
				i += 5
				continue
			case "003e", "003E":
				out.WriteByte('>')
				i += 5
				continue
			case "0026":
				out.WriteByte('&')
				i += 5
				continue
			}
		}
		out.Write(b[i : i+2]) // an escape pair: keep both bytes
		i++
	}
	return out.String()
}
