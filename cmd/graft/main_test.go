package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/loopback"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if a member a test started leaves a goroutine
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// buildCLI builds the graft command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "graft")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// cli runs the built command against one member.
type cli struct {
	t    *testing.T
	bin  string
	args []string // given before every command's own: --addr and TLS flags
}

// run runs the command with args and returns its stdout, stderr and exit
// code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	return c.runEnv(nil, args...)
}

// runEnv is run with env added to the environment.
func (c *cli) runEnv(env []string, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{"--timeout", "20s"}, c.args...), args...)...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.True(c.t, errors.As(err, &ee), "running graft %v: %v", args, err)
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// ok runs the command, requires it to succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	require.Zero(c.t, code, "graft %v failed: %s", args, errOut)
	return out
}

// fails runs the command, requires it to fail and returns its stderr.
func (c *cli) fails(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	require.NotZero(c.t, code, "graft %v succeeded: %s", args, out)
	return errOut
}

// okJSON runs the command with --json and decodes its output into v.
func (c *cli) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append([]string{"--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(c.t, dec.Decode(v), "graft --json %v printed %s", args, out)
}

// cleanEnv is the environment without GRAFT_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRAFT_") {
			env = append(env, kv)
		}
	}
	return env
}

// ports hands out the loopback ports of this package's members.
var ports loopback.Ports

// freePort returns a loopback port nothing listens on, below the
// ephemeral range, never the same twice in this process.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := ports.Port()
	require.NoError(t, err)
	return port
}

// node is a node over map state running fn.
type node struct {
	name string
	fn   func(ctx context.Context, s map[string]any) (*graft.NodeResult, error)
}

func (n *node) GetName() string { return n.name }

func (n *node) Execute(ctx context.Context, s map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	return n.fn(ctx, s)
}

// bundle is a live lone member and what the tests planted in it.
type bundle struct {
	m       *graft.Manager
	addr    string
	release chan struct{} // closed to let Hold finish
	mu      sync.Mutex
	pinged  []string // params of the ping commands run
}

// startMember starts a lone member serving operators on a free port,
// with nodes Ok (completes), Boom (fails the workflow) and Hold (runs
// until released or cancelled), and dev commands ping and bad.
func startMember(t *testing.T, tweak func(*graft.Config)) *bundle {
	t.Helper()
	cfg := graft.DefaultConfig("n1", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), t.TempDir())
	cfg.Logger = testlog.Logger(t, "n1: ", slog.LevelWarn)
	cfg.Cluster.ShardCount = 2
	cfg.Engine.DrainTimeout = 2 * time.Second
	if tweak != nil {
		tweak(cfg)
	}
	b := &bundle{m: graft.NewWithConfig(cfg), release: make(chan struct{})}
	for _, n := range []*node{
		{"Ok", func(_ context.Context, s map[string]any) (*graft.NodeResult, error) {
			s["done"] = true
			return &graft.NodeResult{GlobalState: s}, nil
		}},
		{"Boom", func(context.Context, map[string]any) (*graft.NodeResult, error) {
			return nil, graft.Permanent(errors.New("boom: the card was declined"))
		}},
		{"Hold", func(ctx context.Context, s map[string]any) (*graft.NodeResult, error) {
			select {
			case <-b.release:
				return &graft.NodeResult{GlobalState: s}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}},
	} {
		require.NoError(t, b.m.RegisterNode(n))
	}
	require.NoError(t, b.m.RegisterCommandHandler("ping", func(_ context.Context, _ string, params any) error {
		p, _ := json.Marshal(params)
		b.mu.Lock()
		b.pinged = append(b.pinged, string(p))
		b.mu.Unlock()
		return nil
	}))
	require.NoError(t, b.m.RegisterCommandHandler("bad", func(context.Context, string, any) error {
		return errors.New("bad handler says no")
	}))
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.m.Start(ctx, port))
	t.Cleanup(func() { require.NoError(t, b.m.Stop()) })
	t.Cleanup(func() { close(b.release) }) // runs first: Hold ends before Stop
	host, _, err := net.SplitHostPort(cfg.BindAddr)
	require.NoError(t, err)
	b.addr = net.JoinHostPort(host, strconv.Itoa(port)) // a lone member listens on BindAddr's host
	return b
}

// start starts workflow id running node with metadata tenant.
func (b *bundle) start(t *testing.T, id, node, tenant string) {
	t.Helper()
	require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id,
		InitialNodes: []graft.NodeConfig{{Name: node}}, InitialState: map[string]any{"order": id},
		Metadata: map[string]string{"tenant": tenant}}))
}

