package graft

import (
	"github.com/eleven-am/graft/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names exposed by the collector that Manager.Collector
// returns. Every metric carries the constant label LabelNode.
const (
	// MetricWorkflowsActive is a gauge: running or paused workflows in the
	// cluster, ClusterMetrics.ActiveWorkflows.
	MetricWorkflowsActive = metrics.MetricWorkflowsActive
	// MetricStepsQueued is a gauge: ready steps waiting for a worker over
	// the cluster, ClusterMetrics.QueueDepth.
	MetricStepsQueued = metrics.MetricStepsQueued
	// MetricStepsExecuting is a gauge: steps running over the cluster,
	// ClusterMetrics.ExecutingSteps.
	MetricStepsExecuting = metrics.MetricStepsExecuting
	// MetricWorkflowsBlocked is a gauge: running workflows blocked by
	// CanStart in the shards this member leads.
	MetricWorkflowsBlocked = metrics.MetricWorkflowsBlocked
	// MetricShards is a gauge: the number of shards this member holds.
	MetricShards = metrics.MetricShards
	// MetricShardsLed is a gauge: the number of shards this member leads.
	MetricShardsLed = metrics.MetricShardsLed

	// MetricWorkflowsCompleted is a counter: workflows that completed (the
	// cluster's total, like the four counters below).
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

	// MetricMemberWorkflowsStarted is a counter per member of the cluster
	// (label LabelMember): the workflows it started, from the cluster
	// state. The five below are its other counters (MemberCounters).
	MetricMemberWorkflowsStarted = metrics.MetricMemberWorkflowsStarted
	// MetricMemberWorkflowsCompleted is MemberCounters.WorkflowsCompleted.
	MetricMemberWorkflowsCompleted = metrics.MetricMemberWorkflowsCompleted
	// MetricMemberWorkflowsFailed is MemberCounters.WorkflowsFailed.
	MetricMemberWorkflowsFailed = metrics.MetricMemberWorkflowsFailed
	// MetricMemberWorkflowsStopped is MemberCounters.WorkflowsStopped.
	MetricMemberWorkflowsStopped = metrics.MetricMemberWorkflowsStopped
	// MetricMemberStepsExecuted is MemberCounters.StepsExecuted.
	MetricMemberStepsExecuted = metrics.MetricMemberStepsExecuted
	// MetricMemberStepErrors is MemberCounters.StepErrors.
	MetricMemberStepErrors = metrics.MetricMemberStepErrors
	// MetricMemberStepsExecuting is a gauge per member (LabelMember):
	// MemberInfo.Executing.
	MetricMemberStepsExecuting = metrics.MetricMemberStepsExecuting
	// MetricMemberStepsQueued is a gauge per member: MemberInfo.Queued.
	MetricMemberStepsQueued = metrics.MetricMemberStepsQueued
	// MetricMemberWorkerCapacity is a gauge per member:
	// MemberInfo.WorkerCapacity.
	MetricMemberWorkerCapacity = metrics.MetricMemberWorkerCapacity

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
	// LabelMember holds the member a MetricMember* series is about.
	LabelMember = metrics.LabelMember
	// LabelNodeName holds the registered name of a workflow step.
	LabelNodeName = metrics.LabelNodeName
)

// Collector returns a Prometheus collector for this member. Register it
// yourself; graft never touches the global registry:
//
//	reg.MustRegister(m.Collector())
//
// On every scrape the collector reads the numbers GetClusterInfo reports and reports the gauges
// and counters named by the Metric* constants. The workflow and step
// counters are the cluster's totals from the CRDT state, persisted per
// member, so they survive restarts; every member reports the same totals
// once the state converged, so aggregate them across members with max (or
// scrape one), never sum. The MetricMember* series give each member's own
// figures, labelled LabelMember; every member exports them for every
// member it knows, so sum them over LabelMember within one scrape target
// (or max by LabelMember across targets) to get the totals without double
// counting. MetricEventsDropped counts since this process started.
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
