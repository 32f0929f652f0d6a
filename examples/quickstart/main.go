// Command quickstart runs a real workflow with branching on one embedded
// Graft member, its data under ./data/quickstart, printing each step and the
// final state.
//
//	go run ./examples/quickstart
//
// Run it twice: the second run finds the first run's workflow completed in
// the data directory and starts a new one beside it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/eleven-am/graft"
)

// OrderState is the workflow state every node reads and returns.
type OrderState struct {
	OrderID  string   `json:"order_id"`
	Amount   float64  `json:"amount"`
	Items    []string `json:"items"`
	Risk     string   `json:"risk,omitempty"`
	Reserved bool     `json:"reserved,omitempty"`
	Charged  bool     `json:"charged,omitempty"`
	Reviewed bool     `json:"reviewed,omitempty"`
	Receipt  string   `json:"receipt,omitempty"`
}

// ScoreConfig configures the Score node.
type ScoreConfig struct {
	ReviewAbove float64 `json:"review_above"`
}

// Score decides the path: large orders go through manual review first.
type Score struct{}

// GetName names the node.
func (Score) GetName() string { return "Score" }

// Execute branches on the amount and fans out to two parallel steps.
func (Score) Execute(ctx context.Context, s *OrderState, cfg *ScoreConfig) (*graft.NodeResult, error) {
	next := []graft.NextNode{{NodeName: "Reserve"}, {NodeName: "Charge"}}
	s.Risk = "low"
	if s.Amount > cfg.ReviewAbove {
		s.Risk = "high"
		next = append([]graft.NextNode{{NodeName: "Review", Priority: 10}}, next...)
	}
	return &graft.NodeResult{GlobalState: s, NextNodes: next}, nil
}

// Review is the manual review of risky orders.
type Review struct{}

// GetName names the node.
func (Review) GetName() string { return "Review" }

// Execute marks the order reviewed.
func (Review) Execute(s *OrderState) (*graft.NodeResult, error) {
	s.Reviewed = true
	return &graft.NodeResult{GlobalState: s}, nil
}

// Reserve reserves stock; it runs in parallel with Charge.
type Reserve struct{}

// GetName names the node.
func (Reserve) GetName() string { return "Reserve" }

// Execute reserves the items (a map-typed node: it sees the whole state).
func (Reserve) Execute(ctx context.Context, s map[string]interface{}, _ map[string]interface{}) (*graft.NodeResult, error) {
	s["reserved"] = true
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{{NodeName: "Ship", IdempotencyKey: ptr("ship")}}}, nil
}

// Charge charges the customer; it runs in parallel with Reserve.
type Charge struct{}

// GetName names the node.
func (Charge) GetName() string { return "Charge" }

// Execute charges the order.
func (Charge) Execute(s *OrderState) (*graft.NodeResult, error) {
	s.Charged = true
	return &graft.NodeResult{GlobalState: s, NextNodes: []graft.NextNode{{NodeName: "Ship", IdempotencyKey: ptr("ship")}}}, nil
}

// Ship ships once: both branches schedule it with the same idempotency key,
// and CanStart holds it until stock is reserved, payment taken and (for
// risky orders) the review done.
type Ship struct{}

// GetName names the node.
func (Ship) GetName() string { return "Ship" }

// CanStart waits for both branches.
func (Ship) CanStart(ctx context.Context, s *OrderState, _ map[string]interface{}) bool {
	return s.Reserved && s.Charged && (s.Risk != "high" || s.Reviewed)
}

// Execute writes the receipt.
func (Ship) Execute(ctx context.Context, s *OrderState, _ map[string]interface{}) (*graft.NodeResult, error) {
	wc, _ := graft.GetWorkflowContext(ctx)
	s.Receipt = fmt.Sprintf("%s shipped %s by %s", s.OrderID, strings.Join(s.Items, "+"), wc.MemberID)
	return &graft.NodeResult{GlobalState: s}, nil
}

func ptr(s string) *string { return &s }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dataDir := "./data/quickstart"
	if d := os.Getenv("GRAFT_DATA_DIR"); d != "" {
		dataDir = d
	}
	manager := graft.New("node-1", "127.0.0.1:7000", dataDir, logger)
	for _, n := range []any{Score{}, Review{}, Reserve{}, Charge{}, Ship{}} {
		if err := manager.RegisterNode(n); err != nil {
			return err
		}
	}
	done := make(chan *graft.WorkflowCompletedEvent, 1)
	failed := make(chan *graft.WorkflowErrorEvent, 1)
	manager.OnNodeCompleted(func(e *graft.NodeCompletedEvent) {
		fmt.Printf("  step %-8s done in %6s -> next %v\n", e.NodeName, e.Duration.Round(time.Microsecond), e.NextNodes)
	})
	manager.OnWorkflowCompleted(func(e *graft.WorkflowCompletedEvent) { done <- e })
	manager.OnWorkflowError(func(e *graft.WorkflowErrorEvent) { failed <- e })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := manager.Start(ctx, 8080); err != nil {
		return err
	}
	defer manager.Stop()

	id := fmt.Sprintf("order-%d", time.Now().UnixNano())
	fmt.Printf("workflow %s\n", id)
	err := manager.StartWorkflow(graft.WorkflowTrigger{
		WorkflowID:   id,
		InitialNodes: []graft.NodeConfig{{Name: "Score", Config: ScoreConfig{ReviewAbove: 100}}},
		InitialState: OrderState{OrderID: id, Amount: 250, Items: []string{"book", "lamp"}},
		Metadata:     map[string]string{"source": "quickstart"},
	})
	if err != nil {
		return err
	}
	select {
	case e := <-done:
		fmt.Printf("completed in %s after %d steps (%s)\nfinal state: %s\n", e.Duration.Round(time.Millisecond), len(e.ExecutedNodes), strings.Join(e.ExecutedNodes, ", "), e.FinalStateJSON)
	case e := <-failed:
		return fmt.Errorf("workflow failed: %v", e.Error)
	case <-ctx.Done():
		return fmt.Errorf("workflow did not finish: %w", ctx.Err())
	}
	status, err := manager.GetWorkflowStatus(id)
	if err != nil {
		return err
	}
	fmt.Printf("status: %s, executed %d nodes\n", status.Status, len(status.ExecutedNodes))
	info := manager.GetClusterInfo()
	fmt.Printf("member %s: %d workflows completed in this data dir, %d steps\n",
		info.NodeID, info.Metrics.CompletedWorkflows, info.Metrics.StepsExecuted)
	return nil
}
