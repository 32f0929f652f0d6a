package events

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft/internal/logkeys"
)

// DefaultBufferSize is the number of events each subscriber can have waiting
// before new events are dropped for it, used when Options.BufferSize is zero.
const DefaultBufferSize = 4096

// dropWarnInterval is the minimum time between two "falling behind" warnings
// for the same subscriber.
const dropWarnInterval = time.Second

// Log attribute keys.
const (
	logKeyComponent  = logkeys.Component
	logKeySubscriber = "graft.events.subscriber"
	logKeyEventType  = "graft.events.type"
	logKeyHandler    = "graft.events.handler"
	logKeyDropped    = "graft.events.dropped"
	logKeyBufferSize = "graft.events.buffer_size"
	logKeyPanic      = "graft.events.panic"
	logKeyStack      = "graft.events.stack"
)

// subscribeAllType is logged as the event type of SubscribeAll subscribers.
const subscribeAllType = "*"

// Options configures a Bus. The zero value is ready to use.
type Options struct {
	// Logger receives drop warnings and handler panics. Nil means
	// slog.Default().
	Logger *slog.Logger
	// BufferSize is how many events each subscriber can have waiting before
	// new events are dropped for it. Zero means DefaultBufferSize (4096).
	// Negative values are treated as zero.
	BufferSize int

	// now replaces time.Now for rate-limiting drop warnings. Tests only.
	now func() time.Time
}

// Bus delivers events from publishers to subscribers in the same process.
// See the package documentation for the delivery guarantee.
//
// All methods are safe for concurrent use. Publish never blocks.
type Bus struct {
	logger     *slog.Logger
	bufferSize int
	now        func() time.Time

	// subs is the copy-on-write subscriber set read by Publish. Writers hold
	// mu, build a new set and swap it in. After Close it holds an empty set.
	subs atomic.Pointer[subscriberSet]

	dropped atomic.Uint64

	// closing is closed by Close. Subscribers deliver what is buffered and
	// exit.
	closing chan struct{}
	// abort is closed when a Close context ends. Subscribers exit after
	// their current handler call and discard what is buffered.
	abort     chan struct{}
	abortOnce sync.Once

	mu     sync.Mutex
	closed bool
	nextID uint64
	// live holds every subscriber whose goroutine has not exited yet,
	// including unsubscribed ones that are still finishing a handler call.
	live map[*subscriber]struct{}
	// wg tracks subscriber goroutines. Close first waits on the exited
	// channels of live subscribers, which honours its context, and only then
	// on wg.
	wg sync.WaitGroup
}

// subscriberSet is an immutable snapshot of the subscribers.
type subscriberSet struct {
	byType map[reflect.Type][]*subscriber
	all    []*subscriber
}

type subscriber struct {
	id      uint64
	typ     reflect.Type // nil for SubscribeAll
	handler string       // handler function name, for logs
	fn      func(any)
	ch      chan any

	// stop is closed by unsubscribe. ch is never closed, so a Publish racing
	// with unsubscribe cannot panic.
	stop     chan struct{}
	stopOnce sync.Once
	// exited is closed when the goroutine returns.
	exited chan struct{}

	dropped  atomic.Uint64
	lastWarn atomic.Int64 // UnixNano of the last drop warning; 0 if none
}

// NewBus returns a Bus configured by opts. The Bus starts no goroutines
// until the first subscription. Call Close to stop them.
func NewBus(opts Options) *Bus {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	bufferSize := opts.BufferSize
	if bufferSize <= 0 {
		bufferSize = DefaultBufferSize
	}
	now := opts.now
	if now == nil {
		now = time.Now
	}
	b := &Bus{
		logger:     logger.With(logKeyComponent, "events"),
		bufferSize: bufferSize,
		now:        now,
		closing:    make(chan struct{}),
		abort:      make(chan struct{}),
		live:       make(map[*subscriber]struct{}),
	}
	b.subs.Store(&subscriberSet{})
	return b
}

