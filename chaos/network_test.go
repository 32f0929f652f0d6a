package chaos_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/chaos"
)

func TestPartition(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	n.Partition([]string{"a", "b"}, []string{"c"})
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"a", "b", true}, {"b", "a", true},
		{"a", "c", false}, {"c", "a", false}, {"b", "c", false},
		{"d", "e", true}, // unlisted endpoints form one implicit group
		{"a", "d", false}, {"d", "c", false},
		{"c", "c", true}, // self
	} {
		ok, d := n.Allowed(tc.from, tc.to)
		require.Equal(t, tc.ok, ok, "%s -> %s", tc.from, tc.to)
		require.Zero(t, d)
	}

	// A new partition replaces the old one.
	n.Partition([]string{"a"})
	ok, _ := n.Allowed("b", "c")
	require.True(t, ok)
	ok, _ = n.Allowed("a", "b")
	require.False(t, ok)

	n.Heal()
	ok, _ = n.Allowed("a", "b")
	require.True(t, ok)

	require.Panics(t, func() { n.Partition([]string{"a"}, []string{"a", "b"}) })
}

func TestIsolate(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	n.Isolate("b")
	n.Isolate("c")
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"a", "b", false}, {"b", "a", false}, {"b", "c", false},
		{"a", "d", true}, {"b", "b", true},
	} {
		ok, _ := n.Allowed(tc.from, tc.to)
		require.Equal(t, tc.ok, ok, "%s -> %s", tc.from, tc.to)
	}
	require.Equal(t, chaos.Stats{Sent: 2, Dropped: 3, Cut: 3}, n.Stats())

	n.Heal()
	ok, _ := n.Allowed("a", "b")
	require.True(t, ok)
}

// Reconnect ends one isolation and keeps the others and the partition.
func TestReconnect(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	n.Isolate("b")
	n.Isolate("c")
	n.Partition([]string{"a", "b"})
	n.Reconnect("b")
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"a", "b", true}, {"b", "a", true}, {"b", "c", false}, {"a", "c", false}, {"b", "d", false},
	} {
		ok, _ := n.Allowed(tc.from, tc.to)
		require.Equal(t, tc.ok, ok, "%s -> %s", tc.from, tc.to)
	}
}

func TestDropIsReproducible(t *testing.T) {
	t.Parallel()
	count := func(seed int64) uint64 {
		n := chaos.NewNetwork(seed)
		defer func() { require.NoError(t, n.Close()) }()
		n.Drop("a", "b", 0.3)
		for range 1000 {
			n.Allowed("a", "b")
			n.Allowed("b", "a") // no rule: never dropped, draws no randomness
		}
		s := n.Stats()
		require.Equal(t, uint64(2000), s.Sent+s.Dropped)
		require.Zero(t, s.Cut)
		return s.Dropped
	}
	first := count(42)
	require.Equal(t, first, count(42), "same seed, same drops")
	require.InDelta(t, 300, float64(first), 60)
}

func TestDropWildcardPrecedence(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	n.Drop(chaos.Wildcard, chaos.Wildcard, 1)
	n.Drop("a", "b", 0)
	ok, _ := n.Allowed("a", "b")
	require.True(t, ok, "exact rule beats (*, *)")
	ok, _ = n.Allowed("b", "a")
	require.False(t, ok, "drops are directional")

	n.Drop("c", chaos.Wildcard, 0)
	ok, _ = n.Allowed("c", "x")
	require.True(t, ok, "(from, *) beats (*, *)")
	n.Drop(chaos.Wildcard, "c", 0)
	ok, _ = n.Allowed("x", "c")
	require.True(t, ok, "(*, to) beats (*, *)")

	n.Heal()
	ok, _ = n.Allowed("b", "a")
	require.True(t, ok)

	require.Panics(t, func() { n.Drop("a", "b", 1.5) })
	require.Panics(t, func() { n.Drop("a", "b", -0.1) })
}

func TestDelay(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	n.Delay(chaos.Wildcard, chaos.Wildcard, 10*time.Millisecond)
	n.Delay("a", chaos.Wildcard, 50*time.Millisecond)
	ok, d := n.Allowed("a", "b")
	require.True(t, ok)
	require.Equal(t, 50*time.Millisecond, d)
	_, d = n.Allowed("b", "a")
	require.Equal(t, 10*time.Millisecond, d)
	require.Equal(t, chaos.Stats{Sent: 2, Delayed: 2}, n.Stats())

	n.Heal()
	_, d = n.Allowed("a", "b")
	require.Zero(t, d)
	require.Panics(t, func() { n.Delay("a", "b", -time.Second) })
}

func TestHooksPreSend(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	var seen []string
	n.SetHooks(chaos.Hooks{PreSend: func(from, to string, size int) bool {
		seen = append(seen, from+">"+to)
		return to != "x"
	}})
	ok, _ := n.Allowed("a", "x")
	require.False(t, ok)
	n.Isolate("b")
	ok, _ = n.Allowed("a", "b")
	require.False(t, ok)
	require.Equal(t, []string{"a>x", "a>b"}, seen, "PreSend sees every attempt")
	require.Equal(t, chaos.Stats{Dropped: 2, Cut: 1}, n.Stats())

	n.SetHooks(chaos.Hooks{})
	n.Heal()
	ok, _ = n.Allowed("a", "x")
	require.True(t, ok)
}

func TestIP(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)

	a, b := n.IP("a"), n.IP("b")
	require.Equal(t, "127.100.0.1", a.String())
	require.Equal(t, "127.100.0.2", b.String())
	require.Equal(t, a, n.IP("a"), "stable")
	require.Equal(t, "127.100.0.1:7946", n.MemberlistAddr("a"))
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	n := chaos.NewNetwork(1)
	l := n.Listen("a")
	tr := n.MemberlistTransport("a")
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	require.NoError(t, tr.Shutdown())
	require.NoError(t, l.Close())
	_, err := l.Accept()
	require.Error(t, err)
	_, err = tr.DialTimeout(n.MemberlistAddr("a"), time.Second)
	require.ErrorIs(t, err, chaos.ErrClosed)
}
