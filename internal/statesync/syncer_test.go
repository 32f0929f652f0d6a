package statesync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fleet is N Syncers joined by an in-process exchange and broadcast, with
// partitions. Nothing runs on its own: tests step rounds by hand.
type fleet struct {
	t     *testing.T
	clock *clock
	mu    sync.Mutex
	nodes map[string]*Syncer
	recs  map[string]*crdt.MemberRecord // each member's current record (Local)
	group map[string]int                // partition group; equal groups reach each other
	views map[string]int                // if set, gossip's view: members of other view groups are listed failed
	saved map[string]persisted          // what each member persisted
	ids   []string
	quiet bool // broadcasts are lost: only anti-entropy spreads state
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{t: t, clock: &clock{t: time.Unix(1_700_000_000, 0)}, nodes: map[string]*Syncer{},
		recs: map[string]*crdt.MemberRecord{}, group: map[string]int{}, saved: map[string]persisted{}}
	for i := range n {
		id := fmt.Sprintf("member-%02d", i)
		f.ids = append(f.ids, id)
		f.recs[id] = &crdt.MemberRecord{WorkerCapacity: 4, NodeTypes: []string{"common", "only-" + id}}
		f.start(id, 1, crdt.Counters{})
	}
	return f
}

// start (re)creates member id's Syncer at incarnation inc with counters.
func (f *fleet) start(id string, inc uint64, counters crdt.Counters) *Syncer {
	f.t.Helper()
	s, err := New(Config{
		Self: id, Incarnation: inc, Counters: counters,
		Local: func() crdt.MemberRecord {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.recs[id].Clone()
		},
		Broadcast: func(name string, payload []byte) error { f.broadcast(id, name, payload); return nil },
		Exchange:  func(ctx context.Context, peer string, req []byte) ([]byte, error) { return f.exchange(id, peer, req) },
		Peers:     func() []string { return f.peers(id) },
		Unreachable: func() []string {
			f.mu.Lock()
			defer f.mu.Unlock()
			var out []string
			for _, o := range f.ids {
				if f.views != nil && f.views[o] != f.views[id] {
					out = append(out, o)
				}
			}
			return out
		},
		Persist: func(inc uint64, c crdt.Counters) error {
			f.mu.Lock()
			f.saved[id] = persisted{inc: inc, counters: c}
			f.mu.Unlock()
			return nil
		},
		Now:    f.clock.Now,
		Seed:   uint64(len(f.nodes) + 1),
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(f.t, err)
	f.mu.Lock()
	f.nodes[id] = s
	f.mu.Unlock()
	return s
}

func (f *fleet) reach(a, b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.group[a] == f.group[b] && f.nodes[b] != nil
}

func (f *fleet) peers(self string) []string {
	var out []string
	for _, id := range f.ids {
		if id != self && f.reach(self, id) && f.sameView(self, id) {
			out = append(out, id)
		}
	}
	return out
}

// sameView reports whether gossip's view (views, if set) lists b alive at a.
func (f *fleet) sameView(a, b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.views == nil || f.views[a] == f.views[b]
}

func (f *fleet) node(id string) *Syncer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[id]
}

func (f *fleet) broadcast(from, name string, payload []byte) {
	if f.quiet {
		return
	}
	for _, id := range f.ids {
		if id != from && f.reach(from, id) {
			f.node(id).HandleEvent(name, bytes.Clone(payload), from)
		}
	}
}

func (f *fleet) exchange(from, to string, req []byte) ([]byte, error) {
	if !f.reach(from, to) {
		return nil, errors.New("unreachable")
	}
	r, err := DecodeRequest(req)
	if err != nil {
		return nil, err
	}
	return f.node(to).Serve(from, r), nil
}

// round steps every member once: publish, then one exchange.
func (f *fleet) round() {
	f.clock.Add(time.Second)
	for _, id := range f.ids {
		if s := f.node(id); s != nil {
			s.publish()
			s.persist()
		}
	}
	for _, id := range f.ids {
		if s := f.node(id); s != nil {
			s.exchange(context.Background())
		}
	}
}

// converged reports whether every listed member holds the same state.
func (f *fleet) converged(ids []string) bool {
	first := f.node(ids[0]).Snapshot()
	for _, id := range ids[1:] {
		if !first.Equal(f.node(id).Snapshot()) {
			return false
		}
	}
	return true
}

// runUntilConverged steps rounds until ids converge, at most max rounds,
// and returns how many it took.
func (f *fleet) runUntilConverged(ids []string, limit int) int {
	f.t.Helper()
	for r := 1; r <= limit; r++ {
		f.round()
		if f.converged(ids) {
			return r
		}
	}
	f.t.Fatalf("members %v did not converge within %d rounds", ids, limit)
	return 0
}

// update makes a random local change on member id: counts, load or
// metadata. It returns what it counted.
func (f *fleet) update(rnd *rand.Rand, id string) (c crdt.Counter, n uint64) {
	s := f.node(id)
	switch rnd.IntN(3) {
	case 0:
		c, n = crdt.Counter(rnd.IntN(crdt.NumCounters)), uint64(1+rnd.IntN(5))
		s.Count(c, n)
	case 1:
		f.mu.Lock()
		f.recs[id].Executing = uint64(rnd.IntN(10))
		f.recs[id].Queued = uint64(rnd.IntN(10))
		f.mu.Unlock()
	default:
		f.mu.Lock()
		if f.recs[id].Metadata == nil {
			f.recs[id].Metadata = map[string]string{}
		}
		f.recs[id].Metadata[fmt.Sprintf("k%d", rnd.IntN(4))] = fmt.Sprint(rnd.IntN(1000))
		f.mu.Unlock()
	}
	return c, n
}

func TestConvergenceOfTwentyMembers(t *testing.T) {
	t.Parallel()
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("broadcasts lost=%v", quiet), func(t *testing.T) {
			t.Parallel()
			testConvergence(t, quiet)
		})
	}
}