// Subscribe registers fn to be called with every published event of type *T.
// Events of other types are not delivered to fn.
//
// fn runs on a goroutine owned by this subscription, one event at a time, in
// publish order. Subscribe is safe to call concurrently with Publish. It
// panics if fn is nil.
//
// The returned function unsubscribes. It is idempotent and does not wait: a
// handler call already in progress finishes, events still buffered are
// discarded, and no later events are delivered. If the Bus is already closed,
// Subscribe does nothing and returns a no-op function.
func Subscribe[T any](b *Bus, fn func(*T)) (unsubscribe func()) {
	if fn == nil {
		panic("events: Subscribe with nil handler")
	}
	return b.subscribe(reflect.TypeFor[*T](), funcName(fn), func(ev any) { fn(ev.(*T)) })
}

// SubscribeAll registers fn to be called with every published event,
// whatever its type. The argument is the value given to Publish, normally a
// pointer to one of the event types in this package. It is meant for metrics
// adapters, loggers and tests.
//
// Delivery, ordering and unsubscribing work as for Subscribe. It panics if fn
// is nil.
func (b *Bus) SubscribeAll(fn func(any)) (unsubscribe func()) {
	if fn == nil {
		panic("events: SubscribeAll with nil handler")
	}
	return b.subscribe(nil, funcName(fn), fn)
}

func (b *Bus) subscribe(typ reflect.Type, handler string, fn func(any)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return func() {}
	}
	b.nextID++
	s := &subscriber{
		id:      b.nextID,
		typ:     typ,
		handler: handler,
		fn:      fn,
		ch:      make(chan any, b.bufferSize),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	b.subs.Store(b.subs.Load().with(s))
	b.live[s] = struct{}{}
	b.wg.Go(func() { b.run(s) })
	return func() { b.unsubscribe(s) }
}

func (b *Bus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	b.subs.Store(b.subs.Load().without(s))
	b.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
}

// Publish delivers ev to every subscriber registered for its type and to
// every SubscribeAll subscriber. ev should be a pointer to an event struct:
// Subscribe[T] matches exactly the type *T. All subscribers receive the same
// pointer, so neither the publisher nor handlers may modify the event after
// Publish.
//
// Publish never blocks. If a subscriber's buffer is full, the event is
// dropped for that subscriber and counted in Dropped. Publish with a nil ev,
// or after Close, does nothing.
func (b *Bus) Publish(ev any) {
	if ev == nil {
		return
	}
	set := b.subs.Load()
	if len(set.byType) > 0 {
		for _, s := range set.byType[reflect.TypeOf(ev)] {
			b.send(s, ev)
		}
	}
	for _, s := range set.all {
		b.send(s, ev)
	}
}

func (b *Bus) send(s *subscriber, ev any) {
	select {
	case s.ch <- ev:
		return
	default:
	}
	b.dropped.Add(1)
	total := s.dropped.Add(1)

	now := b.now().UnixNano()
	last := s.lastWarn.Load()
	if last != 0 && now-last < int64(dropWarnInterval) {
		return
	}
	if !s.lastWarn.CompareAndSwap(last, now) {
		return // another Publish is logging this warning
	}
	b.logger.Warn("events: subscriber is falling behind, dropping events",
		logKeySubscriber, s.id,
		logKeyEventType, s.typeName(),
		logKeyHandler, s.handler,
		logKeyDropped, total,
		logKeyBufferSize, cap(s.ch),
	)
}

// Dropped returns how many deliveries have been dropped since the Bus was
// created because a subscriber's buffer was full. An event dropped for three
// subscribers counts three times.
func (b *Bus) Dropped() uint64 {
	return b.dropped.Load()
}

// Close stops the Bus. Publish becomes a no-op and Subscribe returns a no-op
// function. Each subscriber delivers the events already in its buffer and
// then its goroutine exits. Close waits for all subscriber goroutines,
// including unsubscribed ones still finishing a handler call.
//
// If ctx ends first, Close returns an error wrapping ctx.Err(). Subscribers
// then discard their buffers and exit as soon as their current handler call
// returns. A handler that never returns keeps its goroutine alive.
//
// Close is idempotent. A later call waits again, with its own ctx, for any
// goroutines still running. Do not call Close from a handler: Close waits for
// handlers, so it would block until ctx ends.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		b.subs.Store(&subscriberSet{})
		close(b.closing)
	}
	live := make([]*subscriber, 0, len(b.live))
	for s := range b.live {
		live = append(live, s)
	}
	b.mu.Unlock()

	for _, s := range live {
		select {
		case <-s.exited:
		case <-ctx.Done():
			b.abortOnce.Do(func() { close(b.abort) })
			return fmt.Errorf("closing event bus: %w", ctx.Err())
		}
	}
	// Every goroutine has closed its exited channel and is only returning.
	b.wg.Wait()
	return nil
}

