package crdt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Encoding of a State (after the format byte, uvarint member count):
//
//	per member, in strictly ascending ID order:
//	  ID                     string
//	  version                uvarint incarnation, uvarint counter (counter >= 1)
//	  record                 length-prefixed MemberRecord encoding
//	  counters               NumCounters uvarints
//	  left                   byte 0 or 1; if 1: observed version (two
//	                         uvarints), time (varint Unix nanoseconds)
//
// A tombstone's observed version is at most the record's version and of the
// same incarnation (merge drops the others), so decoding refuses anything
// else as non-canonical.

// appendEntry appends the encoding of member's entry e to b.
func appendEntry(b []byte, id string, e *entry) []byte {
	b = appendString(b, id)
	b = appendUvarint(b, e.ver.Incarnation)
	b = appendUvarint(b, e.ver.Counter)
	b = appendBytes(b, e.rec)
	for _, c := range e.counters {
		b = appendUvarint(b, c)
	}
	if !e.left {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendUvarint(b, e.obs.Incarnation)
	b = appendUvarint(b, e.obs.Counter)
	return appendVarint(b, e.at)
}

// Encode returns the canonical encoding of s: equal states encode to equal
// bytes (members in ID order, records in their canonical form).
func (s *State) Encode() []byte {
	b := make([]byte, 0, s.bytes+16)
	b = append(b, stateFormat)
	b = appendUvarint(b, uint64(len(s.m)))
	for _, id := range s.IDs() {
		e := s.m[id]
		b = appendEntry(b, id, &e)
	}
	return b
}

// Decode decodes a State encoded by Encode, typically received from a peer.
// It never panics, refuses input beyond MaxStateSize or any other bound, and
// allocates at most 16 times len(p) plus a few KiB (about 2 times for large
// records, 10 times for 10,000 minimal members; TestDecodeAllocationBound):
// every count and length is checked against the remaining input before
// anything is allocated. It accepts only canonical encodings, so
// Decode(p).Encode() equals p. The error names what is wrong and wraps
// ErrInvalid or ErrTooLarge.
func Decode(p []byte) (*State, error) {
	if len(p) > MaxStateSize {
		return nil, fmt.Errorf("crdt: decoding state: %d bytes, at most %d allowed: %w", len(p), MaxStateSize, ErrTooLarge)
	}
	r := &reader{b: p}
	if f := r.byte("state format"); r.err == nil && f != stateFormat {
		r.failf("state format %d, want %d: %w", f, stateFormat, ErrInvalid)
	}
	n := r.count("members", MaxMembers, minEntrySize)
	s := &State{m: make(map[string]entry, n)}
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		id := r.memberID(i, prev)
		e := r.entry(id)
		if r.err != nil {
			break
		}
		s.put(id, e)
		prev = id
	}
	r.end("state")
	if r.err == nil && s.bytes > MaxStateSize {
		r.failf("members take %d bytes, at most %d allowed: %w", s.bytes, MaxStateSize, ErrTooLarge)
	}
	if r.err != nil {
		return nil, fmt.Errorf("crdt: decoding state: %w", r.err)
	}
	return s, nil
}

// memberID reads the i-th member ID, which must follow prev.
func (r *reader) memberID(i int, prev string) string {
	id := r.string("member ID", MaxMemberIDLen)
	switch {
	case r.err != nil:
	case id == "":
		r.failf("member %d: empty ID: %w", i, ErrInvalid)
	case i > 0 && id <= prev:
		r.failf("member %s: not in strictly ascending order: %w", quoteShort(id), ErrInvalid)
	}
	return id
}

func (r *reader) version(what string) Version {
	v := Version{Incarnation: r.uvarint2(what, " incarnation"), Counter: r.uvarint2(what, " counter")}
	if r.err == nil && v.Counter == 0 {
		r.failf("%s %s: counter is zero: %w", what, v, ErrInvalid)
	}
	return v
}

// counterFields name the counters in decoding errors.
var counterFields = func() (names [NumCounters]string) {
	for i := range names {
		names[i] = "counter " + Counter(i).String()
	}
	return names
}()

// entry reads the entry of member id.
func (r *reader) entry(id string) entry {
	var e entry
	r.member = id
	defer func() { r.member = "" }()
	e.ver = r.version("version")
	rec := r.raw("record", MaxRecordSize)
	if r.err != nil {
		return e
	}
	if _, err := decodeRecord(rec); err != nil {
		r.fail(err)
		return e
	}
	e.rec = slices.Clone(rec)
	for i := range e.counters {
		e.counters[i] = r.uvarint(counterFields[i])
	}
	switch l := r.byte("left flag"); {
	case r.err != nil:
	case l == 0:
	case l == 1:
		e.left = true
		e.obs = r.version("tombstone version")
		e.at = r.varint("tombstone time")
		if r.err == nil && (e.ver.Less(e.obs) || e.obs.Incarnation != e.ver.Incarnation) {
			r.failf("tombstone version %s does not cover record version %s: %w", e.obs, e.ver, ErrInvalid)
		}
	default:
		r.failf("left flag: byte %d, want 0 or 1: %w", l, ErrInvalid)
	}
	return e
}

// DigestEntry summarises one member's entry for anti-entropy: enough to
// tell whether the entry a peer holds supersedes it.
type DigestEntry struct {
	// Version is the member's record version.
	Version Version
	// Left is the tombstone's observed version; zero if the member has
	// not left.
	Left Version
	// LeftAt is the tombstone's time in Unix nanoseconds; zero if the
	// member has not left.
	LeftAt int64
	// Counters are the member's counters.
	Counters Counters
	// RecordSum is the first 8 bytes (big-endian) of the SHA-256 of the
	// record's encoding. Merge breaks ties between different records of
	// equal versions by it, so the digest tells which record would win.
	RecordSum uint64
}

