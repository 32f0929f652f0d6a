package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/eleven-am/graft/internal/opclient"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/spf13/cobra"
)

// commandRequest builds a dev command from its name and --params.
func commandRequest(name, params string) (operator.CommandRequest, error) {
	req := operator.CommandRequest{Command: name}
	if params != "" {
		if !json.Valid([]byte(params)) {
			return req, fmt.Errorf("--params is not valid JSON: %.60q", params)
		}
		req.Params = json.RawMessage(params)
	}
	return req, nil
}

// broadcastCmd is graft broadcast.
func (a *app) broadcastCmd() *cobra.Command {
	var params string
	cmd := &cobra.Command{
		Use:     "broadcast COMMAND",
		Short:   "Send a dev command to every member; the answering member runs its handler at once",
		Example: `  graft broadcast flush-cache --params '{"region":"eu"}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := commandRequest(args[0], params)
			if err != nil {
				return err
			}
			return a.with(func(c *opclient.Client) error {
				if err := c.Broadcast(cmd.Context(), req); err != nil {
					return err
				}
				if a.json {
					return printJSON(a.out, map[string]string{"command": req.Command, "status": "sent"})
				}
				fmt.Fprintf(a.out, "command %s sent to every member (its handler succeeded on the answering member)\n", req.Command)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&params, "params", "", "the command's params, JSON")
	return cmd
}

// queryCmd is graft query.
func (a *app) queryCmd() *cobra.Command {
	var params string
	cmd := &cobra.Command{
		Use:     "query COMMAND",
		Short:   "Run a dev command on every member and show each member's outcome",
		Example: `  graft query health-check --params '{"deep":true}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := commandRequest(args[0], params)
			if err != nil {
				return err
			}
			return a.with(func(c *opclient.Client) error {
				ans, err := c.Query(cmd.Context(), req)
				if err != nil {
					return err
				}
				failed := 0
				for _, e := range ans.Outcomes {
					if e != "" {
						failed++
					}
				}
				if a.json {
					if err := printJSON(a.out, ans); err != nil {
						return err
					}
				} else {
					t := newTable(a.out, "MEMBER", "OUTCOME")
					for _, id := range slices.Sorted(maps.Keys(ans.Outcomes)) {
						out := "ok"
						if e := ans.Outcomes[id]; e != "" {
							out = "error: " + e
						}
						t.row(id, out)
					}
					if err := t.flush(); err != nil {
						return err
					}
				}
				if failed > 0 {
					return fmt.Errorf("command %s failed on %d of %d members", req.Command, failed, len(ans.Outcomes))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&params, "params", "", "the command's params, JSON")
	return cmd
}