// run is the subscriber's goroutine.
func (b *Bus) run(s *subscriber) {
	defer b.exit(s)
	for {
		select {
		case ev := <-s.ch:
			if b.stopped(s) {
				return
			}
			b.deliver(s, ev)
		case <-s.stop:
			return
		case <-b.abort:
			return
		case <-b.closing:
			b.drain(s)
			return
		}
	}
}

// drain delivers whatever is buffered for s after Close.
func (b *Bus) drain(s *subscriber) {
	for !b.stopped(s) {
		select {
		case ev := <-s.ch:
			b.deliver(s, ev)
		default:
			return
		}
	}
}

// stopped reports whether s should stop delivering right away.
func (b *Bus) stopped(s *subscriber) bool {
	select {
	case <-s.stop:
		return true
	case <-b.abort:
		return true
	default:
		return false
	}
}

// exit unregisters s when its goroutine returns, whether normally or
// because the handler called runtime.Goexit.
func (b *Bus) exit(s *subscriber) {
	b.mu.Lock()
	delete(b.live, s)
	b.subs.Store(b.subs.Load().without(s))
	b.mu.Unlock()
	close(s.exited)
}

func (b *Bus) deliver(s *subscriber, ev any) {
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("events: handler panicked; continuing with the next event",
				logKeySubscriber, s.id,
				logKeyEventType, s.typeName(),
				logKeyHandler, s.handler,
				logKeyPanic, fmt.Sprint(r),
				logKeyStack, string(debug.Stack()),
			)
		}
	}()
	s.fn(ev)
}

func (s *subscriber) typeName() string {
	if s.typ == nil {
		return subscribeAllType
	}
	return s.typ.String()
}

// with returns a copy of set with s added.
func (set *subscriberSet) with(s *subscriber) *subscriberSet {
	next := &subscriberSet{
		byType: make(map[reflect.Type][]*subscriber, len(set.byType)+1),
		all:    set.all,
	}
	for t, subs := range set.byType {
		next.byType[t] = subs
	}
	if s.typ == nil {
		next.all = appendCopy(set.all, s)
	} else {
		next.byType[s.typ] = appendCopy(set.byType[s.typ], s)
	}
	return next
}

// without returns a copy of set with s removed, or set itself if s is not in
// it.
func (set *subscriberSet) without(s *subscriber) *subscriberSet {
	var list []*subscriber
	if s.typ == nil {
		list = set.all
	} else {
		list = set.byType[s.typ]
	}
	i := indexOf(list, s)
	if i < 0 {
		return set
	}
	rest := make([]*subscriber, 0, len(list)-1)
	rest = append(rest, list[:i]...)
	rest = append(rest, list[i+1:]...)

	next := &subscriberSet{
		byType: make(map[reflect.Type][]*subscriber, len(set.byType)),
		all:    set.all,
	}
	for t, subs := range set.byType {
		next.byType[t] = subs
	}
	switch {
	case s.typ == nil:
		next.all = rest
	case len(rest) == 0:
		delete(next.byType, s.typ)
	default:
		next.byType[s.typ] = rest
	}
	return next
}

// appendCopy appends s to a fresh copy of list, leaving list untouched for
// concurrent readers.
func appendCopy(list []*subscriber, s *subscriber) []*subscriber {
	out := make([]*subscriber, 0, len(list)+1)
	out = append(out, list...)
	return append(out, s)
}

func indexOf(list []*subscriber, s *subscriber) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// funcName returns the name of the function fn, for logs.
func funcName(fn any) string {
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return "unknown"
	}
	return f.Name()
}
