package events

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// deadline bounds every wait in these tests. It is generous on purpose: it
// only turns a hang into a failure and is never a performance assertion.
const deadline = 10 * time.Second

type testBundle struct {
	bus   *Bus
	logs  *logRecorder
	clock *fakeClock
}

// setup returns a Bus that logs into a recorder and uses a frozen clock. The
// Bus is closed when the test ends.
func setup(t *testing.T, bufferSize int) *testBundle {
	t.Helper()
	logs := &logRecorder{}
	clock := &fakeClock{}
	clock.now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	bus := NewBus(Options{
		Logger:     slog.New(logs),
		BufferSize: bufferSize,
		now:        clock.Now,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		require.NoError(t, bus.Close(ctx))
	})
	return &testBundle{bus: bus, logs: logs, clock: clock}
}

// closeBus closes the bus and fails the test if that takes too long.
func closeBus(t *testing.T, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, b.Close(ctx))
}

// wait blocks until ch is closed or yields a value.
func wait[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		require.FailNow(t, "timed out waiting for "+what)
	}
}

// gate returns a channel for handlers to block on and an idempotent func
// that closes it. It is also closed when the test ends, before the Bus from
// setup is closed, so handlers blocked on it never leak.
func gate(t *testing.T) (<-chan struct{}, func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// recorder collects values handed to a handler.
type recorder[T any] struct {
	mu  sync.Mutex
	got []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, v)
}

func (r *recorder[T]) list() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.got...)
}

type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// at returns the records logged at level.
func (h *logRecorder) at(level slog.Level) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Level == level {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

func TestSubscribeDeliversOnlyMatchingType(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)

	var started recorder[*WorkflowStartedEvent]
	var joined recorder[*NodeJoinedEvent]
	var all recorder[any]
	Subscribe(tb.bus, func(ev *WorkflowStartedEvent) { started.add(ev) })
	Subscribe(tb.bus, func(ev *NodeJoinedEvent) { joined.add(ev) })
	tb.bus.SubscribeAll(func(ev any) { all.add(ev) })

	ws1 := &WorkflowStartedEvent{WorkflowID: "wf-1"}
	nj1 := &NodeJoinedEvent{NodeID: "n1"}
	done := &WorkflowCompletedEvent{WorkflowID: "wf-1"}
	ws2 := &WorkflowStartedEvent{WorkflowID: "wf-2"}
	shard := &ShardLeaderChangedEvent{ShardID: 7, LeaderNodeID: "n1", Term: 3}
	for _, ev := range []any{ws1, nj1, done, ws2, shard} {
		tb.bus.Publish(ev)
	}
	// A value, not a pointer, never matches Subscribe[T]; nil is ignored.
	tb.bus.Publish(WorkflowStartedEvent{WorkflowID: "by-value"})
	tb.bus.Publish(nil)

	closeBus(t, tb.bus)

	require.Equal(t, []*WorkflowStartedEvent{ws1, ws2}, started.list())
	require.Equal(t, []*NodeJoinedEvent{nj1}, joined.list())
	require.Equal(t, []any{ws1, nj1, done, ws2, shard, WorkflowStartedEvent{WorkflowID: "by-value"}}, all.list())
	require.Zero(t, tb.bus.Dropped())
}

func TestDeliveryOrderPerSubscriber(t *testing.T) {
	t.Parallel()
	const n = 2000
	tb := setup(t, n)

	type seqEvent struct{ Seq int }
	subs := make([]*recorder[int], 3)
	for i := range subs {
		subs[i] = &recorder[int]{}
		rec := subs[i]
		Subscribe(tb.bus, func(ev *seqEvent) { rec.add(ev.Seq) })
	}
	var all recorder[int]
	tb.bus.SubscribeAll(func(ev any) { all.add(ev.(*seqEvent).Seq) })

	want := make([]int, n)
	for i := range n {
		want[i] = i
		tb.bus.Publish(&seqEvent{Seq: i})
	}
	closeBus(t, tb.bus)

	for i, rec := range subs {
		require.Equal(t, want, rec.list(), "subscriber %d", i)
	}
	require.Equal(t, want, all.list())
	require.Zero(t, tb.bus.Dropped())
}

