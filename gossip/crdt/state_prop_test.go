package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// merged returns a copy of a with b merged into it.
func merged(t *rapid.T, a, b *State) *State {
	out := a.Clone()
	if err := out.Merge(b); err != nil {
		t.Fatalf("merge: %v", err)
	}
	return out
}

func requireSameBytes(t *rapid.T, what string, a, b *State) {
	if ea, eb := a.Encode(), b.Encode(); !bytes.Equal(ea, eb) {
		t.Fatalf("%s: states differ:\n%x\n%x", what, ea, eb)
	}
}

func TestMergeCommutative(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		requireSameBytes(t, "a⊔b vs b⊔a", merged(t, a, b), merged(t, b, a))
	})
}

func TestMergeAssociative(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genState().Draw(t, "a"), genState().Draw(t, "b"), genState().Draw(t, "c")
		requireSameBytes(t, "(a⊔b)⊔c vs a⊔(b⊔c)", merged(t, merged(t, a, b), c), merged(t, a, merged(t, b, c)))
	})
}

func TestMergeIdempotent(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		requireSameBytes(t, "a⊔a vs a", merged(t, a, a), a)
		ab := merged(t, a, b)
		requireSameBytes(t, "(a⊔b)⊔b vs a⊔b", merged(t, ab, b), ab)
	})
}

// TestMergeMonotone: merging never lowers a member's version, counters or
// tombstone, and never lowers a cluster total.
func TestMergeMonotone(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		requireMonotone(t, a, merged(t, a, b))
	})
}

func requireMonotone(t *rapid.T, before, after *State) {
	for id, e := range before.m {
		f, ok := after.m[id]
		if !ok {
			t.Fatalf("member %s disappeared in a merge", id)
		}
		if f.ver.Less(e.ver) {
			t.Fatalf("member %s version went from %s to %s", id, e.ver, f.ver)
		}
		for i := range e.counters {
			if f.counters[i] < e.counters[i] {
				t.Fatalf("member %s counter %s went from %d to %d", id, Counter(i), e.counters[i], f.counters[i])
			}
		}
		if e.left && !(f.left && !f.obs.Less(e.obs) || f.ver.Incarnation > e.obs.Incarnation) {
			t.Fatalf("member %s tombstone %s lost without a later incarnation (now %s)", id, e.obs, f.ver)
		}
	}
	for c := range Counter(NumCounters) {
		if after.Total(c) < before.Total(c) {
			t.Fatalf("total %s went from %d to %d", c, before.Total(c), after.Total(c))
		}
	}
}

// TestEncodeRoundTrip: Decode(Encode(s)) encodes to the same bytes, and the
// digest survives its own round trip.
func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := genState().Draw(t, "s")
		enc := s.Encode()
		d, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !bytes.Equal(d.Encode(), enc) {
			t.Fatalf("round trip changed the bytes")
		}
		if d.bytes != s.bytes {
			t.Fatalf("size accounting: %d after decode, %d before", d.bytes, s.bytes)
		}
		dg, err := DecodeDigest(s.Digest().Encode())
		if err != nil {
			t.Fatalf("decode digest: %v", err)
		}
		if !bytes.Equal(dg.Encode(), s.Digest().Encode()) {
			t.Fatalf("digest round trip changed the bytes")
		}
	})
}

// TestDeltaForEqualsFullMerge: merging b.DeltaFor(a.Digest()) into a gives
// the same state as merging all of b, for arbitrary states (conflicting
// equal versions included); the same holds with a byte budget after enough
// rounds.
func TestDeltaForEqualsFullMerge(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		want := merged(t, a, b)
		requireSameBytes(t, "a⊔delta vs a⊔b", merged(t, a, b.DeltaFor(a.Digest(), 0)), want)

		budget := rapid.IntRange(1, 600).Draw(t, "budget")
		got := a.Clone()
		for round := 0; ; round++ {
			d := b.DeltaFor(got.Digest(), budget)
			if d.Len() == 0 {
				break
			}
			if round > len(testMembers) {
				t.Fatalf("budgeted anti-entropy made no progress after %d rounds", round)
			}
			if err := got.Merge(d); err != nil {
				t.Fatalf("merge: %v", err)
			}
		}
		requireSameBytes(t, "budgeted rounds vs a⊔b", got, want)
	})
}

// A cluster model for convergence: replica i is member "m<i>" and the only
// writer of its own record and counters. Operations run in random order;
// every local update's delta (Subset) is logged as the gossip broadcast it
// would be.
//
// Alongside, each replica (and each delta) carries a reference model of
// membership as a plain observed-remove set with explicit tags: an update at
// incarnation i adds the tag i, a Leave removes every tag its replica has
// observed, merges take unions. The specification the State must meet:
// a member is present iff its highest added tag has not been removed (a
// member's higher incarnation supersedes its lower ones, as in an OR-set
// whose adds from one source replace each other).
type cluster struct {
	reps   []*State
	inc    []uint64 // each member's persisted incarnation
	deltas []delta
	now    time.Time
	model  []knowledge // per replica
}