// supersedes reports whether merging e into the entry d describes would
// change nothing: d's record is newer, or of the same version and not
// losing the tie (see entry.merge), its tombstone at least as new, its
// counters at least as high. Two different records with equal versions and
// equal RecordSums (a SHA-256 prefix collision) are taken as the same.
func (d *DigestEntry) supersedes(e *entry) bool {
	switch c := e.ver.Compare(d.Version); {
	case c > 0, c == 0 && recordSum(e.rec) > d.RecordSum:
		return false
	}
	// A tombstone of an earlier incarnation than d's record is dropped by
	// the merge, whatever d's own tombstone.
	if e.left && e.obs.Incarnation >= d.Version.Incarnation {
		switch c := e.obs.Compare(d.Left); {
		case c > 0, c == 0 && e.at > d.LeftAt:
			return false
		}
	}
	for i, c := range e.counters {
		if c > d.Counters[i] {
			return false
		}
	}
	return true
}

func recordSum(rec []byte) uint64 {
	h := sha256.Sum256(rec)
	return binary.BigEndian.Uint64(h[:8])
}

// Digest is a summary of a State: per member, its versions, counters and a
// hash of its record. A replica sends its Digest to a peer, and the peer answers with
// DeltaFor(digest), the entries the replica lacks (push-pull anti-entropy:
// both sides do it).
type Digest map[string]DigestEntry

// Digest returns the digest of s.
func (s *State) Digest() Digest {
	d := make(Digest, len(s.m))
	for id, e := range s.m {
		d[id] = e.digest()
	}
	return d
}

func (e *entry) digest() DigestEntry {
	de := DigestEntry{Version: e.ver, Counters: e.counters, RecordSum: recordSum(e.rec)}
	if e.left {
		de.Left, de.LeftAt = e.obs, e.at
	}
	return de
}

// DeltaFor returns the entries of s that the holder of digest d lacks:
// every entry whose merge into the holder's entry would change something
// (a newer record, or an equal version with a record that wins the tie; a
// newer tombstone; a higher counter), and every member d does not list. Merging
// the delta into the holder's state gives the same result as merging all of
// s. If maxBytes > 0, members are taken in ID order until the next would
// take the delta's size (as MaxStateSize counts it) beyond maxBytes (but at
// least one is taken); the next exchange sends the rest.
func (s *State) DeltaFor(d Digest, maxBytes int) *State {
	out := NewState()
	for _, id := range s.IDs() {
		e := s.m[id]
		if de, ok := d[id]; ok {
			if de.supersedes(&e) {
				continue
			}
		}
		if maxBytes > 0 && out.Len() > 0 && out.bytes+e.size(id) > maxBytes {
			break
		}
		out.put(id, e)
	}
	return out
}

// digestFormat is the first byte of an encoded Digest.
const digestFormat byte = 1

// Encode returns the canonical encoding of d: format byte, uvarint count,
// then per member in ascending ID order its ID, four uvarints (version and
// tombstone version), the tombstone time (varint), NumCounters uvarints and
// the record hash as 8 little-endian bytes.
func (d Digest) Encode() []byte {
	ids := make([]string, 0, len(d))
	for id := range d {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := []byte{digestFormat}
	b = appendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		de := d[id]
		b = appendString(b, id)
		b = appendUvarint(b, de.Version.Incarnation)
		b = appendUvarint(b, de.Version.Counter)
		b = appendUvarint(b, de.Left.Incarnation)
		b = appendUvarint(b, de.Left.Counter)
		b = appendVarint(b, de.LeftAt)
		for _, c := range de.Counters {
			b = appendUvarint(b, c)
		}
		b = binary.LittleEndian.AppendUint64(b, de.RecordSum)
	}
	return b
}

// DecodeDigest decodes a Digest encoded by Digest.Encode. Like Decode it
// never panics, refuses more than MaxMembers entries and non-canonical
// input, and allocates at most a small multiple of len(p).
func DecodeDigest(p []byte) (Digest, error) {
	r := &reader{b: p}
	if f := r.byte("digest format"); r.err == nil && f != digestFormat {
		r.failf("digest format %d, want %d: %w", f, digestFormat, ErrInvalid)
	}
	n := r.count("digest members", MaxMembers, minDigestEntrySize)
	d := make(Digest, n)
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		id := r.memberID(i, prev)
		r.member = id
		var de DigestEntry
		de.Version.Incarnation = r.uvarint("version incarnation")
		de.Version.Counter = r.uvarint("version counter")
		de.Left.Incarnation = r.uvarint("tombstone incarnation")
		de.Left.Counter = r.uvarint("tombstone counter")
		de.LeftAt = r.varint("tombstone time")
		for i := range de.Counters {
			de.Counters[i] = r.uvarint(counterFields[i])
		}
		if r.err == nil && len(r.b) < 8 {
			r.failf("record sum: %w", errTruncated)
		}
		if r.err != nil {
			break
		}
		de.RecordSum = binary.LittleEndian.Uint64(r.b)
		r.b = r.b[8:]
		r.member = ""
		d[id] = de
		prev = id
	}
	r.end("digest")
	if r.err != nil {
		return nil, fmt.Errorf("crdt: decoding digest: %w", r.err)
	}
	return d, nil
}

// Smallest encodings of one member: a one-byte ID, a version, the empty
// record, zero counters and no tombstone; a digest entry with a one-byte ID.
var (
	minEntrySize       = 2 + 2 + 1 + len(emptyRecord) + NumCounters + 1
	minDigestEntrySize = 2 + 5 + NumCounters + 8
)

// unixTime converts Unix nanoseconds to a UTC time.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