func TestSlowSubscriberDoesNotBlockPublish(t *testing.T) {
	t.Parallel()
	const buffer = 16
	tb := setup(t, buffer)
	blocked, _ := gate(t)

	entered := make(chan struct{})
	var calls atomic.Int64
	Subscribe(tb.bus, func(*NodeStartedEvent) {
		if calls.Add(1) == 1 {
			close(entered)
			<-blocked // blocks until the test ends
		}
	})

	// Park the handler on the first event so the buffer state is exact.
	tb.bus.Publish(&NodeStartedEvent{})
	wait(t, entered, "handler to start")

	published := make(chan struct{})
	go func() {
		defer close(published)
		for range 10*buffer - 1 {
			tb.bus.Publish(&NodeStartedEvent{})
		}
	}()
	wait(t, published, "Publish to return while a handler is blocked")

	// One event is in the handler, buffer events are queued, the rest dropped.
	require.Equal(t, uint64(10*buffer-1-buffer), tb.bus.Dropped())

	warnings := tb.logs.at(slog.LevelWarn)
	require.Len(t, warnings, 1, "drop warnings are rate limited per subscriber")
	require.Equal(t, uint64(1), attr(warnings[0], logKeyDropped).Uint64())
	require.Equal(t, "*events.NodeStartedEvent", attr(warnings[0], logKeyEventType).String())
	require.Contains(t, attr(warnings[0], logKeyHandler).String(), "TestSlowSubscriberDoesNotBlockPublish")

	// Within the same second: counted, not logged.
	tb.bus.Publish(&NodeStartedEvent{})
	require.Len(t, tb.logs.at(slog.LevelWarn), 1)

	// A second later the next drop is logged again, with the running total.
	tb.clock.Advance(time.Second)
	tb.bus.Publish(&NodeStartedEvent{})
	warnings = tb.logs.at(slog.LevelWarn)
	require.Len(t, warnings, 2)
	require.Equal(t, uint64(10*buffer-1-buffer+2), attr(warnings[1], logKeyDropped).Uint64())
	require.Equal(t, uint64(10*buffer-1-buffer+2), tb.bus.Dropped())
}

func TestDropsAreCountedPerSubscriber(t *testing.T) {
	t.Parallel()
	tb := setup(t, 1)
	blocked, _ := gate(t)

	entered := make(chan struct{}, 2)
	for range 2 {
		tb.bus.SubscribeAll(func(any) {
			entered <- struct{}{}
			<-blocked
		})
	}
	tb.bus.Publish(&WorkflowPausedEvent{})
	wait(t, entered, "first handler")
	wait(t, entered, "second handler")

	tb.bus.Publish(&WorkflowPausedEvent{}) // buffered by both
	tb.bus.Publish(&WorkflowPausedEvent{}) // dropped by both
	require.Equal(t, uint64(2), tb.bus.Dropped())
	require.Len(t, tb.logs.at(slog.LevelWarn), 2, "one warning per subscriber")
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)

	var got recorder[string]
	Subscribe(tb.bus, func(ev *WorkflowErrorEvent) {
		if ev.WorkflowID == "boom" {
			panic("handler exploded")
		}
		got.add(ev.WorkflowID)
	})
	tb.bus.Publish(&WorkflowErrorEvent{WorkflowID: "before"})
	tb.bus.Publish(&WorkflowErrorEvent{WorkflowID: "boom"})
	tb.bus.Publish(&WorkflowErrorEvent{WorkflowID: "after"})
	closeBus(t, tb.bus)

	require.Equal(t, []string{"before", "after"}, got.list())
	errs := tb.logs.at(slog.LevelError)
	require.Len(t, errs, 1)
	require.Equal(t, "handler exploded", attr(errs[0], logKeyPanic).String())
	require.Contains(t, attr(errs[0], logKeyStack).String(), "TestHandlerPanicIsRecovered")
}

func TestHandlerGoexitUnregistersSubscriber(t *testing.T) {
	t.Parallel()
	tb := setup(t, 1)

	exited := make(chan struct{})
	Subscribe(tb.bus, func(*NodeLeftEvent) {
		close(exited)
		runtime.Goexit() // what t.FailNow inside a handler would do
	})
	tb.bus.Publish(&NodeLeftEvent{})
	wait(t, exited, "handler")
	require.Eventually(t, func() bool {
		tb.bus.mu.Lock()
		defer tb.bus.mu.Unlock()
		return len(tb.bus.live) == 0
	}, deadline, time.Millisecond)

	// The dead subscriber no longer fills up and drops.
	for range 10 {
		tb.bus.Publish(&NodeLeftEvent{})
	}
	require.Zero(t, tb.bus.Dropped())
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)

	got := make(chan string, 100)
	unsubscribe := Subscribe(tb.bus, func(ev *LeaderChangedEvent) { got <- ev.NewLeaderID })
	var all atomic.Int64
	unsubscribeAll := tb.bus.SubscribeAll(func(any) { all.Add(1) })

	tb.bus.Publish(&LeaderChangedEvent{NewLeaderID: "n1"})
	wait(t, got, "first event")
	unsubscribe()
	unsubscribe() // idempotent
	require.Eventually(t, func() bool { return all.Load() == 1 }, deadline, time.Millisecond)
	unsubscribeAll()

	for range 100 {
		tb.bus.Publish(&LeaderChangedEvent{NewLeaderID: "n2"})
	}
	closeBus(t, tb.bus) // waits for every subscriber goroutine to exit
	require.Empty(t, got)
	require.Equal(t, int64(1), all.Load())
	unsubscribe() // still safe after Close
}

