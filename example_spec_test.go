package graft_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/eleven-am/graft"
)

type DataState struct {
	Input     string      `json:"input"`
	Processed interface{} `json:"processed,omitempty"`
	Valid     bool        `json:"valid,omitempty"`
}

type DataConfig struct {
	Threshold float64 `json:"threshold"`
	Mode      string  `json:"mode"`
}

type ProcessDataNode struct{}

func (n *ProcessDataNode) GetName() string { return "ProcessData" }

func (n *ProcessDataNode) Execute(ctx context.Context, state *DataState, config *DataConfig) (*graft.NodeResult, error) {
	if _, ok := graft.GetWorkflowContext(ctx); !ok {
		return nil, fmt.Errorf("no workflow context")
	}
	state.Processed = "processed " + state.Input
	return &graft.NodeResult{
		GlobalState: state,
		NextNodes:   []graft.NextNode{{NodeName: "ValidateData", Config: &DataConfig{Threshold: 0.8, Mode: "strict"}}},
	}, nil
}

func (n *ProcessDataNode) CanStart(ctx context.Context, state *DataState, config *DataConfig) bool {
	return state.Input != ""
}

type ValidateDataNode struct{}

func (n *ValidateDataNode) GetName() string { return "ValidateData" }

func (n *ValidateDataNode) Execute(ctx context.Context, state map[string]interface{}, config map[string]interface{}) (*graft.NodeResult, error) {
	return &graft.NodeResult{
		GlobalState: map[string]interface{}{"input": state["input"], "processed": state["processed"], "valid": config["threshold"] == 0.8},
	}, nil
}

// Example_specREADME is a program written against the project's README
// (graft.Config standing where it says domain.Config): handlers registered
// as statements, the status and cluster fields it prints.
func Example_specREADME() {
	dataDir, err := os.MkdirTemp("", "graft-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dataDir)

	config := graft.DefaultConfig("node-1", loopbackAddr(), dataDir)
	config.Logger = slog.New(slog.DiscardHandler)
	manager := graft.NewWithConfig(config)
	manager.RegisterNode(&ProcessDataNode{})
	manager.RegisterNode(&ValidateDataNode{})

	done := make(chan *graft.WorkflowCompletedEvent, 1)
	manager.OnWorkflowStarted(func(event *graft.WorkflowStartedEvent) {})
	manager.OnWorkflowCompleted(func(event *graft.WorkflowCompletedEvent) { done <- event })
	manager.OnWorkflowError(func(event *graft.WorkflowErrorEvent) { fmt.Println("failed:", event.Error) })
	manager.OnNodeStarted(func(event *graft.NodeStartedEvent) {})
	manager.OnNodeCompleted(func(event *graft.NodeCompletedEvent) { _ = event.Duration.Milliseconds() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	grpcPort := 0
	if err := manager.Start(ctx, grpcPort); err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Stop()

	trigger := graft.WorkflowTrigger{
		WorkflowID:   "workflow-123",
		InitialNodes: []graft.NodeConfig{{Name: "ProcessData", Config: map[string]interface{}{}}},
		InitialState: map[string]interface{}{"input": "raw data"},
		Metadata:     map[string]string{"source": "api", "priority": "high"},
	}
	if err := manager.StartWorkflow(trigger); err != nil {
		fmt.Printf("Failed to start workflow: %v\n", err)
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Println("timed out")
		return
	}

	status, err := manager.GetWorkflowStatus("workflow-123")
	if err != nil {
		fmt.Printf("Error: %v\n", err)
		return
	}
	fmt.Printf("Workflow State: %s\n", status.Status)
	fmt.Printf("Executed Nodes: %d\n", len(status.ExecutedNodes))
	fmt.Printf("Pending Nodes: %d\n", len(status.PendingNodes))
	var state DataState
	if err := status.DecodeState(&state); err == nil {
		fmt.Printf("Processed: %v, valid: %v\n", state.Processed, state.Valid)
	}

	info := manager.GetClusterInfo()
	fmt.Printf("Node ID: %s\n", info.NodeID)
	fmt.Printf("Is Leader: %v\n", info.IsLeader)
	fmt.Printf("Cluster Peers: %v\n", info.Peers)
	fmt.Printf("Active Workflows: %d\n", info.Metrics.ActiveWorkflows)

	// Output:
	// Workflow State: completed
	// Executed Nodes: 2
	// Pending Nodes: 0
	// Processed: processed raw data, valid: true
	// Node ID: node-1
	// Is Leader: true
	// Cluster Peers: []
	// Active Workflows: 0
}
