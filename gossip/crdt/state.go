package crdt

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Bounds on a whole State. A state arrives whole from a peer during
// anti-entropy, so it is bounded in members and in bytes.
const (
	// MaxMembers is the most members (present or tombstoned) a State
	// holds: 100 times the 100-member fleet the fleet-scale tests
	// measure, and well beyond what one Serf pool is run at.
	MaxMembers = 10_000
	// MaxStateSize bounds a State's Size, and so its encoding, in bytes
	// (64 MiB).
	// Records are typically under 1 KiB, so 10,000 members take about
	// 10 MiB; 1,000 members with records at the full 64 KiB would too,
	// and are refused beyond this.
	MaxStateSize = 64 << 20
)

// stateFormat is the first byte of an encoded State.
const stateFormat byte = 1

// Record is one member's last-writer-wins record as a State holds it.
type Record struct {
	// ID is the member's ID.
	ID string
	// Version is the version of the member's last update.
	Version Version
	// Data is the record the member published.
	Data MemberRecord
}

// Tombstone marks a member as gone. It removes every incarnation of the
// member up to and including Observed.Incarnation; a record from a later
// incarnation brings the member back (and drops the tombstone).
type Tombstone struct {
	// Observed is the member's record version the remover had seen: the
	// OR-set tags it removes are the incarnations up to
	// Observed.Incarnation.
	Observed Version
	// At is when the member was removed, by the remover's clock, with
	// nanosecond precision in UTC. Collect uses it.
	At time.Time
}

// entry is everything a State keeps about one member. rec is the canonical
// encoding of the record and is never modified in place, so entries can be
// copied by value and share it.
type entry struct {
	ver      Version
	rec      []byte
	counters Counters
	left     bool
	obs      Version // tombstone: observed version, if left
	at       int64   // tombstone: Unix nanoseconds, if left
}

// size is what the entry counts towards MaxStateSize.
func (e *entry) size(id string) int { return entryOverhead + len(id) + len(e.rec) }

// entryOverhead bounds the encoded size of an entry beyond its ID and record
// (versions, counters, tombstone, length prefixes).
const entryOverhead = 128

// merge folds o into e. Record and version: the higher version wins; of two
// different records with equal versions, the one with the greater
// recordSum, then the greater encoding bytewise (so that a Digest can tell
// the winner). Counters: per-counter maximum.
// Tombstone: the higher observed version wins, then the later time; it is
// dropped once the record is from a later incarnation than it covers.
func (e *entry) merge(o *entry) {
	switch c := e.ver.Compare(o.ver); {
	case c < 0, c == 0 && recordLess(e.rec, o.rec):
		e.ver, e.rec = o.ver, o.rec
	}
	e.counters.merge(&o.counters)
	if o.left {
		switch c := e.obs.Compare(o.obs); {
		case !e.left, c < 0, c == 0 && e.at < o.at:
			e.left, e.obs, e.at = true, o.obs, o.at
		}
	}
	e.normalize()
}

// recordLess orders different records of equal versions: by recordSum,
// then bytewise.
func recordLess(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return false
	}
	if sa, sb := recordSum(a), recordSum(b); sa != sb {
		return sa < sb
	}
	return bytes.Compare(a, b) < 0
}

func (e *entry) normalize() {
	if e.left && e.obs.Incarnation < e.ver.Incarnation {
		e.left, e.obs, e.at = false, Version{}, 0
	}
}

// State is the cluster's replicated member state: for each member ID, its
// last-writer-wins Record, its Counters, and the Tombstone of its leaving.
// The zero value is not usable; call NewState. A State is not safe for
// concurrent use.
type State struct {
	m     map[string]entry
	bytes int // sum of entry sizes, for MaxStateSize
}

// NewState returns an empty State.
func NewState() *State { return &State{m: make(map[string]entry)} }

// Clone returns an independent copy of s.
func (s *State) Clone() *State { return &State{m: maps.Clone(s.m), bytes: s.bytes} }

// Len returns the number of members s holds, tombstoned ones included.
func (s *State) Len() int { return len(s.m) }

// Size returns the size MaxStateSize bounds: per member its ID, its encoded
// record and 128 bytes for the rest, an upper bound on len(Encode()) for a
// state with at least one member.
func (s *State) Size() int { return s.bytes }

// IDs returns the IDs of every member s holds, tombstoned ones included,
// sorted.
func (s *State) IDs() []string { return slices.Sorted(maps.Keys(s.m)) }