func TestUnsubscribeFromHandler(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)

	var calls atomic.Int64
	var unsubscribe func()
	ready := make(chan struct{})
	unsubscribe = Subscribe(tb.bus, func(*WorkflowResumedEvent) {
		<-ready
		calls.Add(1)
		unsubscribe()
	})
	close(ready)
	for range 10 {
		tb.bus.Publish(&WorkflowResumedEvent{})
	}
	closeBus(t, tb.bus)
	require.Equal(t, int64(1), calls.Load())
}

func TestHandlerMayPublishAndSubscribe(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)

	completed := make(chan *NodeCompletedEvent, 1)
	Subscribe(tb.bus, func(ev *NodeStartedEvent) {
		Subscribe(tb.bus, func(ev *NodeCompletedEvent) { completed <- ev })
		tb.bus.Publish(&NodeCompletedEvent{NodeName: ev.NodeName})
	})
	tb.bus.Publish(&NodeStartedEvent{NodeName: "charge"})

	select {
	case ev := <-completed:
		require.Equal(t, "charge", ev.NodeName)
	case <-time.After(deadline):
		require.FailNow(t, "timed out waiting for chained event")
	}
}

func TestCloseDeliversBufferedEvents(t *testing.T) {
	t.Parallel()
	const n = 500
	tb := setup(t, n)
	blocked, release := gate(t)

	var got atomic.Int64
	entered := make(chan struct{})
	Subscribe(tb.bus, func(ev *WorkflowStoppedEvent) {
		if got.Add(1) == 1 {
			close(entered)
			<-blocked
		}
	})
	for range n {
		tb.bus.Publish(&WorkflowStoppedEvent{})
	}
	wait(t, entered, "handler to start")

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		closed <- tb.bus.Close(ctx)
	}()
	// Close has begun while n-1 events are still buffered.
	require.Eventually(t, func() bool {
		tb.bus.mu.Lock()
		defer tb.bus.mu.Unlock()
		return tb.bus.closed
	}, deadline, time.Millisecond)
	release()

	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(deadline):
		require.FailNow(t, "timed out waiting for Close")
	}
	require.Equal(t, int64(n), got.Load())
	require.Zero(t, tb.bus.Dropped())
}

func TestCloseReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	const n = 100
	tb := setup(t, n)
	blocked, release := gate(t)

	var got atomic.Int64
	entered := make(chan struct{})
	Subscribe(tb.bus, func(*NodeErrorEvent) {
		if got.Add(1) == 1 {
			close(entered)
			<-blocked
		}
	})
	for range n {
		tb.bus.Publish(&NodeErrorEvent{})
	}
	wait(t, entered, "handler to start")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tb.bus.Close(ctx)
	require.ErrorIs(t, err, context.Canceled)

	// Once the handler returns, the goroutine exits without delivering the
	// rest of its buffer, and a second Close succeeds.
	release()
	closeBus(t, tb.bus)
	require.Equal(t, int64(1), got.Load())
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)
	for range 4 {
		Subscribe(tb.bus, func(*WorkflowStartedEvent) {})
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { closeBus(t, tb.bus) })
	}
	wg.Wait()
	closeBus(t, tb.bus)
}

func TestPublishAndSubscribeAfterClose(t *testing.T) {
	t.Parallel()
	tb := setup(t, 1)
	var calls atomic.Int64
	Subscribe(tb.bus, func(*NodeJoinedEvent) { calls.Add(1) })
	closeBus(t, tb.bus)

	for range 10 {
		tb.bus.Publish(&NodeJoinedEvent{})
	}
	unsubscribe := Subscribe(tb.bus, func(*NodeJoinedEvent) { calls.Add(1) })
	unsubscribeAll := tb.bus.SubscribeAll(func(any) { calls.Add(1) })
	tb.bus.Publish(&NodeJoinedEvent{})
	unsubscribe()
	unsubscribeAll()

	require.Zero(t, calls.Load())
	require.Zero(t, tb.bus.Dropped())
	tb.bus.mu.Lock()
	defer tb.bus.mu.Unlock()
	require.Empty(t, tb.bus.live, "no goroutine started after Close")
}

