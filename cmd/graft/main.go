// Command graft is the operator's tool for a Graft cluster: it calls the
// operator methods of any member's RPC port to list the members and
// shards, list, count and show workflows, pause, resume and stop them, and
// broadcast or query dev commands.
//
// Install it with
//
//	go install github.com/eleven-am/graft/cmd/graft@latest
//
// and point it at a member with --addr (or GRAFT_ADDR); with TLS, give the
// cluster CA and an operator certificate (URI SAN graft-operator://NAME)
// with --ca, --cert and --key (or GRAFT_CA, GRAFT_CERT, GRAFT_KEY). Output
// is aligned tables, or JSON with --json. It exits 1 on any error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/eleven-am/graft/internal/opclient"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// defaultAddr is the member address when neither --addr nor GRAFT_ADDR
// gives one.
const defaultAddr = "127.0.0.1:8080"

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := newRoot(stdout, getenv)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "graft:", err)
		return 1
	}
	return 0
}

// app holds the global flags and where output goes.
type app struct {
	addr, ca, cert, key string
	timeout             time.Duration
	json                bool
	out                 io.Writer
}

// newRoot returns the graft command with its subcommands.
func newRoot(stdout io.Writer, getenv func(string) string) *cobra.Command {
	a := &app{out: stdout}
	root := &cobra.Command{
		Use:   "graft",
		Short: "Operate a Graft cluster through any of its members",
		Long: `graft calls the operator methods of a Graft member's RPC port (any member
of a cluster, or a lone member started with a grpcPort above 0).

Without TLS, a member admits operator calls from loopback, from the
networks of its Config.Operators.Networks and from its cluster's members.
With TLS, give the cluster CA and an operator certificate (URI SAN
graft-operator://NAME; make certs writes certs/operator.crt and .key).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.addr, "addr", envOr(getenv, "GRAFT_ADDR", defaultAddr), "member RPC address host:port (env GRAFT_ADDR)")
	f.StringVar(&a.ca, "ca", getenv("GRAFT_CA"), "cluster CA certificate, PEM, for TLS (env GRAFT_CA)")
	f.StringVar(&a.cert, "cert", getenv("GRAFT_CERT"), "operator certificate, PEM, for TLS (env GRAFT_CERT)")
	f.StringVar(&a.key, "key", getenv("GRAFT_KEY"), "operator private key, PEM, for TLS (env GRAFT_KEY)")
	f.DurationVar(&a.timeout, "timeout", opclient.DefaultTimeout, "how long to wait for the member")
	f.BoolVar(&a.json, "json", false, "print JSON instead of tables")
	root.AddCommand(a.membersCmd(), a.shardsCmd(), a.workflowsCmd(), a.broadcastCmd(), a.queryCmd())
	return root
}

// envOr returns the environment variable name, or def if it is empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// client returns a client of the member the flags name; the caller closes
// it.
func (a *app) client() (*opclient.Client, error) {
	return opclient.New(opclient.Options{Addr: a.addr, CAFile: a.ca, CertFile: a.cert, KeyFile: a.key, Timeout: a.timeout})
}

// with runs fn with a client of the member, closing it after.
func (a *app) with(fn func(c *opclient.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}
