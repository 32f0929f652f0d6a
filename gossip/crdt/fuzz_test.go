package crdt

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// seedState is a small state with every feature: records with every field,
// counters, a tombstone.
func seedState(tb testing.TB) *State {
	tb.Helper()
	s := NewState()
	_, err := s.SetRecord("node-1", 3, MemberRecord{
		NodeTypes:       []string{"fetch", "parse"},
		WorkerCapacity:  8,
		Executing:       2,
		Queued:          1,
		ShardsHeld:      []uint64{1, 2, 5},
		ShardsLed:       []uint64{2},
		SoftwareVersion: "v0.4.0",
		StartedAt:       time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC),
		DiskFull:        true,
		Metadata:        map[string]string{"rack": "r7", "zone": "eu-1"},
	})
	if err == nil {
		_, err = s.Add("node-1", 3, StepsExecuted, 42)
	}
	if err == nil {
		_, err = s.SetRecord("node-2", 1, MemberRecord{NodeTypes: []string{"store"}})
	}
	if err == nil {
		_, err = s.Leave("node-2", time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzDecodeState: Decode never panics; whatever it accepts is canonical
// (re-encodes to the input), merges lawfully into another state, and
// whatever it refuses is refused with ErrInvalid or ErrTooLarge.
func FuzzDecodeState(f *testing.F) {
	seed := seedState(f)
	f.Add(seed.Encode())
	f.Add(NewState().Encode())
	f.Add(seed.Subset("node-2").Encode())
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := Decode(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrTooLarge: %v", err)
			}
			return
		}
		if enc := s.Encode(); !bytes.Equal(enc, p) {
			t.Fatalf("accepted a non-canonical encoding:\n in  %x\n out %x", p, enc)
		}
		for _, id := range s.IDs() {
			if _, ok := s.Record(id); !ok {
				t.Fatalf("member %q has no record", id)
			}
		}
		base := seedState(t)
		ab, ba := base.Clone(), s.Clone()
		if err := ab.Merge(s); err != nil {
			t.Fatalf("merge: %v", err)
		}
		if err := ba.Merge(base); err != nil {
			t.Fatalf("merge: %v", err)
		}
		if !ab.Equal(ba) {
			t.Fatalf("merge is not commutative")
		}
		again := ab.Clone()
		if err := again.Merge(s); err != nil || !again.Equal(ab) {
			t.Fatalf("merge is not idempotent (err %v)", err)
		}
		delta := base.Clone()
		if err := delta.Merge(s.DeltaFor(base.Digest(), 0)); err != nil || !delta.Equal(ab) {
			t.Fatalf("merging DeltaFor differs from merging the state (err %v)", err)
		}
	})
}

// FuzzDecodeDigest: DecodeDigest never panics and accepts only canonical
// encodings; DeltaFor answers any accepted digest.
func FuzzDecodeDigest(f *testing.F) {
	seed := seedState(f)
	f.Add(seed.Digest().Encode())
	f.Add(NewState().Digest().Encode())
	f.Fuzz(func(t *testing.T, p []byte) {
		d, err := DecodeDigest(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrTooLarge: %v", err)
			}
			return
		}
		if enc := d.Encode(); !bytes.Equal(enc, p) {
			t.Fatalf("accepted a non-canonical encoding:\n in  %x\n out %x", p, enc)
		}
		s := seedState(t)
		got := NewState()
		if err := got.Merge(s.DeltaFor(d, 0)); err != nil {
			t.Fatalf("merge: %v", err)
		}
	})
}
