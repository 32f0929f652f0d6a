package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// Many proposals falling due at once (the leases of a failed member's
// executions, the blocked checks of many workflows) cannot start a
// goroutine each: the number of goroutines stays bounded while their
// proposals wait on a slow store, and every proposal still commits once
// the store answers.
func TestManyProposalsKeepGoroutinesBounded(t *testing.T) {
	const n = 512
	const bound = 2 * proposers // extra goroutines allowed while n proposals wait
	tests := []struct {
		name string
		// arrange starts n workflows (the engine does not lead yet) and
		// returns a condition true once the engine has made its n proposals.
		arrange func(t *testing.T, b *testBundle) (proposed func() bool)
		// done reports whether workflow id shows its proposal committed.
		done func(v wf.View) bool
	}{
		{
			name: "lapsed leases",
			arrange: func(t *testing.T, b *testBundle) func() bool {
				for i := range n {
					// Claimed in the start command by a member that then
					// stops answering; its lease lapses in a minute.
					res, err := b.store.Apply(context.Background(), 1, &wf.Command{Op: wf.OpStart, WF: fmt.Sprintf("w%03d", i),
						Now: b.clock.Now().UnixNano(), State: []byte(`{}`), Tasks: []wf.NewTask{{Node: "Elsewhere", Claim: true}},
						Member: "n2", Incarnation: "run-9", LeaseUntil: b.clock.Now().Add(time.Minute).UnixNano()})
					require.NoError(t, err)
					require.Len(t, res.Claimed, 1)
				}
				return func() bool {
					b.clock.Advance(2 * time.Minute) // lapses every lease at once
					b.e.mu.Lock()
					defer b.e.mu.Unlock()
					return b.e.timers.Len() == 0
				}
			},
			done: func(v wf.View) bool { return len(v.Executing) == 0 && len(v.Pending) == 1 },
		},
		{
			name: "blocked workflows",
			arrange: func(t *testing.T, b *testBundle) func() bool {
				b.register(t, &gatedNode{name: "Gated", allow: new(atomic.Bool)})
				for i := range n {
					b.start(t, fmt.Sprintf("w%03d", i), wf.NewTask{Node: "Gated"})
				}
				return func() bool {
					b.e.mu.Lock()
					defer b.e.mu.Unlock()
					proposed := 0
					for _, w := range b.e.wfs {
						if w.blockProposed {
							proposed++
						}
					}
					return proposed == n
				}
			},
			done: func(v wf.View) bool { return v.BlockedSince != 0 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, func(c *Config) { c.skipStartup = false })
			proposed := tt.arrange(t, b)
			b.store.gate = make(chan struct{})
			base := runtime.NumGoroutine()
			b.lead(t)
			require.Eventually(t, proposed, 10*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return b.store.waiting.Load() > 0 }, 10*time.Second, 5*time.Millisecond)
			extra := runtime.NumGoroutine() - base
			require.LessOrEqual(t, extra, bound, "%d proposals started %d goroutines", n, extra)

			close(b.store.gate)
			require.Eventually(t, func() bool {
				views := b.store.logic.Active()
				for _, v := range views {
					if !tt.done(v) {
						return false
					}
				}
				return len(views) == n
			}, 10*time.Second, 5*time.Millisecond, "not every proposal committed")
		})
	}
}
