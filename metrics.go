package graft

import (
	"github.com/eleven-am/graft/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names exposed by the collector that Manager.Collector
// returns. Every metric carries the constant label LabelNode.
const (
	// MetricWorkflowsActive is a gauge: running or paused workflows in the
	// shards this member holds.
	MetricWorkflowsActive = metrics.MetricWorkflowsActive
	// MetricStepsQueued is a gauge: pending steps (ready, delayed or refused),
	// ClusterMetrics.QueueDepth.
	MetricStepsQueued = metrics.MetricStepsQueued
	// MetricStepsExecuting is a gauge: claimed steps,
	// ClusterMetrics.ExecutingSteps.
	MetricStepsExecuting = metrics.MetricStepsExecuting
	// MetricWorkflowsBlocked is a gauge: running workflows blocked by CanStart.
	MetricWorkflowsBlocked = metrics.MetricWorkflowsBlocked
	// MetricShards is a gauge: the number of shards this member holds.
	MetricShards = metrics.MetricShards
	// MetricShardsLed is a gauge: the number of shards this member leads.
	MetricShardsLed = metrics.MetricShardsLed

	// MetricWorkflowsCompleted is a counter: workflows that completed.
	MetricWorkflowsCompleted = metrics.MetricWorkflowsCompleted
	// MetricWorkflowsFailed is a counter: workflows that failed.
	MetricWorkflowsFailed = metrics.MetricWorkflowsFailed
	// MetricWorkflowsStopped is a counter: workflows stopped on request.
	MetricWorkflowsStopped = metrics.MetricWorkflowsStopped
	// MetricStepsExecuted is a counter: step runs that completed without
	// error.
	MetricStepsExecuted = metrics.MetricStepsExecuted
	// MetricStepErrors is a counter: step runs that returned an error or
	// panicked.
	MetricStepErrors = metrics.MetricStepErrors
	// MetricEventsDropped is a counter: events not delivered to a handler
	// that fell behind, since this process started.
	MetricEventsDropped = metrics.MetricEventsDropped

	// MetricStepDuration is a histogram of step attempt durations in seconds,
	// successful or not, labelled by LabelNodeName.
	MetricStepDuration = metrics.MetricStepDuration
	// MetricWorkflowDuration is a histogram of the durations, in seconds, of
	// workflows that completed successfully.
	MetricWorkflowDuration = metrics.MetricWorkflowDuration
)

// Prometheus label names used by the collector that Manager.Collector
// returns.
const (
	// LabelNode is the constant label holding the member's NodeID.
	LabelNode = metrics.LabelNode
	// LabelNodeName holds the registered name of a workflow step.
	LabelNodeName = metrics.LabelNodeName
)

// Collector returns a Prometheus collector for this member. Register it
// yourself; graft never touches the global registry:
//
//	reg.MustRegister(m.Collector())
//
// On every scrape the collector reads the numbers GetClusterInfo reports and reports the gauges
// and counters named by the Metric* constants. The counters are the
// persisted totals, so they survive restarts; like GetClusterInfo they are
// summed over the shards this member holds, so with replication several
// members report the same workflows — aggregate with max, not sum, across
// members. MetricEventsDropped counts since this process started.
//
// The two histograms are fed by handlers that Collector registers with
// OnNodeCompleted, OnNodeError and OnWorkflowCompleted; they observe only
// events published after the call, and like any handler may miss events if
// they fall behind (see MetricEventsDropped). Call Collector once per
// Manager, typically before Start: every call returns a new collector and
// subscribes new handlers, and two collectors of one member cannot be
// registered in the same registry.
//
// The collector is safe for concurrent use.
func (m *Manager) Collector() prometheus.Collector {
	c := metrics.New(m.cfg.NodeID, m.member.Info)
	m.OnNodeCompleted(func(ev *NodeCompletedEvent) { c.ObserveStep(ev.NodeName, ev.Duration) })
	m.OnNodeError(func(ev *NodeErrorEvent) { c.ObserveStep(ev.NodeName, ev.Duration) })
	m.OnWorkflowCompleted(func(ev *WorkflowCompletedEvent) { c.ObserveWorkflow(ev.Duration) })
	return c
}
