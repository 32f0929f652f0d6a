package crdt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecordBounds(t *testing.T) {
	t.Parallel()
	names := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d", size, i)
		}
		return out
	}
	shards := func(n int) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i)
		}
		return out
	}
	meta := func(n, klen, vlen int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("%0*d", klen, i)] = strings.Repeat("v", vlen)
		}
		return m
	}
	tests := []struct {
		name    string
		rec     MemberRecord
		wantErr error
		field   string // must appear in the error
	}{
		{name: "empty", rec: MemberRecord{}},
		{name: "60 node types of 35 bytes", rec: MemberRecord{NodeTypes: names(60, 35)}},
		{name: "most node types", rec: MemberRecord{NodeTypes: names(MaxNodeTypes, 8)}},
		{name: "too many node types", rec: MemberRecord{NodeTypes: names(MaxNodeTypes+1, 8)}, wantErr: ErrTooLarge, field: "NodeTypes"},
		{name: "node type too long", rec: MemberRecord{NodeTypes: []string{strings.Repeat("n", MaxNodeTypeLen+1)}}, wantErr: ErrTooLarge, field: "NodeTypes entry"},
		{name: "empty node type", rec: MemberRecord{NodeTypes: []string{""}}, wantErr: ErrInvalid, field: "NodeTypes entry"},
		{name: "node type not UTF-8", rec: MemberRecord{NodeTypes: []string{"\xff"}}, wantErr: ErrInvalid, field: "NodeTypes entry"},
		{name: "too many shards held", rec: MemberRecord{ShardsHeld: shards(MaxShards + 1)}, wantErr: ErrTooLarge, field: "ShardsHeld"},
		{name: "too many shards led", rec: MemberRecord{ShardsLed: shards(MaxShards + 1)}, wantErr: ErrTooLarge, field: "ShardsLed"},
		{name: "software version too long", rec: MemberRecord{SoftwareVersion: strings.Repeat("v", MaxSoftwareVersionLen+1)}, wantErr: ErrTooLarge, field: "SoftwareVersion"},
		{name: "most metadata", rec: MemberRecord{Metadata: meta(MaxMetadataKeys, 8, 512)}},
		{name: "too many metadata keys", rec: MemberRecord{Metadata: meta(MaxMetadataKeys+1, 8, 1)}, wantErr: ErrTooLarge, field: "Metadata"},
		{name: "metadata key too long", rec: MemberRecord{Metadata: meta(1, MaxMetadataKeyLen+1, 1)}, wantErr: ErrTooLarge, field: "Metadata key"},
		{name: "empty metadata key", rec: MemberRecord{Metadata: map[string]string{"": "x"}}, wantErr: ErrInvalid, field: "Metadata key"},
		{name: "metadata value too long", rec: MemberRecord{Metadata: meta(1, 4, MaxMetadataValueLen+1)}, wantErr: ErrTooLarge, field: "Metadata value"},
		{name: "metadata value not UTF-8", rec: MemberRecord{Metadata: map[string]string{"k": "\xff"}}, wantErr: ErrInvalid, field: "Metadata value"},
		{name: "start time out of range", rec: MemberRecord{StartedAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, wantErr: ErrInvalid, field: "StartedAt"},
		{name: "whole record over 64 KiB", rec: MemberRecord{Metadata: meta(MaxMetadataKeys, MaxMetadataKeyLen, MaxMetadataValueLen)}, wantErr: ErrTooLarge, field: "record is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.rec.Validate()
			s := NewState()
			_, setErr := s.SetRecord("m1", 1, tt.rec)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.NoError(t, setErr)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.field)
			require.ErrorIs(t, setErr, tt.wantErr)
			require.ErrorContains(t, setErr, tt.field)
			require.Equal(t, 0, s.Len(), "a refused record must not be stored")
		})
	}
}

// TestRecordCanonical: order and duplicates in lists do not change the
// encoding, and a stored record comes back sorted, unique, in UTC.
func TestRecordCanonical(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("X", 3600)
	a := MemberRecord{
		NodeTypes:  []string{"b", "a", "b"},
		ShardsHeld: []uint64{3, 1, 3},
		ShardsLed:  []uint64{3},
		StartedAt:  time.Date(2026, 12, 7, 4, 0, 0, 5, loc),
		Metadata:   map[string]string{"zone": "eu", "rack": "r1"},
		DiskFull:   true,
	}
	b := a.Clone()
	b.NodeTypes = []string{"a", "b"}
	b.ShardsHeld = []uint64{1, 3}
	ea, err := a.encode()
	require.NoError(t, err)
	eb, err := b.encode()
	require.NoError(t, err)
	require.Equal(t, ea, eb)

	s := NewState()
	v, err := s.SetRecord("m1", 7, a)
	require.NoError(t, err)
	require.Equal(t, Version{Incarnation: 7, Counter: 1}, v)
	got, ok := s.Record("m1")
	require.True(t, ok)
	require.Equal(t, []string{"a", "b"}, got.Data.NodeTypes)
	require.Equal(t, []uint64{1, 3}, got.Data.ShardsHeld)
	require.True(t, got.Data.StartedAt.Equal(a.StartedAt))
	require.Equal(t, time.UTC, got.Data.StartedAt.Location())
	require.Equal(t, a.Metadata, got.Data.Metadata)
	require.True(t, got.Data.DiskFull)

	// The caller's record is not aliased.
	a.Metadata["zone"] = "us"
	got, _ = s.Record("m1")
	require.Equal(t, "eu", got.Data.Metadata["zone"])
}

func TestDecodeRecordErrors(t *testing.T) {
	t.Parallel()
	good, err := (&MemberRecord{NodeTypes: []string{"a", "b"}}).encode()
	require.NoError(t, err)
	unsorted := append([]byte(nil), good...)
	unsorted[3], unsorted[5] = 'b', 'a'
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "empty", in: nil, want: "record format"},
		{name: "format", in: []byte{9}, want: "record format 9"},
		{name: "truncated", in: good[:len(good)-1], want: "truncated"},
		{name: "trailing", in: append(append([]byte(nil), good...), 0), want: "trailing"},
		{name: "unsorted node types", in: unsorted, want: "NodeTypes entry \"a\": not in strictly ascending order"},
		{name: "count beyond input", in: []byte{recordFormat, 0x7f}, want: "NodeTypes: 127 entries"},
		{name: "count beyond limit", in: []byte{recordFormat, 0x81, 0x10}, want: "NodeTypes: 2049 entries, at most 1024"},
		{name: "overlong varint", in: []byte{recordFormat, 0x80, 0x00}, want: "not minimally encoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeRecord(tt.in)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge), "%v", err)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