// wait waits until workflow id is in status want.
func (b *bundle) wait(t *testing.T, id string, want graft.WorkflowState) {
	t.Helper()
	var last graft.WorkflowState
	require.Eventually(t, func() bool {
		s, err := b.m.GetWorkflowStatus(id)
		if err == nil {
			last = s.Status
		}
		return err == nil && s.Status == want
	}, 20*time.Second, 5*time.Millisecond, "workflow %s never reached %s (last %s)", id, want, last)
}

func (b *bundle) status(t *testing.T, id string) graft.WorkflowState {
	t.Helper()
	s, err := b.m.GetWorkflowStatus(id)
	require.NoError(t, err)
	return s.Status
}

// listIDs returns the IDs of a list's workflows.
func listIDs(out listOutput) []string {
	var ids []string
	for _, w := range out.Workflows {
		ids = append(ids, w.ID)
	}
	return ids
}

// listOutput is what graft workflows list --json prints.
type listOutput struct {
	Workflows     []operator.Summary `json:"workflows"`
	NextPageToken string             `json:"next_page_token"`
	StartedAfter  time.Time          `json:"started_after"`
	Counts        *operator.Counts   `json:"counts"`
}

func TestCLIAgainstALoneMember(t *testing.T) {
	bin := buildCLI(t)
	b := startMember(t, nil)
	c := &cli{t: t, bin: bin, args: []string{"--addr", b.addr}}

	b.start(t, "ok-1", "Ok", "acme")
	b.start(t, "ok-2", "Ok", "acme")
	b.start(t, "fail-1", "Boom", "beta")
	b.start(t, "held-1", "Hold", "acme")
	b.wait(t, "ok-1", graft.WorkflowStateCompleted)
	b.wait(t, "ok-2", graft.WorkflowStateCompleted)
	b.wait(t, "fail-1", graft.WorkflowStateFailed)
	b.wait(t, "held-1", graft.WorkflowStateRunning)

	t.Run("members", func(t *testing.T) {
		out := c.ok("members")
		require.Contains(t, out, "answered by n1 (running)")
		require.Regexp(t, `(?m)^ID\s+STATUS\s+RPC ADDR`, out)
		require.Regexp(t, `(?m)^n1\s+alive`, out)
		var ans operator.MembersAnswer
		c.okJSON(&ans, "members")
		require.Equal(t, "n1", ans.NodeID)
		require.Equal(t, 2, ans.Shards)
		require.Len(t, ans.Members, 1)
		require.Equal(t, "n1", ans.Members[0].ID)
		require.ElementsMatch(t, []string{"Boom", "Hold", "Ok"}, ans.Members[0].NodeTypes)
	})

	t.Run("shards", func(t *testing.T) {
		out := c.ok("shards")
		require.Regexp(t, `(?m)^SHARD\s+LEADER\s+REPLICAS`, out)
		require.Regexp(t, `(?m)^1\s+n1\s+n1\s+replica 1 \(leader\)`, out)
		var ans operator.ShardsAnswer
		c.okJSON(&ans, "shards")
		require.Len(t, ans.Shards, 2)
		for i, s := range ans.Shards {
			require.Equal(t, uint64(i+1), s.ID)
			require.Equal(t, "n1", s.Leader)
			require.NotNil(t, s.Local)
			require.True(t, s.Local.Leader)
			require.Positive(t, s.Local.Term)
			require.Equal(t, []uint64{1}, s.Local.Members)
		}
	})

	t.Run("list", func(t *testing.T) {
		var all listOutput
		c.okJSON(&all, "workflows", "list")
		require.ElementsMatch(t, []string{"ok-1", "ok-2", "fail-1", "held-1"}, listIDs(all))
		require.Equal(t, 4, all.Counts.Total)
		require.Equal(t, map[string]int{"completed": 2, "failed": 1, "running": 1}, all.Counts.ByStatus)

		var failed listOutput
		c.okJSON(&failed, "workflows", "list", "--status", "failed")
		require.Equal(t, []string{"fail-1"}, listIDs(failed))
		require.Equal(t, "Boom", failed.Workflows[0].FailedNode)
		require.Contains(t, failed.Workflows[0].LastError, "card was declined")
		require.Equal(t, map[string]int{"failed": 1}, failed.Counts.ByStatus)

		var acme listOutput
		c.okJSON(&acme, "workflows", "list", "--meta", "tenant=acme")
		require.ElementsMatch(t, []string{"ok-1", "ok-2", "held-1"}, listIDs(acme))
		var acmeDone listOutput
		c.okJSON(&acmeDone, "workflows", "list", "--meta", "tenant=acme", "--status", "completed")
		require.ElementsMatch(t, []string{"ok-1", "ok-2"}, listIDs(acmeDone))

		var onHold listOutput
		c.okJSON(&onHold, "workflows", "list", "--node", "Hold")
		require.Equal(t, []string{"held-1"}, listIDs(onHold))

		var recent, none listOutput
		c.okJSON(&recent, "workflows", "list", "--since", "1h")
		require.Len(t, recent.Workflows, 4)
		c.okJSON(&none, "workflows", "list", "--meta", "tenant=nobody")
		require.Empty(t, none.Workflows)
		require.Zero(t, none.Counts.Total)

		// Paging: two pages of one, then the rest, nothing twice.
		var p1, p2 listOutput
		c.okJSON(&p1, "workflows", "list", "--limit", "1")
		require.Len(t, p1.Workflows, 1)
		require.NotEmpty(t, p1.NextPageToken)
		c.okJSON(&p2, "workflows", "list", "--limit", "1", "--page", p1.NextPageToken)
		require.Len(t, p2.Workflows, 1)
		require.NotEqual(t, p1.Workflows[0].ID, p2.Workflows[0].ID)

		out := c.ok("workflows", "list", "--status", "failed")
		require.Regexp(t, `(?m)^ID\s+STATUS\s+STARTED`, out)
		require.Regexp(t, `(?m)^fail-1\s+failed\s`, out)
		require.Contains(t, out, "total 1: failed 1")
		out = c.ok("workflows", "list", "--limit", "1")
		require.Contains(t, out, "more: --page ")
		require.Contains(t, out, "total 4: running 1, completed 2, failed 1")

		// --since pages on with the absolute bound it stood for.
		var s1, s2 listOutput
		c.okJSON(&s1, "workflows", "list", "--since", "1h", "--limit", "2")
		require.Len(t, s1.Workflows, 2)
		require.False(t, s1.StartedAfter.IsZero())
		c.okJSON(&s2, "workflows", "list", "--after", s1.StartedAfter.Format(time.RFC3339Nano), "--limit", "2", "--page", s1.NextPageToken)
		require.Len(t, s2.Workflows, 2)
		require.ElementsMatch(t, []string{"ok-1", "ok-2", "fail-1", "held-1"}, append(listIDs(s1), listIDs(s2)...))
		out = c.ok("workflows", "list", "--since", "1h", "--limit", "1")
		require.Regexp(t, `more: --page \S+ --after 20\d\d-`, out)
		var future listOutput
		c.okJSON(&future, "workflows", "list", "--before", "2000-01-01T00:00:00Z")
		require.Empty(t, future.Workflows)
		require.Contains(t, c.fails("workflows", "list", "--since", "1h", "--after", "2026-01-01T00:00:00Z"), "give one")
		require.Contains(t, c.fails("workflows", "list", "--after", "yesterday"), `--after "yesterday" is not an RFC 3339 time`)

		require.Contains(t, c.fails("workflows", "list", "--status", "weird"), `--status "weird" is not one of`)
		require.Contains(t, c.fails("workflows", "list", "--meta", "novalue"), `--meta "novalue" is not key=value`)
		require.Contains(t, c.fails("workflows", "list", "--page", "garbage"), "PageToken")
	})

	t.Run("show", func(t *testing.T) {
		out := c.ok("workflows", "show", "fail-1")
		require.Regexp(t, `(?m)^WORKFLOW\s+fail-1`, out)
		require.Regexp(t, `(?m)^status\s+failed`, out)
		require.Regexp(t, `(?m)^failed node\s+Boom`, out)
		require.Contains(t, out, "state:\n{\n  \"order\": \"fail-1\"\n}")
		require.Contains(t, out, "executed steps (1):")
		require.Regexp(t, `(?m)^Boom\s+1\s+n1\s+\S+ \S+\s+\S+\s+-\s+boom: the card was declined`, out)

		var w operator.Workflow
		c.okJSON(&w, "workflows", "show", "ok-1")
		require.Equal(t, "completed", w.Status)
		require.JSONEq(t, `{"order":"ok-1","done":true}`, string(w.State))
		require.Len(t, w.Executed, 1)
		require.Equal(t, "Ok", w.Executed[0].Node)
		require.Equal(t, "n1", w.Executed[0].Member)
		require.NotNil(t, w.CompletedAt)

		out = c.ok("workflows", "show", "held-1")
		require.Contains(t, out, "executing steps (1):")
		require.Regexp(t, `(?m)^Hold\s+1\s+n1\s`, out)
	})

	t.Run("pause resume stop", func(t *testing.T) {
		require.Contains(t, c.ok("workflows", "pause", "held-1"), "workflow held-1 paused; status now paused")
		require.Equal(t, graft.WorkflowStatePaused, b.status(t, "held-1"))
		var res struct{ ID, Action, Status string }
		c.okJSON(&res, "workflows", "resume", "held-1")
		require.Equal(t, "running", res.Status)
		require.Equal(t, graft.WorkflowStateRunning, b.status(t, "held-1"))
		require.Contains(t, c.ok("workflows", "stop", "held-1"), "status now stopped")
		b.wait(t, "held-1", graft.WorkflowStateStopped)
		require.Contains(t, c.fails("workflows", "pause", "ok-1"), "cannot pause")
	})

	t.Run("unknown workflow", func(t *testing.T) {
		require.Contains(t, c.fails("workflows", "show", "no-such-wf"), "graft: workflow no-such-wf not found")
		require.Contains(t, c.fails("workflows", "stop", "no-such-wf"), "workflow no-such-wf not found")
	})

	t.Run("broadcast and query", func(t *testing.T) {
		require.Contains(t, c.ok("broadcast", "ping", "--params", `{"x":1}`), "command ping sent to every member")
		b.mu.Lock()
		require.Equal(t, []string{`{"x":1}`}, b.pinged)
		b.mu.Unlock()
		require.Contains(t, c.fails("broadcast", "ping", "--params", "{nope"), "--params is not valid JSON")
		require.Contains(t, c.fails("broadcast", "bad"), "bad handler says no")

		out := c.ok("query", "ping")
		require.Regexp(t, `(?m)^n1\s+ok$`, out)
		var q operator.QueryAnswer
		c.okJSON(&q, "query", "ping", "--params", `[1,2]`)
		require.Equal(t, map[string]string{"n1": ""}, q.Outcomes)
		stdout, stderr, code := c.run("query", "bad")
		require.Equal(t, 1, code)
		require.Regexp(t, `(?m)^n1\s+error: .*bad handler says no`, stdout)
		require.Contains(t, stderr, "command bad failed on 1 of 1 members")
	})

	t.Run("unreachable", func(t *testing.T) {
		gone := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		other := &cli{t: t, bin: bin, args: []string{"--addr", gone}}
		errOut := other.fails("members")
		require.Contains(t, errOut, "graft: cannot reach member at "+gone+": ")
		require.Contains(t, errOut, "connection refused")
		require.Contains(t, (&cli{t: t, bin: bin, args: []string{"--addr", "nohostport"}}).fails("members"), `member address "nohostport" is not host:port`)
		// TLS against a member without it.
		dir := t.TempDir()
		_, err := certs.Generate(dir, []string{"n1"}, nil, time.Hour)
		require.NoError(t, err)
		op, err := certs.GenerateOperator(dir, "ops", time.Hour)
		require.NoError(t, err)
		withTLS := &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", op.CA, "--cert", op.Cert, "--key", op.Key}}
		require.Contains(t, withTLS.fails("members"), "cannot reach member at "+b.addr+": TLS handshake: ")
		missing := &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", filepath.Join(dir, "nope.pem"), "--cert", op.Cert, "--key", op.Key}}
		require.Contains(t, missing.fails("members"), "reading the CA file")
	})

	t.Run("environment", func(t *testing.T) {
		cmd := exec.Command(bin, "--json", "members")
		cmd.Env = append(cleanEnv(), "GRAFT_ADDR="+b.addr)
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Contains(t, string(out), `"node_id": "n1"`)
	})
}

// hostIP returns a non-loopback IPv4 address of this host, or skips the
// test.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Skip("this host has no non-loopback IPv4 address")
	return ""
}

// Without TLS, a caller that is neither on loopback, nor in
// Operators.Networks, nor a member is refused; listing its network admits
// it.
func TestCLIRefusesAStrangerWithoutTLS(t *testing.T) {
	bin := buildCLI(t)
	ip := hostIP(t)
	bind := func(c *graft.Config) { c.BindAddr = net.JoinHostPort(ip, strconv.Itoa(freePort(t))) }
	closed := startMember(t, bind)
	c := &cli{t: t, bin: bin, args: []string{"--addr", closed.addr}}
	errOut := c.fails("members")
	require.Contains(t, errOut, "refused the call: member n1 refuses an operator call from "+ip+": not loopback, not in Operators.Networks and not a member of this cluster")

	open := startMember(t, func(c *graft.Config) {
		bind(c)
		c.Operators.Networks = []string{ip + "/32"}
	})
	c = &cli{t: t, bin: bin, args: []string{"--addr", open.addr}}
	require.Contains(t, c.ok("members"), "answered by n1")
}
