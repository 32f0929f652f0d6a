package graft_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// gathered indexes one Gather result by metric name.
type gathered map[string]*dto.MetricFamily

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	g := gathered{}
	for _, mf := range mfs {
		g[mf.GetName()] = mf
	}
	return g
}

// value returns the value of the single gauge or counter sample of name.
func (g gathered) value(t *testing.T, name string) float64 {
	t.Helper()
	mf, ok := g[name]
	require.True(t, ok, "metric %s not gathered", name)
	require.Len(t, mf.GetMetric(), 1, name)
	m := mf.GetMetric()[0]
	switch mf.GetType() {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	}
	require.FailNow(t, "unexpected metric type", "%s is a %s", name, mf.GetType())
	return 0
}

// labels returns the label pairs of m as a map.
func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestMetricsCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, nil, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
		reg.MustRegister(m.Collector())
	})

	// Scrape concurrently while the workflows run, for the race detector.
	stop := make(chan struct{})
	var scrapers sync.WaitGroup
	for range 4 {
		scrapers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := reg.Gather(); err != nil {
					t.Errorf("gather: %v", err) // not require: FailNow must run on the test goroutine
					return
				}
			}
		})
	}
	stopScrapers := sync.OnceFunc(func() { close(stop); scrapers.Wait() })
	defer stopScrapers() // if a require below fails first

	const n = 3
	for i := range n {
		require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{
			WorkflowID:   fmt.Sprintf("metrics-%d", i),
			InitialNodes: []graft.NodeConfig{{Name: "A"}},
			InitialState: map[string]any{"trail": []string{}},
		}))
	}
	for i := range n {
		waitStatus(t, b.m, fmt.Sprintf("metrics-%d", i), graft.WorkflowStateCompleted)
	}
	stopScrapers()

	// The histograms are fed by event handlers, which run asynchronously.
	var g gathered
	require.Eventually(t, func() bool {
		g = gather(t, reg)
		mf := g[graft.MetricStepDuration]
		wf := g[graft.MetricWorkflowDuration]
		if mf == nil || wf == nil {
			return false
		}
		for _, m := range mf.GetMetric() {
			if labels(m)[graft.LabelNodeName] == "A" && m.GetHistogram().GetSampleCount() >= n {
				return wf.GetMetric()[0].GetHistogram().GetSampleCount() >= n
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond, "step and workflow duration histograms never reached %d samples", n)

	require.Equal(t, float64(n), g.value(t, graft.MetricWorkflowsCompleted))
	require.GreaterOrEqual(t, g.value(t, graft.MetricStepsExecuted), float64(n))
	require.Zero(t, g.value(t, graft.MetricWorkflowsActive))
	require.Zero(t, g.value(t, graft.MetricWorkflowsFailed))
	require.Zero(t, g.value(t, graft.MetricWorkflowsStopped))
	require.Zero(t, g.value(t, graft.MetricStepErrors))
	require.Zero(t, g.value(t, graft.MetricStepsExecuting))
	require.Equal(t, float64(b.cfg.Cluster.ShardCount), g.value(t, graft.MetricShards))
	require.Equal(t, float64(b.cfg.Cluster.ShardCount), g.value(t, graft.MetricShardsLed))

	// The per-member series: a lone member's are its totals.
	for name, want := range map[string]float64{
		graft.MetricMemberWorkflowsStarted: n, graft.MetricMemberWorkflowsCompleted: n,
		graft.MetricMemberWorkflowsFailed: 0, graft.MetricMemberWorkflowsStopped: 0,
		graft.MetricMemberStepsExecuted: g.value(t, graft.MetricStepsExecuted), graft.MetricMemberStepErrors: 0,
		graft.MetricMemberStepsExecuting: 0, graft.MetricMemberStepsQueued: 0,
		graft.MetricMemberWorkerCapacity: float64(b.cfg.Engine.WorkerCount),
	} {
		require.Equal(t, want, g.value(t, name), name)
		require.Equal(t, "n1", labels(g[name].GetMetric()[0])[graft.LabelMember], name)
	}

	for _, name := range []string{
		graft.MetricWorkflowsActive, graft.MetricStepsQueued, graft.MetricStepsExecuting,
		graft.MetricWorkflowsBlocked, graft.MetricShards, graft.MetricShardsLed,
		graft.MetricWorkflowsCompleted, graft.MetricWorkflowsFailed, graft.MetricWorkflowsStopped,
		graft.MetricStepsExecuted, graft.MetricStepErrors, graft.MetricEventsDropped,
		graft.MetricStepDuration, graft.MetricWorkflowDuration,
	} {
		mf, ok := g[name]
		require.True(t, ok, "metric %s not gathered", name)
		for _, m := range mf.GetMetric() {
			require.Equal(t, "n1", labels(m)[graft.LabelNode], "node label of %s", name)
		}
	}

	// Equivalent to testutil.GatherAndLint, whose package needs a module
	// missing from go.sum.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)
}
