// Command cluster runs a three-member Graft cluster as three processes on
// loopback, runs workflows across it, stops one member mid-run and shows the
// other two finishing every workflow.
//
//	go run ./examples/cluster            # or: make cluster-demo
//	go run ./examples/cluster -base-port 9101 -workflows 60
//
// Run without -member, it is the launcher: it removes the data directory
// (default ./data/cluster, so every run bootstraps a fresh cluster) and
// execs itself three times as members n1, n2 and n3. Member i (0-based)
// listens on
//
//	raft   base-port + 10*i        (7101, 7111, 7121)
//	gossip base-port + 10*i + 1    (7102, 7112, 7122)
//	rpc    base-port + 10*i + 4    (7105, 7115, 7125)
//
// with its data under <data>/<id>. Every member prints its events on stdout
// prefixed with its ID, and its Warn-and-above logs on stderr, also
// prefixed.
//
// The launcher waits for the three "ready" lines, then tells n1 (one line
// on its stdin) to start the workflows: three steps each, A→B→C, each step
// sleeping a little and recording which member ran it. Once a few have
// completed it stops n3 with SIGTERM (a graceful Stop), then asks n1 to
// poll every workflow's status until all are completed and print the
// summary, and finally stops n1 and n2. It exits 0 only if every workflow
// completed, within two minutes.
//
// Member commands (one per line on a member's stdin): "start N" starts
// workflows demo-01..demo-N; "wait N" polls their status and prints
// "summary: X/N completed". EOF on stdin (the launcher went away) stops the
// member, as do SIGTERM and SIGINT.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eleven-am/graft"
)

// memberIDs are the three members, in port order.
var memberIDs = []string{"n1", "n2", "n3"}

// Demo timing.
const (
	stepSleep     = 150 * time.Millisecond
	demoTimeout   = 2 * time.Minute
	stopAfterDone = 5 // completions seen before n3 is stopped
)

