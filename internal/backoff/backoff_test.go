package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		n           int
		base, limit time.Duration
		want        time.Duration
	}{
		{1, ms, 50 * ms, ms},
		{2, ms, 50 * ms, 2 * ms},
		{6, ms, 50 * ms, 32 * ms},
		{7, ms, 50 * ms, 50 * ms},
		{1000, ms, 50 * ms, 50 * ms},
		{0, 10 * ms, 50 * ms, 10 * ms},
		{3, 10 * ms, ms, 10 * ms}, // limit below base
		{5, 0, 50 * ms, 0},
		{64, time.Hour, 365 * 24 * time.Hour, 365 * 24 * time.Hour}, // no overflow
	} {
		require.Equal(t, c.want, Delay(c.n, c.base, c.limit), "Delay(%d, %v, %v)", c.n, c.base, c.limit)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next())
	}
	require.Equal(t, []time.Duration{1e6, 2e6, 4e6, 4e6}, got)
	b.Reset()
	require.Equal(t, time.Millisecond, b.Next())
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
	require.NoError(t, Sleep(context.Background(), time.Microsecond))
}
