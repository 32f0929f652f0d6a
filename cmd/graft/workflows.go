package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eleven-am/graft/internal/opclient"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/spf13/cobra"
)

// workflowsCmd is graft workflows.
func (a *app) workflowsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workflows",
		Aliases: []string{"workflow", "wf"},
		Short:   "List, show, pause, resume and stop workflows",
	}
	cmd.AddCommand(a.listCmd(), a.showCmd(),
		a.controlCmd("pause", "Pause a workflow: no new steps start; running steps finish", (*opclient.Client).Pause),
		a.controlCmd("resume", "Resume a paused workflow", (*opclient.Client).Resume),
		a.controlCmd("stop", "Stop a workflow for good: pending steps never run, running ones are cancelled", (*opclient.Client).Stop))
	return cmd
}

// listOutput is what graft workflows list --json prints. StartedAfter is
// the absolute bound --since stood for: the next page needs it as --after
// (a page token holds for the filters it was made with).
type listOutput struct {
	Workflows     []operator.Summary `json:"workflows"`
	NextPageToken string             `json:"next_page_token,omitempty"`
	StartedAfter  time.Time          `json:"started_after,omitzero"`
	Counts        *operator.Counts   `json:"counts"`
}

// listCmd is graft workflows list.
func (a *app) listCmd() *cobra.Command {
	var (
		status, node, page string
		after, before      string
		meta               []string
		since              time.Duration
		limit              int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List workflows, newest first, with counts by status",
		Example: `  graft workflows list --status failed --since 1h
  graft workflows list --meta tenant=acme --node Charge --limit 20
  graft workflows list --page TOKEN   # the next page, with the same filters
  graft workflows list --after 2026-12-01T00:00:00Z --before 2026-12-02T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := operator.Filter{Status: status, Node: node}
			if status != "" && !slices.Contains(operator.Statuses(), status) {
				return fmt.Errorf("--status %q is not one of %s", status, strings.Join(operator.Statuses(), ", "))
			}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--meta %q is not key=value", kv)
				}
				if f.Metadata == nil {
					f.Metadata = map[string]string{}
				}
				f.Metadata[k] = v
			}
			if since < 0 {
				return fmt.Errorf("--since %s is negative", since)
			}
			if since > 0 && after != "" {
				return fmt.Errorf("--since and --after both bound the start time: give one")
			}
			if since > 0 {
				f.StartedAfter = time.Now().Add(-since)
			}
			var err error
			if f.StartedAfter, err = parseTime("--after", after, f.StartedAfter); err != nil {
				return err
			}
			if f.StartedBefore, err = parseTime("--before", before, time.Time{}); err != nil {
				return err
			}
			if limit < 0 || limit > operator.MaxListLimit {
				return fmt.Errorf("--limit %d is not between 0 (the member's default) and %d", limit, operator.MaxListLimit)
			}
			return a.with(func(c *opclient.Client) error {
				ans, err := c.List(cmd.Context(), operator.ListRequest{Filter: f, Limit: limit, PageToken: page})
				if err != nil {
					return err
				}
				counts, err := c.Count(cmd.Context(), f)
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, listOutput{Workflows: ans.Workflows, NextPageToken: ans.NextPageToken, StartedAfter: f.StartedAfter, Counts: counts})
				}
				t := newTable(a.out, "ID", "STATUS", "STARTED", "UPDATED", "STEPS", "PENDING", "EXECUTING", "FAILED NODE", "LAST ERROR", "METADATA")
				for _, w := range ans.Workflows {
					t.row(w.ID, w.Status, when(w.StartedAt), when(w.UpdatedAt), strconv.Itoa(w.Steps),
						strings.Join(w.PendingNodes, ","), strings.Join(w.ExecutingNodes, ","), w.FailedNode, clip(w.LastError, 60), pairs(w.Metadata))
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "\n%s\n", countLine(counts))
				switch {
				case ans.NextPageToken == "":
				case since > 0:
					fmt.Fprintf(a.out, "more: --page %s --after %s (with the same other filters)\n", ans.NextPageToken, f.StartedAfter.UTC().Format(time.RFC3339Nano))
				default:
					fmt.Fprintf(a.out, "more: --page %s (with the same filters)\n", ans.NextPageToken)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "only workflows in this status: "+strings.Join(operator.Statuses(), ", "))
	fl.StringArrayVar(&meta, "meta", nil, "only workflows with this metadata pair, key=value (repeatable; all must match)")
	fl.StringVar(&node, "node", "", "only workflows waiting on or failed in this node")
	fl.DurationVar(&since, "since", 0, "only workflows started within this long (e.g. 1h, 30m)")
	fl.StringVar(&after, "after", "", "only workflows started after this time, RFC 3339 (exclusive)")
	fl.StringVar(&before, "before", "", "only workflows started before this time, RFC 3339 (exclusive)")
	fl.IntVar(&limit, "limit", 0, "most workflows in the page (0: the member's default, 100)")
	fl.StringVar(&page, "page", "", "continue a listing: the page token the previous page printed")
	return cmd
}

// parseTime parses the RFC 3339 time of flag; empty gives def.
func parseTime(flag, value string, def time.Time) (time.Time, error) {
	if value == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-12-01T15:04:05Z", flag, value)
	}
	return t, nil
}

// countLine summarises counts: "total 4: completed 3, failed 1".
func countLine(c *operator.Counts) string {
	var parts []string
	for _, s := range operator.Statuses() {
		if n := c.ByStatus[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	line := fmt.Sprintf("total %d", c.Total)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if !c.Complete {
		line += " (at least: the count stopped early)"
	}
	return line
}

// showCmd is graft workflows show.
func (a *app) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a workflow: status, state, and its executed, executing and pending steps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.with(func(c *opclient.Client) error {
				w, err := c.Show(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, w)
				}
				return a.printWorkflow(w)
			})
		},
	}
}

// printWorkflow prints a workflow for reading.
func (a *app) printWorkflow(w *operator.Workflow) error {
	t := newTable(a.out, "WORKFLOW", w.ID)
	t.row("status", w.Status)
	t.row("started", when(w.StartedAt))
	t.row("updated", when(w.UpdatedAt))
	if w.CompletedAt != nil {
		t.row("completed", fmt.Sprintf("%s (took %s)", whenPtr(w.CompletedAt), dur(w.CompletedAt.Sub(w.StartedAt))))
	}
	if !w.BlockedSince.IsZero() {
		t.row("blocked since", when(w.BlockedSince))
	}
	if w.FailedNode != "" {
		t.row("failed node", w.FailedNode)
	}
	if w.LastError != "" {
		t.row("last error", w.LastError)
	}
	if len(w.Metadata) > 0 {
		t.row("metadata", pairs(w.Metadata))
	}
	if err := t.flush(); err != nil {
		return err
	}
	var state bytes.Buffer
	if err := json.Indent(&state, w.State, "", "  "); err != nil {
		state.Reset()
		state.Write(w.State)
	}
	fmt.Fprintf(a.out, "\nstate:\n%s\n", state.String())

	fmt.Fprintf(a.out, "\nexecuted steps (%d):\n", len(w.Executed))
	if len(w.Executed) > 0 {
		t = newTable(a.out, "NODE", "ATTEMPT", "MEMBER", "STARTED", "DURATION", "NEXT", "ERROR")
		for _, e := range w.Executed {
			t.row(e.Node, strconv.Itoa(e.Attempt), e.Member, when(e.StartedAt), dur(e.Duration), strings.Join(e.NextNodes, ","), clip(e.Error, 120))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.out, "\nexecuting steps (%d):\n", len(w.Executing))
	if len(w.Executing) > 0 {
		t = newTable(a.out, "NODE", "ATTEMPT", "MEMBER", "STARTED", "RUNNING FOR")
		for _, e := range w.Executing {
			t.row(e.Node, strconv.Itoa(e.Attempt), e.Member, when(e.StartedAt), dur(time.Since(e.StartedAt)))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.out, "\npending steps (%d):\n", len(w.Pending))
	if len(w.Pending) > 0 {
		t = newTable(a.out, "NODE", "PRIORITY", "READY AT", "FAILURES", "LAST ERROR")
		for _, p := range w.Pending {
			t.row(p.Node, strconv.Itoa(p.Priority), when(p.ReadyAt), strconv.Itoa(p.Failures), clip(p.LastError, 120))
		}
		return t.flush()
	}
	return nil
}

// controlOutput is what graft workflows pause|resume|stop --json prints.
type controlOutput struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Status string `json:"status"`
}

// past is the past tense of a control verb.
func past(verb string) string {
	if verb == "stop" {
		return "stopped"
	}
	return verb + "d"
}

// controlCmd is graft workflows pause, resume or stop.
func (a *app) controlCmd(verb, short string, do func(*opclient.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return a.with(func(c *opclient.Client) error {
				if err := do(c, cmd.Context(), id); err != nil {
					return err
				}
				w, err := c.Show(cmd.Context(), id)
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, controlOutput{ID: id, Action: verb, Status: w.Status})
				}
				fmt.Fprintf(a.out, "workflow %s %s; status now %s\n", id, past(verb), w.Status)
				return nil
			})
		},
	}
}
