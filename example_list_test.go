package graft_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/eleven-am/graft"
)

// shipNode completes at once.
type shipNode struct{}

func (shipNode) GetName() string { return "Ship" }

func (shipNode) Execute(_ context.Context, state map[string]any, _ map[string]any) (*graft.NodeResult, error) {
	return &graft.NodeResult{GlobalState: state}, nil
}

// Listing the workflows of one tenant, newest first, page by page, and
// counting them by status.
func Example_listWorkflows() {
	dataDir, err := os.MkdirTemp("", "graft-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dataDir)
	config := graft.DefaultConfig("node-1", loopbackAddr(), dataDir)
	config.Logger = slog.New(slog.DiscardHandler)
	manager := graft.NewWithConfig(config)
	if err := manager.RegisterNode(shipNode{}); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := manager.Start(ctx, 0); err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Stop()

	for i := 1; i <= 3; i++ {
		err := manager.StartWorkflowContext(ctx, graft.WorkflowTrigger{
			WorkflowID:   fmt.Sprintf("order-%d", i),
			InitialNodes: []graft.NodeConfig{{Name: "Ship"}},
			Metadata:     map[string]string{"tenant": "acme"},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	for ctx.Err() == nil {
		counts, err := manager.CountWorkflows(ctx, graft.ListFilter{Status: graft.WorkflowStateCompleted})
		if err == nil && counts.Total == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	opts := graft.ListOptions{Metadata: map[string]string{"tenant": "acme"}, Limit: 2}
	for page := 1; ; page++ {
		p, err := manager.ListWorkflows(ctx, opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, w := range p.Workflows {
			fmt.Println("page", page, w.WorkflowID, w.Status)
		}
		if p.NextPageToken == "" {
			break
		}
		opts.PageToken = p.NextPageToken
	}
	counts, err := manager.CountWorkflows(ctx, graft.ListFilter{Metadata: map[string]string{"tenant": "acme"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("completed:", counts.ByStatus[graft.WorkflowStateCompleted], "total:", counts.Total)
	// Output:
	// page 1 order-3 completed
	// page 1 order-2 completed
	// page 2 order-1 completed
	// completed: 3 total: 3
}