func main() {
	var (
		member    = flag.String("member", "", "run as this member (n1, n2 or n3); empty: launch all three")
		basePort  = flag.Int("base-port", 7101, "raft port of n1; member i uses base+10i (raft), +1 (gossip), +4 (rpc)")
		dataDir   = flag.String("data", "./data/cluster", "parent of the members' data directories (removed by the launcher)")
		workflows = flag.Int("workflows", 30, "workflows the launcher has n1 start")
		tlsDir    = flag.String("tls", "", "directory of ca.pem and NODE.pem/NODE-key.pem (make certs): mutual TLS, gossip key and strict policy on")
	)
	flag.Parse()
	var err error
	if *member == "" {
		err = launch(*basePort, *dataDir, *workflows, *tlsDir)
	} else {
		err = runMember(*member, *basePort, *dataDir, *tlsDir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", cmpOr(*member, "launcher"), err)
		os.Exit(1)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ---------------------------------------------------------------- member

// step is one node of the demo workflow: it sleeps, appends "<name>@<member>"
// to the state's trail and schedules next.
type step struct{ name, next string }

// GetName names the node.
func (s step) GetName() string { return s.name }

// Execute runs the step.
func (s step) Execute(ctx context.Context, st map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	select {
	case <-time.After(stepSleep):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	wc, _ := graft.GetWorkflowContext(ctx)
	trail, _ := st["trail"].([]any)
	st["trail"] = append(trail, s.name+"@"+wc.MemberID)
	res := &graft.NodeResult{GlobalState: st}
	if s.next != "" {
		res.NextNodes = []graft.NextNode{{NodeName: s.next}}
	}
	return res, nil
}

// ports returns member i's raft, gossip and rpc ports.
func ports(base, i int) (raft, gossip, rpc int) {
	raft = base + 10*i
	return raft, raft + 1, raft + 4
}

// runMember runs one member until SIGTERM/SIGINT or EOF on stdin.
func runMember(id string, base int, dataDir, tlsDir string) error {
	idx := -1
	for i, m := range memberIDs {
		if m == id {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("unknown member %q (want n1, n2 or n3)", id)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf("[%s] %s\n", id, fmt.Sprintf(format, args...))
	}

	var peers []graft.StaticPeer
	for i, p := range memberIDs {
		raft, gossip, _ := ports(base, i)
		peers = append(peers, graft.StaticPeer{ID: p, Address: "127.0.0.1", Port: raft, GossipPort: gossip})
	}
	raft, gossip, rpc := ports(base, idx)
	cfg := graft.DefaultConfig(id, "127.0.0.1:"+strconv.Itoa(raft), filepath.Join(dataDir, id))
	cfg.Logger = slog.New(quietDragonboat{slog.NewTextHandler(prefixWriter{id: id, w: os.Stderr},
		&slog.HandlerOptions{Level: slog.LevelWarn})})
	cfg.Cluster.ShardCount = 4
	cfg.Cluster.GossipPort = gossip
	cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: peers}}
	if tlsDir != "" {
		cfg.TLS = graft.TLSConfig{
			CAFile:   filepath.Join(tlsDir, "ca.pem"),
			CertFile: filepath.Join(tlsDir, id+".pem"),
			KeyFile:  filepath.Join(tlsDir, id+"-key.pem"),
		}
		cfg.Cluster.Key = []byte("graft-demo-gossip-key-32-bytes!!") // a demo key: generate your own
		cfg.Cluster.Policy = graft.ClusterPolicyStrict
		cfg.Cluster.AllowedNodes = memberIDs
	}
	cfg.Engine.DrainTimeout = 5 * time.Second
	cfg.Engine.RetryDelay, cfg.Engine.MaxRetryDelay = 100*time.Millisecond, time.Second

	m := graft.NewWithConfig(cfg)
	for _, n := range []step{{"A", "B"}, {"B", "C"}, {"C", ""}} {
		if err := m.RegisterNode(n); err != nil {
			return err
		}
	}
	m.OnNodeJoined(func(e *graft.NodeJoinedEvent) { say("member %s joined (%s)", e.NodeID, e.Address) })
	m.OnNodeLeft(func(e *graft.NodeLeftEvent) { say("member %s left", e.NodeID) })
	m.OnWorkflowCompleted(func(e *graft.WorkflowCompletedEvent) {
		var trail []string
		if s, err := decodeTrail(e.FinalStateJSON); err == nil {
			trail = s
		}
		say("workflow %s completed in %s: %s", e.WorkflowID, e.Duration.Round(time.Millisecond), strings.Join(trail, " "))
	})
	m.OnWorkflowError(func(e *graft.WorkflowErrorEvent) { say("workflow %s FAILED: %v", e.WorkflowID, e.Error) })

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err := m.Start(startCtx, rpc)
	cancel()
	if err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	info := m.GetClusterInfo()
	say("ready: raft %d, gossip %d, rpc %d; peers %v; leading shards %v", raft, gossip, rpc, info.Peers, info.LeadShards)

	// Commands on stdin; EOF means the launcher is gone.
	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
		close(cmds)
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			say("signal received, stopping")
			break loop
		case line, ok := <-cmds:
			if !ok {
				say("stdin closed, stopping")
				break loop
			}
			go command(ctx, m, line, say)
		}
	}
	if err := m.Stop(); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	say("stopped")
	return nil
}

// command runs one stdin command.
func command(ctx context.Context, m *graft.Manager, line string, say func(string, ...any)) {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 {
		say("bad command %q", line)
		return
	}
	switch verb {
	case "start":
		for i := 1; i <= n; i++ {
			err := m.StartWorkflowContext(ctx, graft.WorkflowTrigger{
				WorkflowID:   workflowID(i),
				InitialNodes: []graft.NodeConfig{{Name: "A"}},
				InitialState: map[string]any{"trail": []string{}},
			})
			if err != nil {
				say("start %s: ERROR %v", workflowID(i), err)
				return
			}
		}
		say("started %d workflows", n)
	case "wait":
		deadline := time.Now().Add(60 * time.Second)
		for {
			done, states, stuck := 0, map[graft.WorkflowState]int{}, []string(nil)
			for i := 1; i <= n; i++ {
				s, err := m.GetWorkflowStatusContext(ctx, workflowID(i))
				if err != nil {
					states["unknown"]++
					stuck = append(stuck, fmt.Sprintf("%s: %v", workflowID(i), err))
					continue
				}
				states[s.Status]++
				if s.Status == graft.WorkflowStateCompleted {
					done++
					continue
				}
				var running, pending []string
				for _, e := range s.ExecutingNodes {
					running = append(running, fmt.Sprintf("%s@%s#%d", e.NodeName, e.MemberID, e.Attempt))
				}
				for _, p := range s.PendingNodes {
					pending = append(pending, p.NodeName)
				}
				stuck = append(stuck, fmt.Sprintf("%s: %s, executing %v, pending %v, updated %s ago",
					s.WorkflowID, s.Status, running, pending, time.Since(s.UpdatedAt).Round(time.Millisecond)))
			}
			if done == n || time.Now().After(deadline) || ctx.Err() != nil {
				for _, l := range stuck {
					say("  not completed: %s", l)
				}
				say("summary: %d/%d completed %v", done, n, states)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	default:
		say("bad command %q", line)
	}
}

func workflowID(i int) string { return fmt.Sprintf("demo-%02d", i) }

// prefixWriter prefixes every line written to w with "[id] ".
type prefixWriter struct {
	id string
	w  io.Writer
}

// Write writes p (whole log records from slog) with the prefix.
func (p prefixWriter) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	var sb strings.Builder
	for _, l := range lines {
		if l != "" {
			sb.WriteString("[" + p.id + "] " + l)
		}
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// quietDragonboat drops Dragonboat's routine Warn records (elections) and
// its transport records (a connection error every half second per peer
// while the stopped member is down, expected in this demo), keeping its
// other errors and everything from Graft itself.
type quietDragonboat struct{ slog.Handler }

// Handle passes r on unless it is one of the records described above.
func (h quietDragonboat) Handle(ctx context.Context, r slog.Record) error {
	drop := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "dragonboat.pkg" {
			drop = r.Level < slog.LevelError || a.Value.String() == "transport"
			return false
		}
		return true
	})
	if drop {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the filter on derived handlers.
func (h quietDragonboat) WithAttrs(a []slog.Attr) slog.Handler {
	return quietDragonboat{h.Handler.WithAttrs(a)}
}

// WithGroup keeps the filter on derived handlers.
func (h quietDragonboat) WithGroup(n string) slog.Handler {
	return quietDragonboat{h.Handler.WithGroup(n)}
}

// -------------------------------------------------------------- launcher

// child is one member process.
type child struct {
	id    string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process was reaped
	err   error         // Wait's result, valid after done
}

// line is one stdout line of a member.
type line struct{ id, text string }

// launch runs the demo: three members, workflows, one member stopped.
func launch(base int, dataDir string, workflows int, tlsDir string) error {
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	ctx, stopSig := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSig()

	fmt.Printf("launcher: starting members %v (raft ports %d/%d/%d), data under %s\n",
		memberIDs, base, base+10, base+20, dataDir)
	lines := make(chan line, 4096)
	exits := make(chan string, len(memberIDs))
	children := map[string]*child{}
	expected := map[string]bool{} // members whose exit is expected
	defer func() {                // on any return: stop whoever is still running
		for _, c := range children {
			_ = stopChild(c)
		}
	}()
	for _, id := range memberIDs {
		cmd := exec.Command(self, "-member", id, "-base-port", strconv.Itoa(base), "-data", dataDir, "-tls", tlsDir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", id, err)
		}
		c := &child{id: id, cmd: cmd, stdin: stdin, done: make(chan struct{})}
		children[id] = c
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				fmt.Println(sc.Text())
				select {
				case lines <- line{id, sc.Text()}:
				default: // nobody is listening any more
				}
			}
			c.err = cmd.Wait()
			close(c.done)
			exits <- id
		}()
	}

	// next waits for a member line satisfying ok, counting completions on
	// the way; it fails if a member reports a failure or exits
	// unexpectedly, and on timeout.
	completed := map[string]bool{}
	next := func(what string, ok func(line) bool) (line, error) {
		for {
			select {
			case l := <-lines:
				if _, wf, found := strings.Cut(l.text, "] workflow "); found {
					if id, rest, _ := strings.Cut(wf, " "); strings.HasPrefix(rest, "completed") {
						completed[id] = true
					}
				}
				if strings.Contains(l.text, "FAILED") || strings.Contains(l.text, "ERROR") {
					return l, fmt.Errorf("%s reported: %s", l.id, l.text)
				}
				if ok(l) {
					return l, nil
				}
			case id := <-exits:
				if !expected[id] {
					return line{}, fmt.Errorf("waiting for %s: member %s exited unexpectedly (%v)", what, id, children[id].err)
				}
			case <-ctx.Done():
				return line{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
			}
		}
	}
	has := func(s string) func(line) bool {
		return func(l line) bool { return strings.Contains(l.text, s) }
	}

	ready := map[string]bool{}
	for len(ready) < len(memberIDs) {
		l, err := next("the members to be ready", has("] ready:"))
		if err != nil {
			return err
		}
		ready[l.id] = true
	}
	fmt.Printf("launcher: all %d members ready; asking n1 to start %d workflows\n", len(ready), workflows)
	if _, err := fmt.Fprintf(children["n1"].stdin, "start %d\n", workflows); err != nil {
		return err
	}
	if _, err := next("the workflows to start", has("[n1] started")); err != nil {
		return err
	}
	for len(completed) < min(stopAfterDone, workflows) {
		if _, err := next("the first completions", func(line) bool { return true }); err != nil {
			return err
		}
	}
	fmt.Printf("launcher: %d/%d completed; stopping n3 (SIGTERM)\n", len(completed), workflows)
	expected["n3"] = true
	if err := children["n3"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := next("n3 to stop", has("[n3] stopped")); err != nil {
		return err
	}
	n3 := children["n3"]
	delete(children, "n3")
	select {
	case <-n3.done:
		if n3.err != nil {
			return fmt.Errorf("n3 exited with %v", n3.err)
		}
	case <-ctx.Done():
		return fmt.Errorf("waiting for n3 to exit: %w", ctx.Err())
	}
	fmt.Printf("launcher: n3 stopped with %d/%d completed; n1 and n2 finish the rest; asking n1 for the summary\n",
		len(completed), workflows)
	if _, err := fmt.Fprintf(children["n1"].stdin, "wait %d\n", workflows); err != nil {
		return err
	}
	sum, err := next("the summary", has("[n1] summary:"))
	if err != nil {
		return err
	}
	want := fmt.Sprintf("summary: %d/%d completed", workflows, workflows)
	if !strings.Contains(sum.text, want) {
		return fmt.Errorf("not every workflow completed: %s", sum.text)
	}
	fmt.Println("launcher: stopping n1 and n2")
	expected["n1"], expected["n2"] = true, true
	var failed []string
	for _, id := range []string{"n1", "n2"} {
		c := children[id]
		delete(children, id)
		if err := stopChild(c); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", id, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("members failed to stop cleanly: %s", strings.Join(failed, "; "))
	}
	fmt.Printf("launcher: OK: %d/%d workflows completed, n3 stopped mid-run\n", workflows, workflows)
	return nil
}

// stopChild sends c SIGTERM and waits for it to exit, killing it after 20 s.
func stopChild(c *child) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("did not stop within 20s; killed")
	}
}

// decodeTrail returns the "trail" of a workflow's final state.
func decodeTrail(state []byte) ([]string, error) {
	var s struct {
		Trail []string `json:"trail"`
	}
	err := json.Unmarshal(state, &s)
	return s.Trail, err
}