func TestNilHandlerPanics(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)
	require.PanicsWithValue(t, "events: Subscribe with nil handler", func() {
		Subscribe[WorkflowStartedEvent](tb.bus, nil)
	})
	require.PanicsWithValue(t, "events: SubscribeAll with nil handler", func() {
		tb.bus.SubscribeAll(nil)
	})
}

func TestNewBusDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		size int
		want int
	}{
		{"zero uses default", 0, DefaultBufferSize},
		{"negative uses default", -1, DefaultBufferSize},
		{"explicit", 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := NewBus(Options{BufferSize: tc.size})
			require.Equal(t, tc.want, b.bufferSize)
			require.NotNil(t, b.logger)
			closeBus(t, b)
		})
	}
}

func TestConcurrentPublishSubscribeUnsubscribe(t *testing.T) {
	t.Parallel()
	tb := setup(t, 64)

	var wg sync.WaitGroup
	var delivered atomic.Int64
	halfway := make(chan struct{})
	for p := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if p == 0 && i == 1000 {
					close(halfway)
				}
				if i%2 == 0 {
					tb.bus.Publish(&NodeCompletedEvent{NodeName: fmt.Sprint(p)})
				} else {
					tb.bus.Publish(&NodeJoinedEvent{NodeID: fmt.Sprint(p)})
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				var unsubscribe func()
				switch i % 3 {
				case 0:
					unsubscribe = Subscribe(tb.bus, func(*NodeCompletedEvent) { delivered.Add(1) })
				case 1:
					unsubscribe = Subscribe(tb.bus, func(*NodeJoinedEvent) { delivered.Add(1) })
				default:
					unsubscribe = tb.bus.SubscribeAll(func(any) { delivered.Add(1) })
				}
				if i%5 != 0 {
					unsubscribe()
				}
			}
		})
	}
	// One Close races with everything above; the cleanup Close waits again.
	wg.Go(func() {
		<-halfway
		closeBus(t, tb.bus)
	})
	wg.Wait()

	tb.bus.Publish(&NodeJoinedEvent{})
	closeBus(t, tb.bus)
	tb.bus.mu.Lock()
	defer tb.bus.mu.Unlock()
	require.Empty(t, tb.bus.live)
	require.Empty(t, tb.bus.subs.Load().all)
	require.Empty(t, tb.bus.subs.Load().byType)
}

func TestLogsIdentifySubscriber(t *testing.T) {
	t.Parallel()
	tb := setup(t, 0)
	tb.bus.SubscribeAll(func(any) { panic(fmt.Errorf("wrapped: %w", context.Canceled)) })
	tb.bus.Publish(&WorkflowStartedEvent{})
	closeBus(t, tb.bus)

	errs := tb.logs.at(slog.LevelError)
	require.Len(t, errs, 1)
	require.Equal(t, subscribeAllType, attr(errs[0], logKeyEventType).String())
	require.Equal(t, "wrapped: context canceled", attr(errs[0], logKeyPanic).String())
	require.True(t, strings.HasPrefix(attr(errs[0], logKeyHandler).String(), "github.com/eleven-am/graft/events."))
}

// BenchmarkPublish measures Publish with one subscriber. "keeping-up" lets
// the subscriber drain its buffer between batches (timer stopped), so every
// Publish enqueues. "saturated" publishes in a tight loop, so most Publish
// calls take the drop path.
func BenchmarkPublish(b *testing.B) {
	ev := &NodeCompletedEvent{WorkflowID: "wf-1", NodeName: "step"}
	newBus := func(b *testing.B) (*Bus, *atomic.Int64) {
		bus := NewBus(Options{Logger: slog.New(slog.DiscardHandler)})
		var delivered atomic.Int64
		Subscribe(bus, func(*NodeCompletedEvent) { delivered.Add(1) })
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			require.NoError(b, bus.Close(ctx))
		})
		return bus, &delivered
	}

	b.Run("keeping-up", func(b *testing.B) {
		bus, delivered := newBus(b)
		b.ReportAllocs()
		var published int64
		for b.Loop() {
			bus.Publish(ev)
			published++
			if published%DefaultBufferSize == 0 {
				b.StopTimer()
				for delivered.Load() < published {
					runtime.Gosched()
				}
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(bus.Dropped())/float64(b.N), "drops/op")
	})

	b.Run("saturated", func(b *testing.B) {
		bus, _ := newBus(b)
		b.ReportAllocs()
		for b.Loop() {
			bus.Publish(ev)
		}
		b.ReportMetric(float64(bus.Dropped())/float64(b.N), "drops/op")
	})
}
