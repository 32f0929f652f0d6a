// Package metrics is a member's Prometheus collector (graft's
// Manager.Collector): the metric names graft re-exports, the gauges and
// counters read from internal/member's Info on every scrape, and the step
// and workflow duration histograms fed from events. It imports
// internal/member and the Prometheus client.
package metrics

import (
	"time"

	"github.com/eleven-am/graft/internal/member"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric and label names; graft's Metric* and Label* constants document
// each one.
const (
	// MetricWorkflowsActive is graft.MetricWorkflowsActive.
	MetricWorkflowsActive = "graft_workflows_active"
	// MetricStepsQueued is graft.MetricStepsQueued.
	MetricStepsQueued = "graft_steps_queued"
	// MetricStepsExecuting is graft.MetricStepsExecuting.
	MetricStepsExecuting = "graft_steps_executing"
	// MetricWorkflowsBlocked is graft.MetricWorkflowsBlocked.
	MetricWorkflowsBlocked = "graft_workflows_blocked"
	// MetricShards is graft.MetricShards.
	MetricShards = "graft_shards"
	// MetricShardsLed is graft.MetricShardsLed.
	MetricShardsLed = "graft_shards_led"
	// MetricWorkflowsCompleted is graft.MetricWorkflowsCompleted.
	MetricWorkflowsCompleted = "graft_workflows_completed_total"
	// MetricWorkflowsFailed is graft.MetricWorkflowsFailed.
	MetricWorkflowsFailed = "graft_workflows_failed_total"
	// MetricWorkflowsStopped is graft.MetricWorkflowsStopped.
	MetricWorkflowsStopped = "graft_workflows_stopped_total"
	// MetricStepsExecuted is graft.MetricStepsExecuted.
	MetricStepsExecuted = "graft_steps_executed_total"
	// MetricStepErrors is graft.MetricStepErrors.
	MetricStepErrors = "graft_step_errors_total"
	// MetricEventsDropped is graft.MetricEventsDropped.
	MetricEventsDropped = "graft_events_dropped_total"
	// MetricStepDuration is graft.MetricStepDuration.
	MetricStepDuration = "graft_step_duration_seconds"
	// MetricWorkflowDuration is graft.MetricWorkflowDuration.
	MetricWorkflowDuration = "graft_workflow_duration_seconds"
	// LabelNode is graft.LabelNode.
	LabelNode = "node"
	// LabelNodeName is graft.LabelNodeName.
	LabelNodeName = "node_name"
)

// Histogram buckets, in seconds.
var (
	// stepDurationBuckets span 5ms to 10s.
	stepDurationBuckets = prometheus.DefBuckets
	// workflowDurationBuckets span 100ms to about 7h (0.1s × 4^n).
	workflowDurationBuckets = prometheus.ExponentialBuckets(0.1, 4, 10)
)

// Collector implements prometheus.Collector for one member. Its fields
// are set once by New; the histograms are safe for concurrent use, and so
// is the collector.
type Collector struct {
	info func() member.Info

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

var _ prometheus.Collector = (*Collector)(nil)

// New returns the collector of member node, which reads info on every
// scrape.
func New(node string, info func() member.Info) *Collector {
	labels := prometheus.Labels{LabelNode: node}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, nil, labels)
	}
	return &Collector{
		info:               info,
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
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
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
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	info := c.info()
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

// ObserveStep records the duration of a step attempt of node.
func (c *Collector) ObserveStep(node string, d time.Duration) {
	c.stepDuration.WithLabelValues(node).Observe(d.Seconds())
}

// ObserveWorkflow records the duration of a completed workflow.
func (c *Collector) ObserveWorkflow(d time.Duration) { c.workflowDuration.Observe(d.Seconds()) }
