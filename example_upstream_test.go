package graft_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/eleven-am/graft"
)

// Document is the example's workflow state, as the published examples
// define it.
type Document struct {
	ID      string   `json:"id"`
	Status  string   `json:"status"`
	History []string `json:"history"`
}

type intakeNode struct{}

func (intakeNode) GetName() string { return "intake_node" }

func (intakeNode) Execute(ctx context.Context, doc *Document, _ map[string]interface{}) (*graft.NodeResult, error) {
	if doc.ID == "doc-bad" {
		return nil, graft.Permanent(errors.New("document is corrupt"))
	}
	doc.Status = "validated"
	doc.History = append(doc.History, "intake")
	return &graft.NodeResult{GlobalState: doc, NextNodes: []graft.NextNode{{NodeName: "finalize_node"}}}, nil
}

type finalizeNode struct{}

func (finalizeNode) GetName() string { return "finalize_node" }

func (finalizeNode) Execute(doc *Document) (*graft.NodeResult, error) {
	doc.Status = "final"
	doc.History = append(doc.History, "finalize")
	return &graft.NodeResult{GlobalState: doc}, nil
}

// Example_upstreamAPI is a program written against the published API's
// shapes, as its examples use them (type assertions on FinalState and
// CurrentState, *LastError, Metrics.TotalWorkflows, GetReadinessState,
// SubscribeToWorkflowState, err := manager.OnWorkflowCompleted(...)), run
// on a real lone member.
func Example_upstreamAPI() {
	dataDir, err := os.MkdirTemp("", "graft-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dataDir)
	logger := slog.New(slog.DiscardHandler)

	manager := graft.New("example-1", loopbackAddr(), dataDir, logger)
	for _, n := range []interface{}{intakeNode{}, finalizeNode{}} {
		if err := manager.RegisterNode(n); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("before Start:", manager.GetReadinessState())

	completed := make(chan *graft.WorkflowCompletedEvent, 1)
	if err := manager.OnWorkflowCompleted(func(event *graft.WorkflowCompletedEvent) { completed <- event }); err != nil {
		fmt.Println(err)
		return
	}
	failed := make(chan *graft.WorkflowErrorEvent, 1)
	manager.OnWorkflowFailed(func(event *graft.WorkflowErrorEvent) { failed <- event })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := manager.Start(ctx, 0); err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Stop()
	fmt.Println("after Start:", manager.GetReadinessState())

	trigger := graft.WorkflowTrigger{
		WorkflowID:   "doc-001",
		InitialNodes: []graft.NodeConfig{{Name: "intake_node", Config: map[string]interface{}{"strict": true}}},
		InitialState: Document{ID: "doc-001", Status: "new"},
	}
	if err := manager.StartWorkflow(trigger); err != nil {
		fmt.Println(err)
		return
	}
	statusChan, unsubscribe, err := manager.SubscribeToWorkflowState("doc-001")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer unsubscribe()
	var last *graft.WorkflowStatus
	for status := range statusChan {
		last = status
	}
	fmt.Println("subscription ended with:", last.Status)
	if last.LastError == nil {
		fmt.Println("no error")
	}
	if doc, ok := last.CurrentState.(map[string]interface{}); ok {
		fmt.Println("document status:", doc["status"])
	}

	select {
	case event := <-completed:
		fmt.Printf("nodes executed: %d %v\n", len(event.ExecutedNodes), event.ExecutedNodes)
		if final, ok := event.FinalState.(map[string]interface{}); ok {
			fmt.Println("final status:", final["status"], "history:", final["history"])
		}
	case <-ctx.Done():
		fmt.Println("timed out")
	}

	trigger = graft.WorkflowTrigger{
		WorkflowID:   "doc-bad",
		InitialNodes: []graft.NodeConfig{{Name: "intake_node"}},
		InitialState: Document{ID: "doc-bad", Status: "new"},
	}
	if err := manager.StartWorkflow(trigger); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case event := <-failed:
		if state, ok := event.CurrentState.(map[string]interface{}); ok {
			fmt.Println("failed in", event.FailedNode, "with status", state["status"])
		}
	case <-ctx.Done():
		fmt.Println("timed out")
	}
	status, err := manager.GetWorkflowStatus("doc-bad")
	if err != nil {
		fmt.Println(err)
		return
	}
	if status.LastError != nil {
		fmt.Println("workflow error:", *status.LastError)
	}

	info := manager.GetClusterInfo()
	fmt.Printf("status %s, total %d, completed %d, failed %d, nodes executed %d\n", info.Status,
		info.Metrics.TotalWorkflows, info.Metrics.CompletedWorkflows, info.Metrics.FailedWorkflows,
		info.Metrics.NodesExecuted)

	// Output:
	// before Start: starting
	// after Start: ready
	// subscription ended with: completed
	// no error
	// document status: final
	// nodes executed: 2 [intake_node finalize_node]
	// final status: final history: [intake finalize]
	// failed in intake_node with status new
	// workflow error: document is corrupt
	// status running, total 2, completed 1, failed 1, nodes executed 3
}
