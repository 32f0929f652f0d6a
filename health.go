package graft

import (
	"fmt"
	"net/http"
	"strings"
)

// HealthCheck is one named check of a member's health.
type HealthCheck struct {
	// Name is the check's name:
	//   - "started": Start succeeded (the member is "ready" or
	//     "storage-full");
	//   - "storage": the data directory's storage is open, and no write
	//     to it failed (see ReadinessStorageFailed);
	//   - "disk": free disk space is above Expert.MinFreeDiskBytes;
	//   - "shards": every shard this member holds a replica of has a
	//     known Raft leader (here or on another member).
	Name string
	// OK reports whether the check passes.
	OK bool
	// Detail says why the check fails, or what it saw when it passes.
	Detail string
}

// Health is a member's health, as Kubernetes probes want it.
type Health struct {
	// Live is false once the member stopped, its Start failed, or its
	// storage failed: the process should be restarted. It is true while
	// starting.
	Live bool
	// Ready is true when every check passes: StartWorkflow can succeed
	// on this member.
	Ready bool
	// State is GetReadinessState's answer.
	State string
	// Checks are the readiness checks, in a fixed order.
	Checks []HealthCheck
}

// Health returns the member's health: whether it is live and whether it is
// ready, with each readiness check and why it fails. It is cheap (no I/O
// beyond reading Raft's in-memory leader of each shard held here).
func (m *Manager) Health() Health {
	h := m.member.Health()
	out := Health{Live: h.Live, Ready: h.Ready, State: h.State, Checks: make([]HealthCheck, len(h.Checks))}
	for i, c := range h.Checks {
		out.Checks[i] = HealthCheck(c)
	}
	return out
}

// LivezHandler returns an http.Handler for a liveness probe (mount it at
// /healthz or /livez): 200 "ok" while the process's member is live
// (starting, running, or with a full disk), 503 once it stopped, its Start
// failed or its storage failed.
func (m *Manager) LivezHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := m.Health()
		writeProbe(w, r, []HealthCheck{{Name: "live", OK: h.Live, Detail: "member is " + h.State}})
	})
}

// ReadyzHandler returns an http.Handler for a readiness probe (mount it at
// /readyz): 200 "ok" when StartWorkflow can succeed on this member (Health's
// checks all pass), 503 otherwise, naming the failed checks. As in
// Kubernetes' own endpoints, "?verbose" lists every check.
func (m *Manager) ReadyzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProbe(w, r, m.Health().Checks)
	})
}

// writeProbe answers a probe in Kubernetes' format: "[+]name ok" and
// "[-]name failed: reason" lines (all of them with ?verbose, the failed
// ones otherwise), then "ok" with status 200 or "health check failed" with
// 503.
func writeProbe(w http.ResponseWriter, r *http.Request, checks []HealthCheck) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, verbose := r.URL.Query()["verbose"]
	var b strings.Builder
	failed := false
	for _, c := range checks {
		failed = failed || !c.OK
		switch {
		case !c.OK:
			fmt.Fprintf(&b, "[-]%s failed: %s\n", c.Name, c.Detail)
		case verbose:
			fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
		}
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("health check failed\n")
	} else {
		b.WriteString("ok\n")
	}
	_, _ = w.Write([]byte(b.String()))
}