func testConvergence(t *testing.T, quiet bool) {
	f := newFleet(t, 20)
	f.quiet = quiet
	rnd := rand.New(rand.NewPCG(1, 2))
	want := crdt.Counters{}
	for range 200 {
		c, n := f.update(rnd, f.ids[rnd.IntN(len(f.ids))])
		want[c] += n
		if rnd.IntN(4) == 0 {
			f.round()
		}
	}
	rounds := f.runUntilConverged(f.ids, 30)
	t.Logf("converged %d rounds after the last update", rounds)
	v := f.node(f.ids[0]).View()
	require.Len(t, v.Members, 20)
	require.Equal(t, want, v.Totals, "cluster totals are the sum of every member's own counts")
	for _, id := range f.ids {
		require.Equal(t, v.Totals, f.node(id).View().Totals, "member %s", id)
	}
	// Every member's record is its latest.
	for _, r := range v.Members {
		require.Equal(t, f.recs[r.ID].Metadata, nilIfEmpty(r.Data.Metadata), "record of %s", r.ID)
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func TestLargeRecordsTravelByAntiEntropy(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 5)
	big := make([]string, 60)
	for i := range big {
		big[i] = fmt.Sprintf("a-rather-long-node-type-name-%04d-x", i)
	}
	f.mu.Lock()
	f.recs["member-03"].NodeTypes = big
	f.mu.Unlock()
	f.runUntilConverged(f.ids, 20)
	require.NotZero(t, f.node("member-03").Stats().TooLarge, "the large entry was not broadcast")
	v := f.node("member-00").View()
	who, ok := v.Pick(big[59], "member-00", nil, nil)
	require.True(t, ok)
	require.Equal(t, "member-03", who)
}

func TestPartitionedHalfConvergesAfterHeal(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 20)
	f.runUntilConverged(f.ids, 30)
	left, right := f.ids[:10], f.ids[10:]
	f.mu.Lock()
	for _, id := range right {
		f.group[id] = 1
	}
	f.mu.Unlock()
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		f.update(rnd, f.ids[rnd.IntN(len(f.ids))])
		f.round()
	}
	f.runUntilConverged(left, 30)
	f.runUntilConverged(right, 30)
	require.False(t, f.converged(f.ids), "the halves diverged while partitioned")
	f.mu.Lock()
	clear(f.group)
	f.mu.Unlock()
	rounds := f.runUntilConverged(f.ids, 30)
	t.Logf("converged %d rounds after the heal", rounds)
}

