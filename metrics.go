package graft

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names exposed by the collector that Manager.Collector
// returns. Every metric carries the constant label LabelNode.
const (
	// MetricWorkflowsActive is a gauge: running or paused workflows in the
	// shards this member holds.
	MetricWorkflowsActive = "graft_workflows_active"
	// MetricStepsQueued is a gauge: pending steps (ready, delayed or refused),
	// ClusterMetrics.QueueDepth.
	MetricStepsQueued = "graft_steps_queued"
	// MetricStepsExecuting is a gauge: claimed steps,
	// ClusterMetrics.ExecutingSteps.
	MetricStepsExecuting = "graft_steps_executing"
	// MetricWorkflowsBlocked is a gauge: running workflows blocked by CanStart.
	MetricWorkflowsBlocked = "graft_workflows_blocked"
	// MetricShards is a gauge: the number of shards this member holds.
	MetricShards = "graft_shards"
	// MetricShardsLed is a gauge: the number of shards this member leads.
	MetricShardsLed = "graft_shards_led"

	// MetricWorkflowsCompleted is a counter: workflows that completed.
	MetricWorkflowsCompleted = "graft_workflows_completed_total"
	// MetricWorkflowsFailed is a counter: workflows that failed.
	MetricWorkflowsFailed = "graft_workflows_failed_total"
	// MetricWorkflowsStopped is a counter: workflows stopped on request.
	MetricWorkflowsStopped = "graft_workflows_stopped_total"
	// MetricStepsExecuted is a counter: step runs that completed without
	// error.
	MetricStepsExecuted = "graft_steps_executed_total"
	// MetricStepErrors is a counter: step runs that returned an error or
	// panicked.
	MetricStepErrors = "graft_step_errors_total"
	// MetricEventsDropped is a counter: events not delivered to a handler
	// that fell behind, since this process started.
	MetricEventsDropped = "graft_events_dropped_total"

	// MetricStepDuration is a histogram of step attempt durations in seconds,
	// successful or not, labelled by LabelNodeName.
	MetricStepDuration = "graft_step_duration_seconds"
	// MetricWorkflowDuration is a histogram of the durations, in seconds, of
	// workflows that completed successfully.
	MetricWorkflowDuration = "graft_workflow_duration_seconds"
)

// Prometheus label names used by the collector that Manager.Collector
// returns.
const (
	// LabelNode is the constant label holding the member's NodeID.
	LabelNode = "node"
	// LabelNodeName holds the registered name of a workflow step.
	LabelNodeName = "node_name"
)

// Histogram buckets, in seconds.
var (
	// stepDurationBuckets span 5ms to 10s.
	stepDurationBuckets = prometheus.DefBuckets
	// workflowDurationBuckets span 100ms to about 7h (0.1s × 4^n).
	workflowDurationBuckets = prometheus.ExponentialBuckets(0.1, 4, 10)
)

// Collector returns a Prometheus collector for this member. Register it
// yourself; graft never touches the global registry:
//
//	reg.MustRegister(m.Collector())
//
// On every scrape the collector reads GetClusterInfo and reports the gauges
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
	c := newCollector(m)
	m.OnNodeCompleted(func(ev *NodeCompletedEvent) {
		c.stepDuration.WithLabelValues(ev.NodeName).Observe(ev.Duration.Seconds())
	})
	m.OnNodeError(func(ev *NodeErrorEvent) {
		c.stepDuration.WithLabelValues(ev.NodeName).Observe(ev.Duration.Seconds())
	})
	m.OnWorkflowCompleted(func(ev *WorkflowCompletedEvent) {
		c.workflowDuration.Observe(ev.Duration.Seconds())
	})
	return c
}

// collector implements prometheus.Collector for one Manager. Its fields are
// set once by newCollector; the histograms are safe for concurrent use.
type collector struct {
	m *Manager

	workflowsActive    *prometheus.Desc
	stepsQueued        *prometheus.Desc
	stepsExecuting     *prometheus.Desc
	workflowsBlocked   *prometheus.Desc
	shards             *prometheus.Desc
	shardsLed          *prometheus.Desc
	workflowsCompleted *prometheus.Desc
	workflowsFailed    *prometheus.Desc
	workflowsStopped   *prometheus.Desc
	stepsExecuted      *prometheus.Desc
	stepErrors         *prometheus.Desc
	eventsDropped      *prometheus.Desc

	stepDuration     *prometheus.HistogramVec
	workflowDuration prometheus.Histogram
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(m *Manager) *collector {
	labels := prometheus.Labels{LabelNode: m.cfg.NodeID}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, nil, labels)
	}
	return &collector{
		m:                  m,
		workflowsActive:    desc(MetricWorkflowsActive, "Running or paused workflows in the shards this member holds."),
		stepsQueued:        desc(MetricStepsQueued, "Pending workflow steps (ready, delayed or refused)."),
		stepsExecuting:     desc(MetricStepsExecuting, "Claimed workflow steps."),
		workflowsBlocked:   desc(MetricWorkflowsBlocked, "Running workflows blocked by CanStart."),
		shards:             desc(MetricShards, "Shards this member holds."),
		shardsLed:          desc(MetricShardsLed, "Shards this member leads."),
		workflowsCompleted: desc(MetricWorkflowsCompleted, "Workflows that completed successfully."),
		workflowsFailed:    desc(MetricWorkflowsFailed, "Workflows that failed."),
		workflowsStopped:   desc(MetricWorkflowsStopped, "Workflows stopped on request."),
		stepsExecuted:      desc(MetricStepsExecuted, "Workflow step runs that completed without error."),
		stepErrors:         desc(MetricStepErrors, "Workflow step runs that returned an error or panicked."),
		eventsDropped:      desc(MetricEventsDropped, "Events not delivered to a handler that fell behind."),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        MetricStepDuration,
			Help:        "Duration of workflow step attempts run by this member, successful or not.",
			ConstLabels: labels,
			Buckets:     stepDurationBuckets,
		}, []string{LabelNodeName}),
		workflowDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        MetricWorkflowDuration,
			Help:        "Duration of workflows that completed successfully, from start to completion.",
			ConstLabels: labels,
			Buckets:     workflowDurationBuckets,
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.workflowsActive, c.stepsQueued, c.stepsExecuting, c.workflowsBlocked, c.shards, c.shardsLed,
		c.workflowsCompleted, c.workflowsFailed, c.workflowsStopped, c.stepsExecuted, c.stepErrors,
		c.eventsDropped,
	} {
		ch <- d
	}
	c.stepDuration.Describe(ch)
	c.workflowDuration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	info := c.m.GetClusterInfo()
	mt := &info.Metrics
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.workflowsActive, mt.ActiveWorkflows)
	gauge(c.stepsQueued, mt.QueueDepth)
	gauge(c.stepsExecuting, mt.ExecutingSteps)
	gauge(c.workflowsBlocked, mt.BlockedWorkflows)
	gauge(c.shards, len(info.HostedShards))
	gauge(c.shardsLed, len(info.LeadShards))
	counter(c.workflowsCompleted, mt.CompletedWorkflows)
	counter(c.workflowsFailed, mt.FailedWorkflows)
	counter(c.workflowsStopped, mt.StoppedWorkflows)
	counter(c.stepsExecuted, mt.StepsExecuted)
	counter(c.stepErrors, mt.StepErrors)
	counter(c.eventsDropped, mt.DroppedEvents)
	c.stepDuration.Collect(ch)
	c.workflowDuration.Collect(ch)
}
