package crdt

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalUpdateVersions(t *testing.T) {
	t.Parallel()
	s := NewState()
	v, err := s.SetRecord("m1", 3, MemberRecord{WorkerCapacity: 4})
	require.NoError(t, err)
	require.Equal(t, Version{3, 1}, v)
	v, err = s.Add("m1", 3, WorkflowsCompleted, 2)
	require.NoError(t, err)
	require.Equal(t, Version{3, 2}, v)
	rec, ok := s.Record("m1")
	require.True(t, ok)
	require.Equal(t, uint64(4), rec.Data.WorkerCapacity, "a counter update keeps the record")

	// A restart: counters carry on from what the state holds.
	v, err = s.Add("m1", 4, WorkflowsCompleted, 1)
	require.NoError(t, err)
	require.Equal(t, Version{4, 1}, v)
	require.Equal(t, uint64(3), s.Counters("m1")[WorkflowsCompleted])

	_, err = s.SetRecord("m1", 3, MemberRecord{})
	require.ErrorIs(t, err, ErrStaleIncarnation)
	_, err = s.Add("m1", 3, StepsExecuted, 1)
	require.ErrorIs(t, err, ErrStaleIncarnation)
	_, err = s.Add("m1", 4, Counter(NumCounters), 1)
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, Version{4, 1}, s.Version("m1"), "refused updates change nothing")
}

func TestMemberIDBounds(t *testing.T) {
	t.Parallel()
	s := NewState()
	_, err := s.SetRecord("", 1, MemberRecord{})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "member ID")
	_, err = s.SetRecord(strings.Repeat("x", MaxMemberIDLen+1), 1, MemberRecord{})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "member ID")
	_, err = s.SetRecord(strings.Repeat("x", MaxMemberIDLen), 1, MemberRecord{})
	require.NoError(t, err)
}

func TestLeaveAndRejoin(t *testing.T) {
	t.Parallel()
	leftAt := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	a := NewState()
	_, err := a.SetRecord("m1", 2, MemberRecord{NodeTypes: []string{"fetch"}})
	require.NoError(t, err)
	_, err = a.Add("m1", 2, WorkflowsStarted, 5)
	require.NoError(t, err)
	stale := a.Clone() // a replica that has not heard of the leave

	tomb, err := a.Leave("m1", leftAt)
	require.NoError(t, err)
	require.Equal(t, Tombstone{Observed: Version{2, 2}, At: leftAt}, tomb)
	require.False(t, a.Present("m1"))
	require.Empty(t, a.Members())
	require.Equal(t, uint64(5), a.Total(WorkflowsStarted), "a left member's counts stay until collected")
	again, err := a.Leave("m1", leftAt.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, tomb, again, "leaving twice keeps the first tombstone")
	_, err = a.Leave("nobody", leftAt)
	require.ErrorIs(t, err, ErrUnknownMember)
	_, err = stale.Clone().Leave("m1", time.Time{})
	require.ErrorIs(t, err, ErrInvalid)

	// A late update of the same incarnation stays covered.
	_, err = stale.SetRecord("m1", 2, MemberRecord{NodeTypes: []string{"late"}})
	require.NoError(t, err)
	require.NoError(t, a.Merge(stale))
	require.False(t, a.Present("m1"))

	// The member itself cannot update at the incarnation it left at.
	_, err = a.SetRecord("m1", 2, MemberRecord{})
	require.ErrorIs(t, err, ErrStaleIncarnation)

	// It rejoins at a higher incarnation, on another replica.
	b := NewState()
	_, err = b.SetRecord("m1", 3, MemberRecord{})
	require.NoError(t, err)
	require.NoError(t, a.Merge(b))
	require.True(t, a.Present("m1"))
	_, left := a.Left("m1")
	require.False(t, left)
	require.Equal(t, uint64(5), a.Total(WorkflowsStarted), "a rejoin does not reset the member's counters")
}