// When a partition heals, gossip still lists the other side failed for a
// while (its rejoin loop and push-pulls take seconds): exchanges with
// members listed failed merge the two sides' states meanwhile. With gossip
// never seeing them alive again, the halves still converge.
func TestHealedHalvesConvergeBeforeGossipSeesThemAlive(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 20)
	f.runUntilConverged(f.ids, 30)
	f.mu.Lock()
	f.views = map[string]int{}
	for _, id := range f.ids[10:] {
		f.group[id], f.views[id] = 1, 1
	}
	f.mu.Unlock()
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 60 {
		f.update(rnd, f.ids[rnd.IntN(len(f.ids))])
		f.round()
	}
	require.False(t, f.converged(f.ids), "the halves diverged while partitioned")
	f.mu.Lock()
	clear(f.group) // the network heals; gossip's views stay split
	f.mu.Unlock()
	rounds := f.runUntilConverged(f.ids, 30)
	t.Logf("converged %d rounds after the heal", rounds)
}

func TestRestartedMemberConvergesAndKeepsCounters(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 6)
	f.runUntilConverged(f.ids, 20)
	a := f.ids[2]
	f.node(a).Count(crdt.WorkflowsCompleted, 10)
	f.runUntilConverged(f.ids, 20)
	// It crashes having persisted only 4, and restarts at a higher
	// incarnation; it counts 3 more before hearing from anyone.
	f.mu.Lock()
	delete(f.nodes, a)
	f.mu.Unlock()
	f.round()
	s := f.start(a, 2, crdt.Counters{crdt.WorkflowsCompleted: 4})
	s.Count(crdt.WorkflowsCompleted, 3)
	f.runUntilConverged(f.ids, 20)
	for _, id := range f.ids {
		v := f.node(id).View()
		require.Equal(t, uint64(13), v.Counters[a][crdt.WorkflowsCompleted], "member %s's view of %s", id, a)
		require.Equal(t, uint64(13), v.Totals[crdt.WorkflowsCompleted])
	}
	require.Equal(t, uint64(2), f.node(f.ids[0]).Snapshot().Version(a).Incarnation)
	f.mu.Lock()
	require.Equal(t, uint64(13), f.saved[a].counters[crdt.WorkflowsCompleted], "persisted")
	f.mu.Unlock()
}

func TestTombstonedMemberComesBackAtAHigherIncarnation(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	f.runUntilConverged(f.ids, 20)
	// A false report: member-01 is alive.
	f.node("member-00").Left("member-01")
	_, left := f.node("member-00").Snapshot().Left("member-01")
	require.True(t, left)
	f.runUntilConverged(f.ids, 20)
	snap := f.node("member-02").Snapshot()
	require.True(t, snap.Present("member-01"))
	require.Equal(t, uint64(2), snap.Version("member-01").Incarnation)
	require.Equal(t, uint64(2), f.node("member-01").Incarnation())
	f.mu.Lock()
	require.Equal(t, uint64(2), f.saved["member-01"].inc, "the new incarnation is persisted")
	f.mu.Unlock()
}

func TestLeftMembersAreCollectedAfterTheHorizon(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	f.runUntilConverged(f.ids, 20)
	gone := "member-02"
	f.mu.Lock()
	delete(f.nodes, gone)
	f.mu.Unlock()
	f.node("member-00").Left(gone)
	f.node("member-01").Left(gone)
	live := f.ids[:2]
	f.mu.Lock()
	f.ids = live
	f.mu.Unlock()
	f.runUntilConverged(live, 10)
	require.Equal(t, 3, f.node("member-00").Snapshot().Len(), "tombstone kept")
	v := f.node("member-01").View()
	require.True(t, v.Left[gone])
	require.Equal(t, 2, v.Present())
	_, ok := v.Pick("only-"+gone, "", nil, nil)
	require.False(t, ok, "a member that left runs nothing")
	f.clock.Add(DefaultTombstoneHorizon + time.Minute)
	for _, id := range live {
		f.node(id).collect()
	}
	require.Equal(t, 2, f.node("member-00").Snapshot().Len())
	require.Equal(t, 2, f.node("member-01").Snapshot().Len())
}

