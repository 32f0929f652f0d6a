package member

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/engine"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is a lone member's configuration with graft's defaults, on a
// free loopback port and a temporary data directory.
func testConfig(t *testing.T) Config {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return Config{
		NodeID: "n1", BindAddr: addr, DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Cluster: ClusterConfig{ReplicationFactor: 3, FailureGrace: 30 * time.Second, BootstrapWait: 5 * time.Second, DefaultShardCount: 8},
		Engine: engine.Config{WorkerCount: 4, ClaimAhead: 64, MaxRetries: 3, RetryDelay: time.Second, MaxRetryDelay: 5 * time.Minute,
			BlockedTimeout: 5 * time.Minute, MaxStateBytes: 1 << 20, Retention: 7 * 24 * time.Hour, PurgeInterval: time.Minute,
			DrainTimeout: 30 * time.Second, LeaseDuration: 5 * time.Minute, BlockedRecheck: time.Second},
		RequestTimeout: 10 * time.Second, EventBufferSize: 4096,
		Expert: ExpertConfig{RTTMillisecond: 10, SnapshotEntries: 10000, CompactionOverhead: 5000, MinFreeDiskBytes: 64 << 20},
	}
}
