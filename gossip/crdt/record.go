package crdt

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// Bounds on one member record. Records arrive from peers, so every field is
// bounded and checked on both encode and decode. The per-field limits are
// generous for their purpose (labels and capabilities, not storage); taken
// together they could exceed MaxRecordSize, which is checked on the whole
// encoded record as well.
const (
	// MaxRecordSize is the largest encoded MemberRecord, in bytes (64 KiB
	// per member).
	MaxRecordSize = 64 << 10
	// MaxMemberIDLen is the longest member ID in bytes; it equals
	// gossip.MaxNodeIDLen (this package imports nothing from graft).
	MaxMemberIDLen = 128
	// MaxNodeTypes is the most node types one member may register: ten
	// times the 60 that broke the old Serf tag, with room to spare.
	MaxNodeTypes = 1024
	// MaxNodeTypeLen is the longest node type name in bytes. Names are Go
	// identifiers or short dotted paths; 1024 names of 48 bytes fill
	// roughly 49 KiB of the record.
	MaxNodeTypeLen = 256
	// MaxShards is the most shard IDs in each of ShardsHeld and ShardsLed.
	MaxShards = 4096
	// MaxMetadataKeys is the most user metadata entries. Metadata is for
	// labels (zone, rack, build, owner), not storage.
	MaxMetadataKeys = 64
	// MaxMetadataKeyLen is the longest metadata key in bytes.
	MaxMetadataKeyLen = 256
	// MaxMetadataValueLen is the longest metadata value in bytes. 64 keys
	// of 256 bytes with values of 1 KiB fill at most 80 KiB, which the
	// record limit cuts to 64 KiB; a typical label set is well under 1 KiB.
	MaxMetadataValueLen = 1024
	// MaxSoftwareVersionLen is the longest SoftwareVersion in bytes.
	MaxSoftwareVersionLen = 128
)

// recordFormat is the first byte of an encoded MemberRecord.
const recordFormat byte = 1

// MemberRecord is what a member publishes about itself. Only the member
// itself writes its record (with SetRecord); other members merge it.
type MemberRecord struct {
	// NodeTypes are the step node types the member has registered. Order
	// and duplicates do not matter: the stored record is sorted and unique.
	NodeTypes []string
	// WorkerCapacity is the number of steps the member runs at once.
	WorkerCapacity uint64
	// Executing is the number of steps running now.
	Executing uint64
	// Queued is the number of ready steps waiting for a worker.
	Queued uint64
	// ShardsHeld are the IDs of the shards the member holds a replica of
	// (stored sorted and unique).
	ShardsHeld []uint64
	// ShardsLed are the IDs of the shards whose Raft leader the member is
	// (stored sorted and unique).
	ShardsLed []uint64
	// SoftwareVersion is the member's Graft version string.
	SoftwareVersion string
	// StartedAt is when the member started, as the caller's clock saw it.
	// It is stored as Unix nanoseconds in UTC (so it must lie within the
	// years 1678 to 2262); the zero time stays zero.
	StartedAt time.Time
	// DiskFull is set while the member refuses writes for lack of disk.
	DiskFull bool
	// Metadata is the user's key/value metadata
	// (Manager.SetMemberMetadata).
	Metadata map[string]string
}

// Validate checks r against the bounds and returns an error naming the first
// field that is out of bounds or malformed. Duplicate and unsorted list
// entries are fine: encoding sorts them.
func (r *MemberRecord) Validate() error {
	if _, err := r.encode(); err != nil {
		return fmt.Errorf("crdt: %w", err)
	}
	return nil
}

// Clone returns a deep copy of r.
func (r *MemberRecord) Clone() MemberRecord {
	c := *r
	c.NodeTypes = slices.Clone(r.NodeTypes)
	c.ShardsHeld = slices.Clone(r.ShardsHeld)
	c.ShardsLed = slices.Clone(r.ShardsLed)
	c.Metadata = maps.Clone(r.Metadata)
	return c
}

func bad(field, format string, args ...any) error {
	return fmt.Errorf("record %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalid)
}

func tooLarge(field string, n, limit int, unit string) error {
	return fmt.Errorf("record %s: %d %s, at most %d allowed: %w", field, n, unit, limit, ErrTooLarge)
}

func checkName(field, s string, limit int) error {
	switch {
	case s == "":
		return bad(field, "empty")
	case len(s) > limit:
		return tooLarge(field+" "+quoteShort(s), len(s), limit, "bytes")
	case !utf8.ValidString(s):
		return bad(field, "%s is not valid UTF-8", quoteShort(s))
	}
	return nil
}

// quoteShort quotes s, cut to 40 bytes so that an oversized value does not
// flood the error message.
func quoteShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...", s[:40])
	}
	return fmt.Sprintf("%q", s)
}

// inUnixNanoRange reports whether t is representable as Unix nanoseconds.
func inUnixNanoRange(t time.Time) bool {
	return !t.Before(time.Unix(0, math.MinInt64)) && !t.After(time.Unix(0, math.MaxInt64))
}