// logCounter counts warnings.
type logCounter struct {
	mu    sync.Mutex
	warns []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		l.warns = append(l.warns, r.Message)
		l.mu.Unlock()
	}
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func TestHostilePayloadsAreDroppedAndLoggedOncePerPeer(t *testing.T) {
	t.Parallel()
	logs := &logCounter{}
	s, err := New(Config{Self: "me", Incarnation: 1, Local: func() crdt.MemberRecord { return crdt.MemberRecord{} },
		Logger: slog.New(logs)})
	require.NoError(t, err)
	before := s.Snapshot()

	other := crdt.NewState()
	_, err = other.SetRecord("evil", 1, crdt.MemberRecord{})
	require.NoError(t, err)
	_, err = other.SetRecord("victim", 1, crdt.MemberRecord{})
	require.NoError(t, err)
	good := other.Subset("evil").Encode()

	payloads := [][]byte{
		nil, {}, {0xff}, bytes.Repeat([]byte{0xff}, 4096),
		good[:len(good)-1],              // truncated
		append(bytes.Clone(good), 0),    // trailing byte
		other.Subset("victim").Encode(), // another member's entry
		other.Encode(),                  // two members
		[]byte(strings.Repeat("\x01\xff\xff\xff\xff\x0f", 100)), // absurd counts
	}
	for _, p := range payloads {
		s.HandleEvent(EventName, p, "evil")
	}
	require.Equal(t, uint64(len(payloads)), s.Stats().Dropped)
	require.True(t, before.Equal(s.Snapshot()), "the state is unchanged")
	s.HandleEvent("something-else", []byte("ignored"), "evil")
	s.HandleEvent(EventName, good, "evil") // well-formed: merged
	require.True(t, s.Snapshot().Present("evil"))

	// Requests: undecodable ones are refused by DecodeRequest; a push of
	// another member's entry is dropped by Serve.
	for _, p := range payloads {
		_, err := DecodeRequest(p)
		require.Error(t, err)
	}
	_, err = DecodeRequest(EncodeRequest(crdt.Digest{}, other))
	require.Error(t, err, "a push of two members")
	req, err := DecodeRequest(EncodeRequest(crdt.Digest{}, other.Subset("victim")))
	require.NoError(t, err)
	reply := s.Serve("another-evil", req)
	require.False(t, s.Snapshot().Present("victim"))
	delta, err := crdt.Decode(reply)
	require.NoError(t, err)
	require.True(t, delta.Present("me"), "the reply still answers the digest")

	// A bad exchange reply is dropped too.
	s.cfg.Peers = func() []string { return []string{"evil"} }
	s.cfg.Exchange = func(context.Context, string, []byte) ([]byte, error) { return []byte{1, 2, 3}, nil }
	s.exchange(context.Background())

	logs.mu.Lock()
	defer logs.mu.Unlock()
	require.Len(t, logs.warns, 2, "one warning for evil, one for another-evil: %v", logs.warns)
	require.Equal(t, uint64(len(payloads)+2), s.Stats().Dropped)
}

func TestShouldPublish(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(100, 0)
	v1, v2 := crdt.Version{Incarnation: 1, Counter: 1}, crdt.Version{Incarnation: 1, Counter: 2}
	for _, tc := range []struct {
		name      string
		cur, pub  crdt.Version
		now, last time.Time
		want      bool
	}{
		{"never published", v1, crdt.Version{}, t0, time.Time{}, true},
		{"unchanged", v1, v1, t0.Add(time.Hour), t0, false},
		{"changed, too soon", v2, v1, t0.Add(999 * time.Millisecond), t0, false},
		{"changed, interval passed", v2, v1, t0.Add(time.Second), t0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, shouldPublish(tc.cur, tc.pub, tc.now, tc.last, time.Second))
		})
	}
}

func TestPublishIsRateLimited(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	s := f.node("member-00")
	s.exchange(context.Background()) // synced: counts go straight into the state
	s.publish()
	sent := s.Stats().Published
	require.Equal(t, uint64(1), sent)
	for range 10 {
		s.Count(crdt.StepsExecuted, 1)
		s.publish() // same instant: nothing more goes out
	}
	require.Equal(t, sent, s.Stats().Published)
	f.clock.Add(time.Second)
	s.publish()
	s.publish()
	require.Equal(t, sent+1, s.Stats().Published)
}