func TestCollect(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	s := NewState()
	for i := range 3 {
		_, err := s.SetRecord(fmt.Sprint("m", i), 1, MemberRecord{})
		require.NoError(t, err)
	}
	_, err := s.Leave("m0", t0)
	require.NoError(t, err)
	_, err = s.Leave("m1", t0.Add(time.Hour))
	require.NoError(t, err)
	peer := s.Clone()

	require.Empty(t, s.Collect(t0.Add(24*time.Hour), 24*time.Hour), "exactly the horizon is not older")
	require.Equal(t, []string{"m0"}, s.Collect(t0.Add(24*time.Hour+1), 24*time.Hour))
	require.Equal(t, []string{"m1", "m2"}, s.IDs())
	require.Equal(t, []string{"m1"}, s.Collect(t0.Add(48*time.Hour), 24*time.Hour))
	require.Equal(t, []string{"m2"}, s.IDs())

	// A peer that did not collect yet sends the tombstoned entries back,
	// still tombstoned; the next Collect removes them again.
	require.NoError(t, s.Merge(peer.DeltaFor(s.Digest(), 0)))
	require.Equal(t, []string{"m2"}, s.Members())
	require.Equal(t, []string{"m0", "m1"}, s.Collect(t0.Add(48*time.Hour), 24*time.Hour))
	fresh := NewState()
	require.NoError(t, fresh.Merge(s))
	require.Equal(t, fresh.bytes, s.bytes, "size accounting after collection")
}

func TestMergeBounds(t *testing.T) {
	t.Parallel()
	full := NewState()
	for i := range MaxMembers {
		full.put(fmt.Sprint("m", i), entry{ver: Version{0, 1}, rec: emptyRecord})
	}
	_, err := full.SetRecord("one-more", 1, MemberRecord{})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "members")

	other := NewState()
	_, err = other.SetRecord("one-more", 1, MemberRecord{})
	require.NoError(t, err)
	before := full.Encode()
	err = full.Merge(other)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "10001 members")
	require.Equal(t, before, full.Encode(), "a refused merge changes nothing")

	// An update of an existing member still merges.
	_, err = other.SetRecord("m7", 1, MemberRecord{})
	require.NoError(t, err)
	require.NoError(t, full.Merge(other.Subset("m7")))

	// The encoded state stays within MaxStateSize by the size accounting:
	// the accounting bounds the encoding from above.
	require.LessOrEqual(t, len(full.Encode()), full.Size())
}

func TestStateSizeBound(t *testing.T) {
	t.Parallel()
	big := MemberRecord{Metadata: map[string]string{}}
	for i := range 60 {
		big.Metadata[fmt.Sprintf("key-%02d", i)] = strings.Repeat("v", MaxMetadataValueLen)
	}
	s := NewState()
	var err error
	for i := 0; err == nil; i++ {
		_, err = s.SetRecord(fmt.Sprint("m", i), 1, big)
	}
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "state would be")
	require.LessOrEqual(t, s.bytes, MaxStateSize)
	require.Greater(t, s.bytes, MaxStateSize-70<<10)
}

func TestDeltaForBudget(t *testing.T) {
	t.Parallel()
	src := NewState()
	for i := range 10 {
		_, err := src.SetRecord(fmt.Sprint("m", i), 1, MemberRecord{NodeTypes: []string{strings.Repeat("t", 200)}})
		require.NoError(t, err)
	}
	dst := NewState()
	rounds := 0
	for {
		d := src.DeltaFor(dst.Digest(), 1000)
		if d.Len() == 0 {
			break
		}
		require.LessOrEqual(t, d.bytes, 1000)
		require.NoError(t, dst.Merge(d))
		rounds++
	}
	require.True(t, dst.Equal(src))
	require.Equal(t, 5, rounds, "2 members of about 345 bytes (as counted) per round")

	// Nothing to send once equal; the digest survives the wire.
	wire, err := DecodeDigest(dst.Digest().Encode())
	require.NoError(t, err)
	require.Zero(t, src.DeltaFor(wire, 0).Len())
}

func TestTotal(t *testing.T) {
	t.Parallel()
	replicas := []*State{NewState(), NewState(), NewState(), NewState()}
	for i, r := range replicas {
		_, err := r.Add(fmt.Sprint("m", i), 1, WorkflowsCompleted, uint64(10*(i+1)))
		require.NoError(t, err)
	}
	// Every replica that merged everything reports the cluster's total,
	// however often it merged.
	for _, r := range replicas {
		for _, o := range replicas {
			require.NoError(t, r.Merge(o))
			require.NoError(t, r.Merge(o))
		}
		require.Equal(t, uint64(100), r.Total(WorkflowsCompleted))
		require.Zero(t, r.Total(StepErrors))
	}
}