type delta struct {
	state *State
	model knowledge
}

// knowledge is a replica's reference model: per member, the tags added and
// the tags removed.
type knowledge map[string]*tags

type tags struct{ added, removed map[uint64]bool }

func (k knowledge) of(id string) *tags {
	if k[id] == nil {
		k[id] = &tags{added: map[uint64]bool{}, removed: map[uint64]bool{}}
	}
	return k[id]
}

// union adds o's knowledge of member only[0] (of all members if none) to k.
func (k knowledge) union(o knowledge, only ...string) {
	for id, ot := range o {
		if len(only) > 0 && id != only[0] {
			continue
		}
		kt := k.of(id)
		for tag := range ot.added {
			kt.added[tag] = true
		}
		for tag := range ot.removed {
			kt.removed[tag] = true
		}
	}
}

func (k knowledge) snapshot(id string) knowledge {
	out := knowledge{}
	out.union(k, id)
	return out
}

func (k knowledge) present(id string) bool {
	kt := k[id]
	if kt == nil || len(kt.added) == 0 {
		return false
	}
	top := uint64(0)
	for tag := range kt.added {
		top = max(top, tag)
	}
	return !kt.removed[top]
}

// check compares every replica's membership with its reference model.
func (c *cluster) check(t *rapid.T, step int) {
	for r, s := range c.reps {
		for m := range c.reps {
			id := memberName(m)
			if got, want := s.Present(id), c.model[r].present(id); got != want {
				t.Fatalf("step %d: replica %d says %s present=%v, the OR-set model says %v (state %s, tombstone %v)", step, r, id, got, want, s.Version(id), s.m[id].obs)
			}
		}
	}
}

func memberName(i int) string { return fmt.Sprint("m", i) }

// local runs a local update of member i, restarting it at a higher
// incarnation (as a live member refutes its own tombstone) if the update is
// refused as stale.
func (c *cluster) local(t *rapid.T, i int, update func(s *State, id string, inc uint64) error) {
	id := memberName(i)
	err := update(c.reps[i], id, c.inc[i])
	if errors.Is(err, ErrStaleIncarnation) {
		c.inc[i]++
		err = update(c.reps[i], id, c.inc[i])
	}
	if err != nil {
		t.Fatalf("local update of %s: %v", id, err)
	}
	c.model[i].of(id).added[c.inc[i]] = true
	c.deltas = append(c.deltas, delta{c.reps[i].Subset(id), c.model[i].snapshot(id)})
}

// merge merges d into replica i, whose model learns what k knows of the
// members d carries (a member DeltaFor leaves out is one the receiver's
// entry supersedes, so the model must do without it too).
func (c *cluster) merge(t *rapid.T, i int, d *State, k knowledge) {
	for _, id := range d.IDs() {
		c.model[i].union(k, id)
	}
	before := c.reps[i].Clone()
	if err := c.reps[i].Merge(d); err != nil {
		t.Fatalf("merge into replica %d: %v", i, err)
	}
	requireMonotone(t, before, c.reps[i])
}

// pushPull is one anti-entropy exchange between replicas i and j.
func (c *cluster) pushPull(t *rapid.T, i, j int, budget int) {
	toJ := c.reps[i].DeltaFor(c.reps[j].Digest(), budget)
	toI := c.reps[j].DeltaFor(c.reps[i].Digest(), budget)
	c.merge(t, j, toJ, c.model[i])
	c.merge(t, i, toI, c.model[j])
}

func runCluster(t *rapid.T) *cluster {
	n := rapid.IntRange(2, 5).Draw(t, "replicas")
	c := &cluster{reps: make([]*State, n), inc: make([]uint64, n), now: testEpoch, model: make([]knowledge, n)}
	for i := range c.reps {
		c.reps[i] = NewState()
		c.model[i] = knowledge{}
		c.inc[i] = rapid.Uint64Range(0, 3).Draw(t, "initial incarnation")
	}
	steps := rapid.IntRange(0, 60).Draw(t, "steps")
	for step := range steps {
		i := rapid.IntRange(0, n-1).Draw(t, "member")
		c.now = c.now.Add(time.Second)
		switch rapid.IntRange(0, 6).Draw(t, "op") {
		case 0:
			rec := genRecord().Draw(t, "record")
			c.local(t, i, func(s *State, id string, inc uint64) error {
				_, err := s.SetRecord(id, inc, rec)
				return err
			})
		case 1:
			ctr := Counter(rapid.IntRange(0, NumCounters-1).Draw(t, "counter"))
			delta := rapid.Uint64Range(0, 5).Draw(t, "delta")
			c.local(t, i, func(s *State, id string, inc uint64) error {
				_, err := s.Add(id, inc, ctr, delta)
				return err
			})
		case 2: // restart: the next update is at a higher incarnation
			c.inc[i]++
		case 3: // replica i removes member j (itself: a graceful leave)
			j := rapid.IntRange(0, n-1).Draw(t, "removed")
			id := memberName(j)
			if _, err := c.reps[i].Leave(id, c.now); err == nil {
				kt := c.model[i].of(id)
				for tag := range kt.added {
					kt.removed[tag] = true
				}
				c.deltas = append(c.deltas, delta{c.reps[i].Subset(id), c.model[i].snapshot(id)})
			} else if !errors.Is(err, ErrUnknownMember) {
				t.Fatalf("leave: %v", err)
			}
		case 4: // a broadcast reaches replica i
			if len(c.deltas) > 0 {
				d := rapid.SampledFrom(c.deltas).Draw(t, "delta")
				c.merge(t, i, d.state, d.model)
			}
		case 5:
			j := rapid.IntRange(0, n-1).Draw(t, "peer")
			c.pushPull(t, i, j, rapid.IntRange(0, 400).Draw(t, "budget"))
		case 6: // full state exchange one way
			j := rapid.IntRange(0, n-1).Draw(t, "peer")
			c.merge(t, i, c.reps[j], c.model[j])
		}
		c.check(t, step)
	}
	return c
}

