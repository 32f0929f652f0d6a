package engine

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/eleven-am/graft/executor"
	"github.com/stretchr/testify/require"
)

// testConfig returns a valid configuration for tests: one member, the
// given store, a registry and clock, and small resolved values.
func testConfig(store Store, reg *executor.Registry, clock Clock) Config {
	return Config{
		MemberID: "n1", Incarnation: "run-1", Registry: reg, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock,
		WorkerCount: 2, ClaimAhead: 64, MaxRetries: 3, RetryDelay: time.Second, MaxRetryDelay: 3 * time.Second,
		LeaseDuration: time.Minute, BlockedTimeout: 5 * time.Minute, BlockedRecheck: time.Second,
		Retention: time.Hour, PurgeInterval: time.Minute, DrainTimeout: 10 * time.Second,
	}
}

// New names the field of each invalid value, and fills in no defaults.
func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no member", func(c *Config) { c.MemberID = "" }, "MemberID is required"},
		{"no logger", func(c *Config) { c.Logger = nil }, "Logger is required"},
		{"no clock", func(c *Config) { c.Clock = nil }, "Clock is required"},
		{"zero workers", func(c *Config) { c.WorkerCount = 0 }, "WorkerCount (0) must be at least 1"},
		{"zero claim-ahead", func(c *Config) { c.ClaimAhead = 0 }, "ClaimAhead (0) must be at least 1"},
		{"negative retries", func(c *Config) { c.MaxRetries = -1 }, "MaxRetries (-1) must not be negative"},
		{"negative drain", func(c *Config) { c.DrainTimeout = -time.Second }, "DrainTimeout (-1s) must not be negative"},
		{"zero lease", func(c *Config) { c.LeaseDuration = 0 }, "LeaseDuration (0s) must be positive"},
		{"zero purge interval", func(c *Config) { c.PurgeInterval = 0 }, "PurgeInterval (0s) must be positive"},
		{"retry cap below base", func(c *Config) { c.MaxRetryDelay = c.RetryDelay / 2 },
			"MaxRetryDelay (500ms) must be equal or greater than RetryDelay (1s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(&recordingStore{}, executor.NewRegistry(), SystemClock{})
			cfg.skipStartup = true
			tt.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	cfg := testConfig(&recordingStore{}, executor.NewRegistry(), SystemClock{})
	cfg.skipStartup = true
	_, err := New(cfg)
	require.NoError(t, err)
}
