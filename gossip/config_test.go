package gossip

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"missing NodeID", func(c *Config) { c.NodeID = "" }, "NodeID is required"},
		{"long NodeID", func(c *Config) { c.NodeID = string(bytes.Repeat([]byte("a"), MaxNodeIDLen+1)) }, "NodeID is 129 bytes"},
		{"slash in NodeID", func(c *Config) { c.NodeID = "a/b" }, "NodeID \"a/b\""},
		{"bad BindAddr", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr \"localhost\""},
		{"bad AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "x" }, "AdvertiseAddr"},
		{"bad BindPort", func(c *Config) { c.BindPort = 70000 }, "BindPort (70000)"},
		{"bad key length", func(c *Config) { c.Key = []byte("short") }, "Key is 5 bytes"},
		{"restricted without key", func(c *Config) { c.Policy = Restricted }, "Key is required when Policy is restricted"},
		{"restricted with key", func(c *Config) { c.Policy = Restricted; c.Key = key }, ""},
		{"strict without list", func(c *Config) { c.Policy = Strict; c.Key = key }, "AllowedNodes is required"},
		{"strict without key", func(c *Config) { c.Policy = Strict; c.AllowedNodes = []string{"n1"} }, "Key is required when Policy is strict"},
		{"strict without self", func(c *Config) { c.Policy = Strict; c.Key = key; c.AllowedNodes = []string{"n2"} }, "must include this member's NodeID \"n1\""},
		{"strict ok", func(c *Config) { c.Policy = Strict; c.Key = key; c.AllowedNodes = []string{"n1", "n2"} }, ""},
		{"unknown policy", func(c *Config) { c.Policy = 9 }, "Policy (9) is unknown"},
		{"nil discoverer", func(c *Config) { c.Discovery = []Discoverer{nil} }, "Discovery[0] is nil"},
		{"negative rejoin", func(c *Config) { c.RejoinInterval = -time.Second }, "RejoinInterval (-1s) must not be negative"},
		{"retry max below min", func(c *Config) { c.JoinRetryMin = time.Second; c.JoinRetryMax = time.Millisecond },
			"JoinRetryMax (1ms) must be equal or greater than JoinRetryMin (1s)"},
		{"retry max below default min", func(c *Config) { c.JoinRetryMax = time.Millisecond }, "JoinRetryMax (1ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{NodeID: "n1"}
			tt.mutate(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
		})
	}
}

func TestNewDoesNotMutateConfig(t *testing.T) {
	t.Parallel()
	tags := map[string]string{"a": "1"}
	cfg := Config{NodeID: "n1", Tags: tags}
	n, err := New(cfg)
	require.NoError(t, err)
	require.Empty(t, cfg.BindAddr)
	require.Zero(t, cfg.RejoinInterval)
	tags["a"] = "2"
	require.Equal(t, "1", n.cfg.Tags["a"])
	require.Equal(t, DefaultRejoinInterval, n.cfg.RejoinInterval)
	require.Equal(t, DefaultJoinRetryMin, n.cfg.JoinRetryMin)
	require.Equal(t, DefaultJoinRetryMax, n.cfg.JoinRetryMax)
	require.NoError(t, n.Stop())
}

func TestStrings(t *testing.T) {
	t.Parallel()
	require.Equal(t, "open", Open.String())
	require.Equal(t, "restricted", Restricted.String())
	require.Equal(t, "strict", Strict.String())
	require.Equal(t, "policy(7)", Policy(7).String())
	for k, s := range map[EventKind]string{EventJoin: "join", EventLeave: "leave", EventFailed: "failed", EventUpdate: "update", EventReap: "reap", 0: "event(0)"} {
		require.Equal(t, s, k.String())
	}
	for st, s := range map[MemberStatus]string{StatusAlive: "alive", StatusLeaving: "leaving", StatusLeft: "left", StatusFailed: "failed", StatusUnknown: "unknown"} {
		require.Equal(t, s, st.String())
	}
}
