package graft_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// probe calls h at path and returns the status and body.
func probe(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(body)
}

// The probes follow a member through its life: live but not ready before
// Start, both once started (every check listed with ?verbose), not ready
// while its disk is full, and neither after Stop.
func TestHealthProbes(t *testing.T) {
	t.Parallel()
	cfg := graft.DefaultConfig("n1", freeAddr(t), t.TempDir())
	cfg.Logger = testLogger(t, "n1")
	cfg.Cluster.ShardCount = 2
	m := graft.NewWithConfig(cfg)
	livez, readyz := m.LivezHandler(), m.ReadyzHandler()

	code, _ := probe(t, livez, "/healthz")
	require.Equal(t, http.StatusOK, code, "live while starting")
	code, body := probe(t, readyz, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "[-]started failed: starting")
	require.Contains(t, body, "[-]storage failed: storage is not open")
	require.False(t, m.Health().Ready)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, 0))
	h := m.Health()
	require.True(t, h.Live)
	require.True(t, h.Ready, "%+v", h.Checks)
	require.Equal(t, graft.ReadinessReady, h.State)
	code, body = probe(t, readyz, "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = probe(t, readyz, "/readyz?verbose")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "[+]started ok\n[+]storage ok\n[+]disk ok\n[+]shards ok\nok\n", body)

	require.NoError(t, m.Stop())
	code, body = probe(t, livez, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "[-]live failed: member is stopped")
	code, _ = probe(t, readyz, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// A member whose disk is below its free-space floor is live but not ready,
// and says why.
func TestReadyzOnAFullDisk(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *graft.Config) { c.Expert.MinFreeDiskBytes = 1 << 62 }, nil)
	require.Eventually(t, func() bool { return b.m.GetReadinessState() == graft.ReadinessStorageFull },
		20*time.Second, 5*time.Millisecond)
	code, body := probe(t, b.m.ReadyzHandler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "[-]disk failed: free disk space is below Expert.MinFreeDiskBytes")
	code, _ = probe(t, b.m.LivezHandler(), "/healthz")
	require.Equal(t, http.StatusOK, code)
}