func TestPickChoosesTheLeastLoadedAliveMember(t *testing.T) {
	t.Parallel()
	st := crdt.NewState()
	for id, r := range map[string]crdt.MemberRecord{
		"a": {NodeTypes: []string{"x"}, WorkerCapacity: 4, Executing: 4},
		"b": {NodeTypes: []string{"x"}, WorkerCapacity: 8, Executing: 4, Queued: 1},
		"c": {NodeTypes: []string{"x"}, WorkerCapacity: 8, Executing: 1},
		"d": {NodeTypes: []string{"y"}},
	} {
		_, err := st.SetRecord(id, 1, r)
		require.NoError(t, err)
	}
	v := newView(st, nil)
	got, ok := v.Pick("x", "", nil, nil)
	require.True(t, ok)
	require.Equal(t, "c", got)
	got, _ = v.Pick("x", "c", nil, nil)
	require.Equal(t, "b", got)
	got, _ = v.Pick("x", "", func(id string) bool { return id == "a" }, nil)
	require.Equal(t, "a", got)
	// Steps sent to c since it published its load count against it.
	got, _ = v.Pick("x", "", nil, func(id string) uint64 {
		if id == "c" {
			return 5
		}
		return 0
	})
	require.Equal(t, "b", got)
	_, ok = v.Pick("z", "", nil, nil)
	require.False(t, ok)
	require.Equal(t, []string{"x", "y"}, v.NodeTypes())
}

func TestLoopsConvergeAndStopTwice(t *testing.T) {
	t.Parallel()
	const n = 5
	var mu sync.Mutex
	nodes := map[string]*Syncer{}
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		s, err := New(Config{
			Self: id, Incarnation: 1, Local: func() crdt.MemberRecord { return crdt.MemberRecord{NodeTypes: []string{id}} },
			Exchange: func(_ context.Context, peer string, req []byte) ([]byte, error) {
				mu.Lock()
				to := nodes[peer]
				mu.Unlock()
				r, err := DecodeRequest(req)
				if err != nil {
					return nil, err
				}
				return to.Serve(id, r), nil
			},
			Peers: func() []string {
				var out []string
				for j := range n {
					out = append(out, fmt.Sprintf("m%d", j))
				}
				return out
			},
			PublishInterval: 10 * time.Millisecond, ExchangeInterval: 10 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler), Seed: uint64(i),
		})
		require.NoError(t, err)
		mu.Lock()
		nodes[id] = s
		mu.Unlock()
	}
	for _, s := range nodes {
		s.Start(context.Background())
		s.Count(crdt.WorkflowsStarted, 2)
	}
	require.Eventually(t, func() bool {
		for _, s := range nodes {
			if v := s.View(); len(v.Members) != n || v.Totals[crdt.WorkflowsStarted] != 2*n {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	for _, s := range nodes {
		s.Stop()
		s.Stop()
		s.Start(context.Background()) // after Stop: does nothing
	}
}

// A stopped Syncer (its member leaving) merges nothing more, so it never
// refutes the tombstone the others give it; counts made after Stop are
// saved by Save.
func TestStoppedSyncerMergesNothingAndSaves(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	f.runUntilConverged(f.ids, 20)
	s := f.node("member-01")
	s.Stop()
	f.node("member-00").Left("member-01")
	f.runUntilConverged([]string{"member-00", "member-02"}, 20)
	require.Equal(t, uint64(1), s.Incarnation(), "no refutation after Stop")
	_, left := f.node("member-02").Snapshot().Left("member-01")
	require.True(t, left)
	s.Count(crdt.WorkflowsFailed, 2)
	s.Save()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, persisted{inc: 1, counters: crdt.Counters{crdt.WorkflowsFailed: 2}}, f.saved["member-01"])
}

// A cluster member that knows no peer yet holds its counts aside (they
// show in Totals and Own) until a peer answers or SyncTimeout passes.
func TestCountsWaitForAPeerOrTheSyncTimeout(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	s := f.node("member-00")
	s.mu.Lock()
	s.started = f.clock.Now()
	s.mu.Unlock()
	s.exchange(context.Background()) // no peer
	s.Count(crdt.StepsExecuted, 5)
	require.Zero(t, s.Snapshot().Counters("member-00")[crdt.StepsExecuted], "held aside")
	require.Equal(t, uint64(5), s.Totals()[crdt.StepsExecuted])
	own, _ := s.Own()
	require.Equal(t, uint64(5), own[crdt.StepsExecuted])
	f.clock.Add(DefaultSyncTimeout)
	s.publish()
	require.Equal(t, uint64(5), s.Snapshot().Counters("member-00")[crdt.StepsExecuted], "added after SyncTimeout")
	require.Equal(t, uint64(5), s.Totals()[crdt.StepsExecuted])
}