// Members returns the IDs of the members that have not left, sorted.
func (s *State) Members() []string {
	var ids []string
	for id, e := range s.m {
		if !e.left {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Present reports whether s holds a record of member that no tombstone
// covers.
func (s *State) Present(member string) bool {
	e, ok := s.m[member]
	return ok && !e.left
}

// Record returns member's record, whether or not it has left.
func (s *State) Record(member string) (Record, bool) {
	e, ok := s.m[member]
	if !ok {
		return Record{}, false
	}
	data, err := decodeRecord(e.rec)
	if err != nil {
		// Records are validated before they are stored.
		panic(fmt.Sprintf("crdt: stored record of %q does not decode: %v", member, err))
	}
	return Record{ID: member, Version: e.ver, Data: data}, true
}

// Version returns the version of member's record (zero if s has none).
func (s *State) Version(member string) Version { return s.m[member].ver }

// Counters returns member's counters (zero if s has none).
func (s *State) Counters(member string) Counters { return s.m[member].counters }

// Left returns the tombstone of member if it has left.
func (s *State) Left(member string) (Tombstone, bool) {
	e, ok := s.m[member]
	if !ok || !e.left {
		return Tombstone{}, false
	}
	return Tombstone{Observed: e.obs, At: unixTime(e.at)}, true
}

// Total returns the cluster's figure for counter c: the sum over every member
// s holds, tombstoned ones included until Collect removes them. It saturates
// at math.MaxUint64, and is 0 for a Counter beyond NumCounters.
func (s *State) Total(c Counter) uint64 {
	var sum uint64
	if int(c) >= NumCounters {
		return 0
	}
	for _, e := range s.m {
		sum = satAdd(sum, e.counters[c])
	}
	return sum
}

// Equal reports whether s and o hold the same state (the same encoding).
func (s *State) Equal(o *State) bool { return bytes.Equal(s.Encode(), o.Encode()) }

// next returns member's entry prepared for a local update at incarnation,
// with its version advanced. It changes nothing in s.
func (s *State) next(member string, incarnation uint64) (entry, error) {
	e, ok := s.m[member]
	if !ok {
		if err := checkMemberID(member); err != nil {
			return entry{}, err
		}
		if len(s.m) >= MaxMembers {
			return entry{}, fmt.Errorf("crdt: adding member %s: state holds %d members, at most %d allowed: %w", quoteShort(member), len(s.m), MaxMembers, ErrTooLarge)
		}
		e.rec = emptyRecord
	}
	switch {
	case e.left && incarnation <= e.obs.Incarnation:
		return entry{}, fmt.Errorf("crdt: member %s left at incarnation %d, update at incarnation %d: %w", quoteShort(member), e.obs.Incarnation, incarnation, ErrStaleIncarnation)
	case ok && incarnation < e.ver.Incarnation:
		return entry{}, fmt.Errorf("crdt: member %s is at incarnation %d, update at incarnation %d: %w", quoteShort(member), e.ver.Incarnation, incarnation, ErrStaleIncarnation)
	case ok && incarnation == e.ver.Incarnation:
		if e.ver.Counter == ^uint64(0) {
			return entry{}, fmt.Errorf("crdt: member %s: version counter exhausted at incarnation %d, restart with a higher incarnation: %w", quoteShort(member), incarnation, ErrTooLarge)
		}
		e.ver.Counter++
	default:
		e.ver = Version{Incarnation: incarnation, Counter: 1}
	}
	e.normalize()
	return e, nil
}

// put stores e as member's entry, keeping the size accounting.
func (s *State) put(member string, e entry) {
	if old, ok := s.m[member]; ok {
		s.bytes -= old.size(member)
	}
	s.m[member] = e
	s.bytes += e.size(member)
}

// SetRecord is member's local update of its own record, at incarnation (the
// member's current incarnation, persisted by the caller and incremented on
// every restart). It returns the record's new version: Counter+1 within the
// same incarnation, {incarnation, 1} for a higher one. It refuses a record
// out of bounds (the error names the field) and a stale incarnation
// (ErrStaleIncarnation): lower than the state's, or not higher than the one
// member left at.
//
// Only the member itself may call SetRecord for its ID; two writers of one
// ID would issue equal versions with different contents.
func (s *State) SetRecord(member string, incarnation uint64, rec MemberRecord) (Version, error) {
	enc, err := rec.encode()
	if err != nil {
		return Version{}, fmt.Errorf("crdt: member %s: %w", quoteShort(member), err)
	}
	e, err := s.next(member, incarnation)
	if err != nil {
		return Version{}, err
	}
	e.rec = enc
	if err := s.checkGrowth(member, e); err != nil {
		return Version{}, err
	}
	s.put(member, e)
	return e.ver, nil
}

// Add is member's local update of its own counter c: it adds delta
// (saturating) and advances the version like SetRecord, so that digests see
// the change. The same incarnation rules apply.
func (s *State) Add(member string, incarnation uint64, c Counter, delta uint64) (Version, error) {
	if int(c) >= NumCounters {
		return Version{}, fmt.Errorf("crdt: counter %d: no such counter: %w", c, ErrInvalid)
	}
	e, err := s.next(member, incarnation)
	if err != nil {
		return Version{}, err
	}
	e.counters[c] = satAdd(e.counters[c], delta)
	if err := s.checkGrowth(member, e); err != nil {
		return Version{}, err
	}
	s.put(member, e)
	return e.ver, nil
}

// Leave tombstones member at the record version s holds for it, with the
// caller's time at. The member itself calls it on a graceful leave; any
// member may call it for a member that failed long ago (policy is the
// caller's). Leaving a member that has already left returns the existing
// tombstone. at must lie within the years 1678 to 2262 (Unix nanoseconds).
// A live member that finds itself tombstoned (Present false after
// a merge) must restart its record at a higher incarnation to come back.
func (s *State) Leave(member string, at time.Time) (Tombstone, error) {
	e, ok := s.m[member]
	if !ok {
		return Tombstone{}, fmt.Errorf("crdt: leave %s: %w", quoteShort(member), ErrUnknownMember)
	}
	if e.left {
		t, _ := s.Left(member)
		return t, nil
	}
	if !inUnixNanoRange(at) {
		return Tombstone{}, fmt.Errorf("crdt: leave %s: time %s is outside the years 1678 to 2262: %w", quoteShort(member), at, ErrInvalid)
	}
	e.merge(&entry{ver: e.ver, rec: e.rec, left: true, obs: e.ver, at: at.UnixNano()})
	s.put(member, e)
	t, _ := s.Left(member)
	return t, nil
}

// checkGrowth refuses storing e for member if the state would exceed
// MaxStateSize.
func (s *State) checkGrowth(member string, e entry) error {
	n := s.bytes + e.size(member)
	if old, ok := s.m[member]; ok {
		n -= old.size(member)
	}
	if n > MaxStateSize {
		return fmt.Errorf("crdt: member %s: state would be %d bytes, at most %d allowed: %w", quoteShort(member), n, MaxStateSize, ErrTooLarge)
	}
	return nil
}

// Merge folds o into s. For states within the bounds, Merge is commutative,
// associative and idempotent: any replicas that have merged the same set of
// states, in any order and grouping, encode to the same bytes. Per member:
//
//   - record: the higher Version wins; equal versions with different
//     contents (which a correct member never produces, since it issues each
//     version once) keep the record with the greater SHA-256 prefix of its
//     encoding (then the greater encoding bytewise), so the result does not
//     depend on merge order;
//   - counters: the maximum of each counter;
//   - tombstone: the one with the higher observed version (then the later
//     time) wins, and it is dropped when the record is from a later
//     incarnation: a member that rejoins with a higher incarnation is back.
//
// If the result would exceed MaxMembers or MaxStateSize, Merge changes
// nothing and returns an error wrapping ErrTooLarge.
func (s *State) Merge(o *State) error {
	count, size := len(s.m), s.bytes
	for id, oe := range o.m {
		e, ok := s.m[id]
		if !ok {
			count++
			size += oe.size(id)
			continue
		}
		m := e
		m.merge(&oe)
		size += m.size(id) - e.size(id)
	}
	if count > MaxMembers {
		return fmt.Errorf("crdt: merge would hold %d members, at most %d allowed: %w", count, MaxMembers, ErrTooLarge)
	}
	if size > MaxStateSize {
		return fmt.Errorf("crdt: merge would hold %d bytes, at most %d allowed: %w", size, MaxStateSize, ErrTooLarge)
	}
	for id, oe := range o.m {
		e, ok := s.m[id]
		if !ok {
			s.put(id, oe)
			continue
		}
		e.merge(&oe)
		s.put(id, e)
	}
	return nil
}

// Subset returns a State holding only the given members' entries (those s
// holds): the delta a member broadcasts after its own update.
func (s *State) Subset(members ...string) *State {
	d := NewState()
	for _, id := range members {
		if e, ok := s.m[id]; ok {
			d.put(id, e)
		}
	}
	return d
}

// Collect removes the members whose tombstone is older than horizon at now
// (now minus the tombstone's time exceeds horizon), and returns their IDs,
// sorted. Their counters leave the cluster's totals with them.
//
// Collection is safe when every replica has received the tombstone before
// any replica collects it: a replica that still holds the member's record
// but never saw the tombstone would otherwise bring the record back, as a
// member that is not present in gossip. The horizon must therefore exceed
// the longest time a replica can go without an anti-entropy exchange (the
// longest partition the cluster should heal from), plus clock skew between
// the remover and the collectors, since the tombstone's time is the
// remover's clock. A replica that did see the tombstone before collecting
// it only brings it back with the tombstone, to be collected again. Serf
// itself forgets left members after 24 hours (its TombstoneTimeout), which
// is a reasonable default horizon.
func (s *State) Collect(now time.Time, horizon time.Duration) []string {
	var gone []string
	for id, e := range s.m {
		if e.left && now.Sub(unixTime(e.at)) > horizon {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		e := s.m[id]
		s.bytes -= e.size(id)
		delete(s.m, id)
	}
	slices.Sort(gone)
	return gone
}

var emptyRecord = func() []byte {
	var r MemberRecord
	b, err := r.encode()
	if err != nil {
		panic(err)
	}
	return b
}()

func checkMemberID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("crdt: member ID: empty: %w", ErrInvalid)
	case len(id) > MaxMemberIDLen:
		return fmt.Errorf("crdt: member ID %s: %d bytes, at most %d allowed: %w", quoteShort(id), len(id), MaxMemberIDLen, ErrTooLarge)
	case !utf8.ValidString(id):
		return fmt.Errorf("crdt: member ID %s: not valid UTF-8: %w", quoteShort(id), ErrInvalid)
	}
	return nil
}
