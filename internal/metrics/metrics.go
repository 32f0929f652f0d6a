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
	// MetricMemberWorkflowsStarted and the other MetricMember* names are
	// graft's, per member of the cluster state (label LabelMember).
	MetricMemberWorkflowsStarted   = "graft_member_workflows_started_total"
	MetricMemberWorkflowsCompleted = "graft_member_workflows_completed_total"
	MetricMemberWorkflowsFailed    = "graft_member_workflows_failed_total"
	MetricMemberWorkflowsStopped   = "graft_member_workflows_stopped_total"
	MetricMemberStepsExecuted      = "graft_member_steps_executed_total"
	MetricMemberStepErrors         = "graft_member_step_errors_total"
	MetricMemberStepsExecuting     = "graft_member_steps_executing"
	MetricMemberStepsQueued        = "graft_member_steps_queued"
	MetricMemberWorkerCapacity     = "graft_member_worker_capacity"

	// LabelMember is graft.LabelMember.
	LabelMember = "member"
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

	// per member of the cluster state, labelled LabelMember
	memberCounters [6]*prometheus.Desc // started, completed, failed, stopped, steps, step errors
	memberGauges   [3]*prometheus.Desc // executing, queued, capacity

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
	perMember := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{LabelMember}, labels)
	}
	return &Collector{
		memberCounters: [6]*prometheus.Desc{
			perMember(MetricMemberWorkflowsStarted, "Workflows started by each member, from the cluster state."),
			perMember(MetricMemberWorkflowsCompleted, "Workflows whose completion each member committed, from the cluster state."),
			perMember(MetricMemberWorkflowsFailed, "Workflows whose failure each member committed, from the cluster state."),
			perMember(MetricMemberWorkflowsStopped, "Workflows whose stop each member committed, from the cluster state."),
			perMember(MetricMemberStepsExecuted, "Step runs without error whose outcome each member committed, from the cluster state."),
			perMember(MetricMemberStepErrors, "Step runs with an error whose outcome each member committed, from the cluster state."),
		},
		memberGauges: [3]*prometheus.Desc{
			perMember(MetricMemberStepsExecuting, "Steps each member is running, from the cluster state."),
			perMember(MetricMemberStepsQueued, "Ready steps waiting for a worker on each member, from the cluster state."),
			perMember(MetricMemberWorkerCapacity, "Steps each member runs at once, from the cluster state."),
		},
		info:               info,
		workflowsActive:    desc(MetricWorkflowsActive, "Running or paused workflows in the cluster (started minus ended)."),
		stepsQueued:        desc(MetricStepsQueued, "Ready workflow steps waiting for a worker, over the cluster."),
		stepsExecuting:     desc(MetricStepsExecuting, "Workflow steps running, over the cluster."),
		workflowsBlocked:   desc(MetricWorkflowsBlocked, "Running workflows blocked by CanStart in the shards this member leads."),
		shards:             desc(MetricShards, "Shards this member holds."),
		shardsLed:          desc(MetricShardsLed, "Shards this member leads."),
		workflowsCompleted: desc(MetricWorkflowsCompleted, "Workflows that completed successfully, cluster total."),
		workflowsFailed:    desc(MetricWorkflowsFailed, "Workflows that failed, cluster total."),
		workflowsStopped:   desc(MetricWorkflowsStopped, "Workflows stopped on request, cluster total."),
		stepsExecuted:      desc(MetricStepsExecuted, "Workflow step runs that completed without error, cluster total."),
		stepErrors:         desc(MetricStepErrors, "Workflow step runs that returned an error or panicked, cluster total."),
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
	for _, d := range c.memberCounters {
		ch <- d
	}
	for _, d := range c.memberGauges {
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
	for i := range info.Members {
		mi := &info.Members[i]
		k := mi.Counters
		for j, v := range []uint64{k.WorkflowsStarted, k.WorkflowsCompleted, k.WorkflowsFailed, k.WorkflowsStopped, k.StepsExecuted, k.StepErrors} {
			ch <- prometheus.MustNewConstMetric(c.memberCounters[j], prometheus.CounterValue, float64(v), mi.ID)
		}
		for j, v := range []int{mi.Executing, mi.Queued, mi.WorkerCapacity} {
			ch <- prometheus.MustNewConstMetric(c.memberGauges[j], prometheus.GaugeValue, float64(v), mi.ID)
		}
	}
	c.stepDuration.Collect(ch)
	c.workflowDuration.Collect(ch)
}

// ObserveStep records the duration of a step attempt of node.
func (c *Collector) ObserveStep(node string, d time.Duration) {
	c.stepDuration.WithLabelValues(node).Observe(d.Seconds())
}

// ObserveWorkflow records the duration of a completed workflow.
func (c *Collector) ObserveWorkflow(d time.Duration) { c.workflowDuration.Observe(d.Seconds()) }
