// Package backoff is the module's one retry-delay policy: exponential
// delays from a minimum, doubling up to a maximum, and a wait that ends
// early with its context. Every retry loop in Graft (storage waiting for a
// leader, gossip joins, forwarded calls, bootstrap, step retries) takes its
// delays from here. It imports only the standard library.
package backoff

import (
	"context"
	"time"
)

// Delay returns the nth delay (n counts from 1) of an exponential backoff
// that starts at base and doubles up to limit: base, 2·base, 4·base, …,
// limit. A limit below base is taken as base; n below 1 as 1.
func Delay(n int, base, limit time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	limit = max(limit, base)
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Backoff yields the delays of one retry loop. The zero value is not
// useful; set Min and Max. It is not safe for concurrent use.
type Backoff struct {
	// Min is the first delay; Max caps them.
	Min, Max time.Duration
	n        int
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	b.n++
	return Delay(b.n, b.Min, b.Max)
}

// Reset starts the delays from Min again.
func (b *Backoff) Reset() { b.n = 0 }

// Wait sleeps for the next delay, or until ctx ends; it returns ctx's
// error if ctx ended first.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits d, or until ctx ends; it returns ctx's error if ctx ended
// first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