// TestConvergenceByDeltas: replicas that receive every delta, each in its
// own random order, end equal, and equal to the join of all replicas.
func TestConvergenceByDeltas(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := runCluster(t)
		want := mergeOf(t, c.reps...)
		for k := range 3 {
			order := rapid.Permutation(c.deltas).Draw(t, fmt.Sprint("order ", k))
			got := NewState()
			for _, d := range order {
				if err := got.Merge(d.state); err != nil {
					t.Fatalf("merge: %v", err)
				}
			}
			requireSameBytes(t, "all deltas vs join of replicas", got, want)
		}
	})
}

// TestConvergenceByAntiEntropy: after the random run, push-pull exchanges
// along a ring (then back) bring every replica to the same state.
func TestConvergenceByAntiEntropy(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := runCluster(t)
		want := mergeOf(t, c.reps...)
		n := len(c.reps)
		for range 2 {
			for i := range n {
				c.pushPull(t, i, (i+1)%n, 0)
			}
		}
		c.check(t, -1)
		for i, r := range c.reps {
			requireSameBytes(t, fmt.Sprint("replica ", i, " vs join"), r, want)
		}
	})
}

// TestVersionsIncrease: each local update returns a version above every
// version the member's replica held for it before.
func TestVersionsIncrease(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := genState().Draw(t, "s")
		id := rapid.SampledFrom(testMembers).Draw(t, "member")
		inc := rapid.Uint64Range(0, 4).Draw(t, "inc")
		for k := range rapid.IntRange(1, 10).Draw(t, "updates") {
			before := s.Version(id)
			var v Version
			var err error
			if rapid.Bool().Draw(t, fmt.Sprint("record ", k)) {
				v, err = s.SetRecord(id, inc, genRecord().Draw(t, fmt.Sprint("rec ", k)))
			} else {
				v, err = s.Add(id, inc, StepsExecuted, 1)
			}
			if errors.Is(err, ErrStaleIncarnation) {
				inc = max(inc, s.Version(id).Incarnation) + 1
				continue
			}
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if !before.Less(v) || s.Version(id) != v {
				t.Fatalf("update %d: version %s after %s", k, v, before)
			}
		}
	})
}

// TestTombstoneRules: a tombstone wins over any record of an incarnation it
// covers, whenever that record arrives, and loses to a record of a higher
// incarnation.
func TestTombstoneRules(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s := genState().Draw(t, "s")
		id := rapid.SampledFrom(testMembers).Draw(t, "member")
		if _, ok := s.m[id]; !ok {
			if _, err := s.SetRecord(id, rapid.Uint64Range(0, 2).Draw(t, "inc"), MemberRecord{}); err != nil {
				t.Fatalf("set: %v", err)
			}
		}
		tomb, err := s.Leave(id, testEpoch)
		if err != nil {
			t.Fatalf("leave: %v", err)
		}
		// A record of a covered incarnation, from another replica.
		other := NewState()
		late := Version{Incarnation: tomb.Observed.Incarnation, Counter: tomb.Observed.Counter + rapid.Uint64Range(0, 3).Draw(t, "later")}
		other.put(id, entry{ver: late, rec: emptyRecord})
		for _, m := range []*State{merged(t, s, other), merged(t, other, s)} {
			if m.Present(id) {
				t.Fatalf("record %s of a covered incarnation revived a member tombstoned at %s", late, tomb.Observed)
			}
		}
		// A rejoin at a higher incarnation.
		back := NewState()
		if _, err := back.SetRecord(id, tomb.Observed.Incarnation+1, MemberRecord{}); err != nil {
			t.Fatalf("set: %v", err)
		}
		for _, m := range []*State{merged(t, s, back), merged(t, back, s)} {
			if !m.Present(id) {
				t.Fatalf("a record at incarnation %d did not bring back a member tombstoned at %s", tomb.Observed.Incarnation+1, tomb.Observed)
			}
			if _, left := m.Left(id); left {
				t.Fatalf("the stale tombstone was kept")
			}
		}
	})
}
