// Command uidemo runs one embedded Graft member with the operations page
// (package graftui) on http://127.0.0.1:8090/, and keeps starting
// workflows until interrupted: most complete, some retry a step and then
// complete, some fail, some are slow (a step every few seconds, so pausing
// one is visible) and some wait on a CanStart gate for a while. Data goes
// under ./data/uidemo.
//
//	go run ./examples/uidemo            # or: make ui-demo
//
// The page's pause, resume and stop buttons are on: the server listens on
// loopback only. /healthz and /readyz are the member's probes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/graftui"
	"golang.org/x/sync/errgroup"
)

// Job is the state of every demo workflow.
type Job struct {
	Kind      string   `json:"kind"`
	N         int      `json:"n"`
	Ticks     int      `json:"ticks,omitempty"`
	NotBefore int64    `json:"not_before,omitempty"`
	Receipt   string   `json:"receipt,omitempty"`
	Trail     []string `json:"trail"`
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter is a random duration in [lo, hi).
func jitter(lo, hi time.Duration) time.Duration { return lo + rand.N(hi-lo) }

// Fetch loads the job's input.
type Fetch struct{}

// GetName names the node.
func (Fetch) GetName() string { return "Fetch" }

// Execute takes a moment, then hands over to Transform.
func (Fetch) Execute(ctx context.Context, j *Job, _ map[string]any) (*graft.NodeResult, error) {
	if err := sleep(ctx, jitter(100*time.Millisecond, 400*time.Millisecond)); err != nil {
		return nil, err
	}
	j.Trail = append(j.Trail, "fetched")
	return &graft.NodeResult{GlobalState: j, NextNodes: []graft.NextNode{{NodeName: "Transform"}}}, nil
}

// Transform checks and converts the input: bad jobs fail for good, flaky
// ones fail their first attempt, slow and gated ones take a detour.
type Transform struct{}

// GetName names the node.
func (Transform) GetName() string { return "Transform" }

// Execute branches on the job's kind.
func (Transform) Execute(ctx context.Context, j *Job, _ map[string]any) (*graft.NodeResult, error) {
	wc, _ := graft.GetWorkflowContext(ctx)
	if err := sleep(ctx, jitter(50*time.Millisecond, 300*time.Millisecond)); err != nil {
		return nil, err
	}
	switch {
	case j.Kind == "bad":
		return nil, graft.Permanent(fmt.Errorf("record %d: field \"amount\" is not a number: \"12,50 €\"", j.N))
	case j.Kind == "flaky" && wc != nil && wc.Attempt <= 1:
		return nil, errors.New("upstream timed out after 250ms (will retry)")
	}
	j.Trail = append(j.Trail, "transformed")
	next := "Store"
	switch j.Kind {
	case "slow":
		next = "Tick"
	case "gated":
		next = "Approve"
		j.NotBefore = time.Now().Add(20 * time.Second).UnixNano()
	}
	return &graft.NodeResult{GlobalState: j, NextNodes: []graft.NextNode{{NodeName: next}}}, nil
}

// Tick is a slow step that runs eight times, four seconds each.
type Tick struct{}

// GetName names the node.
func (Tick) GetName() string { return "Tick" }

// Execute waits, then runs again or moves on to Store.
func (Tick) Execute(ctx context.Context, j *Job, _ map[string]any) (*graft.NodeResult, error) {
	if err := sleep(ctx, 4*time.Second); err != nil {
		return nil, err
	}
	j.Ticks++
	next := "Tick"
	if j.Ticks >= 8 {
		next = "Store"
	}
	return &graft.NodeResult{GlobalState: j, NextNodes: []graft.NextNode{{NodeName: next}}}, nil
}

// Approve waits on its CanStart gate for twenty seconds: meanwhile the
// workflow is blocked.
type Approve struct{}

// GetName names the node.
func (Approve) GetName() string { return "Approve" }

// CanStart opens the gate once NotBefore has passed.
func (Approve) CanStart(_ context.Context, j *Job, _ map[string]any) bool {
	return time.Now().UnixNano() >= j.NotBefore
}

// Execute approves the job.
func (Approve) Execute(_ context.Context, j *Job, _ map[string]any) (*graft.NodeResult, error) {
	j.Trail = append(j.Trail, "approved")
	return &graft.NodeResult{GlobalState: j, NextNodes: []graft.NextNode{{NodeName: "Store"}}}, nil
}

// Store writes the result.
type Store struct{}

// GetName names the node.
func (Store) GetName() string { return "Store" }

// Execute writes the receipt.
func (Store) Execute(ctx context.Context, j *Job, _ map[string]any) (*graft.NodeResult, error) {
	if err := sleep(ctx, jitter(50*time.Millisecond, 200*time.Millisecond)); err != nil {
		return nil, err
	}
	j.Trail = append(j.Trail, "stored")
	j.Receipt = fmt.Sprintf("job %d stored", j.N)
	return &graft.NodeResult{GlobalState: j}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address of the operations page")
	dataDir := flag.String("data", "./data/uidemo", "data directory")
	every := flag.Duration("every", 2*time.Second, "how often a workflow starts")
	flag.Parse()
	if err := run(*addr, *dataDir, *every); err != nil {
		fmt.Fprintln(os.Stderr, "uidemo:", err)
		os.Exit(1)
	}
}

func run(addr, dataDir string, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("-every (%s) must be positive", every)
	}
	cfg := graft.DefaultConfig("node-1", "127.0.0.1:7100", dataDir)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Engine.DrainTimeout = 5 * time.Second
	cfg.Engine.WorkerCount = 32 // the slow steps mostly wait
	cfg.Engine.RetryDelay = 500 * time.Millisecond
	cfg.Engine.MaxRetryDelay = 2 * time.Second
	manager := graft.NewWithConfig(cfg)
	for _, n := range []any{Fetch{}, Transform{}, Tick{}, Approve{}, Store{}} {
		if err := manager.RegisterNode(n); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err := manager.Start(startCtx, 0)
	cancel()
	if err != nil {
		return err
	}
	defer func() { _ = manager.Stop() }()

	mux := http.NewServeMux()
	mux.Handle("/healthz", manager.LivezHandler())
	mux.Handle("/readyz", manager.ReadyzHandler())
	mux.Handle("/", graftui.Handler(manager, graftui.Options{AllowControl: true, RefreshInterval: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Printf("operations page on http://%s/ (data in %s); Ctrl-C to stop\n", ln.Addr(), dataDir)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	})
	g.Go(func() error { return produce(gctx, manager, every) })
	return g.Wait()
}

// kinds weighs the kinds of jobs produce starts.
var kinds = []string{"ok", "ok", "ok", "ok", "ok", "ok", "flaky", "flaky", "bad", "bad", "slow", "slow", "gated"}

// produce starts a workflow every interval until ctx ends.
func produce(ctx context.Context, m *graft.Manager, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		kind := kinds[rand.IntN(len(kinds))]
		id := fmt.Sprintf("job-%s-%04d-%s", time.Now().UTC().Format("150405"), n, kind)
		err := m.StartWorkflowContext(ctx, graft.WorkflowTrigger{
			WorkflowID:   id,
			InitialNodes: []graft.NodeConfig{{Name: "Fetch"}},
			InitialState: Job{Kind: kind, N: n, Trail: []string{}},
			Metadata:     map[string]string{"source": "uidemo", "kind": kind},
		})
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "starting %s: %v\n", id, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