func sortedUnique[T interface{ ~string | ~uint64 }](in []T) []T {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// encode validates r and returns its canonical encoding.
func (r *MemberRecord) encode() ([]byte, error) {
	types := sortedUnique(r.NodeTypes)
	if len(types) > MaxNodeTypes {
		return nil, tooLarge("NodeTypes", len(types), MaxNodeTypes, "names")
	}
	for _, t := range types {
		if err := checkName("NodeTypes entry", t, MaxNodeTypeLen); err != nil {
			return nil, err
		}
	}
	held, led := sortedUnique(r.ShardsHeld), sortedUnique(r.ShardsLed)
	if len(held) > MaxShards {
		return nil, tooLarge("ShardsHeld", len(held), MaxShards, "shards")
	}
	if len(led) > MaxShards {
		return nil, tooLarge("ShardsLed", len(led), MaxShards, "shards")
	}
	if len(r.SoftwareVersion) > MaxSoftwareVersionLen {
		return nil, tooLarge("SoftwareVersion", len(r.SoftwareVersion), MaxSoftwareVersionLen, "bytes")
	}
	if !utf8.ValidString(r.SoftwareVersion) {
		return nil, bad("SoftwareVersion", "not valid UTF-8")
	}
	if len(r.Metadata) > MaxMetadataKeys {
		return nil, tooLarge("Metadata", len(r.Metadata), MaxMetadataKeys, "keys")
	}
	keys := slices.Sorted(maps.Keys(r.Metadata))
	for _, k := range keys {
		if err := checkName("Metadata key", k, MaxMetadataKeyLen); err != nil {
			return nil, err
		}
		v := r.Metadata[k]
		if len(v) > MaxMetadataValueLen {
			return nil, tooLarge("Metadata value of "+quoteShort(k), len(v), MaxMetadataValueLen, "bytes")
		}
		if !utf8.ValidString(v) {
			return nil, bad("Metadata value of "+quoteShort(k), "not valid UTF-8")
		}
	}
	started := int64(0)
	if !r.StartedAt.IsZero() {
		if !inUnixNanoRange(r.StartedAt) {
			return nil, bad("StartedAt", "%s is outside the years 1678 to 2262", r.StartedAt)
		}
		started = r.StartedAt.UnixNano()
	}

	b := []byte{recordFormat}
	b = appendUvarint(b, uint64(len(types)))
	for _, t := range types {
		b = appendString(b, t)
	}
	b = appendUvarint(b, r.WorkerCapacity)
	b = appendUvarint(b, r.Executing)
	b = appendUvarint(b, r.Queued)
	for _, ids := range [][]uint64{held, led} {
		b = appendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = appendUvarint(b, id)
		}
	}
	b = appendString(b, r.SoftwareVersion)
	b = appendVarint(b, started)
	if r.DiskFull {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.Metadata[k])
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("record is %d bytes encoded, at most %d allowed: %w", len(b), MaxRecordSize, ErrTooLarge)
	}
	return b, nil
}

// decodeRecord decodes a canonical record encoding. The returned record
// shares nothing with p.
func decodeRecord(p []byte) (MemberRecord, error) {
	var rec MemberRecord
	if len(p) > MaxRecordSize {
		return rec, fmt.Errorf("record is %d bytes, at most %d allowed: %w", len(p), MaxRecordSize, ErrTooLarge)
	}
	r := &reader{b: p}
	if f := r.byte("record format"); r.err == nil && f != recordFormat {
		r.failf("record format %d, want %d: %w", f, recordFormat, ErrInvalid)
	}
	n := r.count("NodeTypes", MaxNodeTypes, 2)
	if n > 0 {
		rec.NodeTypes = make([]string, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		t := r.string("NodeTypes entry", MaxNodeTypeLen)
		if r.err != nil {
			break
		}
		if t == "" {
			r.failf("NodeTypes entry %d: empty: %w", i, ErrInvalid)
		} else if i > 0 && t <= rec.NodeTypes[i-1] {
			r.failf("NodeTypes entry %s: not in strictly ascending order: %w", quoteShort(t), ErrInvalid)
		}
		rec.NodeTypes = append(rec.NodeTypes, t)
	}
	rec.WorkerCapacity = r.uvarint("WorkerCapacity")
	rec.Executing = r.uvarint("Executing")
	rec.Queued = r.uvarint("Queued")
	rec.ShardsHeld = r.shardList("ShardsHeld")
	rec.ShardsLed = r.shardList("ShardsLed")
	rec.SoftwareVersion = r.string("SoftwareVersion", MaxSoftwareVersionLen)
	if ns := r.varint("StartedAt"); ns != 0 {
		rec.StartedAt = time.Unix(0, ns).UTC()
	}
	switch d := r.byte("DiskFull"); {
	case r.err != nil:
	case d == 1:
		rec.DiskFull = true
	case d != 0:
		r.failf("DiskFull: byte %d, want 0 or 1: %w", d, ErrInvalid)
	}
	n = r.count("Metadata", MaxMetadataKeys, 3)
	if n > 0 {
		rec.Metadata = make(map[string]string, n)
	}
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		k := r.string("Metadata key", MaxMetadataKeyLen)
		v := r.string("Metadata value", MaxMetadataValueLen)
		if r.err != nil {
			break
		}
		if k == "" {
			r.failf("Metadata key %d: empty: %w", i, ErrInvalid)
		} else if i > 0 && k <= prev {
			r.failf("Metadata key %s: not in strictly ascending order: %w", quoteShort(k), ErrInvalid)
		}
		rec.Metadata[k] = v
		prev = k
	}
	r.end("record")
	if r.err != nil {
		return MemberRecord{}, fmt.Errorf("decoding record: %w", r.err)
	}
	return rec, nil
}

func (r *reader) shardList(what string) []uint64 {
	n := r.count(what, MaxShards, 1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		id := r.uvarint2(what, " entry")
		if r.err == nil && i > 0 && id <= ids[i-1] {
			r.failf("%s entry %d: not in strictly ascending order: %w", what, id, ErrInvalid)
		}
		ids = append(ids, id)
	}
	return ids
}
