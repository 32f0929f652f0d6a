package crdt

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeAllocationBound: Decode allocates at most 16 times its input's
// length (plus 16 KiB), for valid states of many small members (the worst
// ratio: per-member map overhead against a ~25-byte encoding), of large
// records, and for inputs that claim large counts.
func TestDecodeAllocationBound(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	many := NewState()
	for i := range MaxMembers {
		many.put(fmt.Sprint(i), entry{ver: Version{0, 1}, rec: emptyRecord})
	}
	large := NewState()
	for i := range 64 {
		rec := MemberRecord{Metadata: map[string]string{}}
		for k := range 60 {
			rec.Metadata[fmt.Sprint("key-", k)] = string(make([]byte, MaxMetadataValueLen))
		}
		_, err := large.SetRecord(fmt.Sprint("m", i), 1, rec)
		require.NoError(t, err)
	}
	inputs := map[string][]byte{
		"64 members of 60 KiB":           large.Encode(),
		"10,000 minimal members":         many.Encode(),
		"seed":                           seedState(t).Encode(),
		"huge member count":              {stateFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"count at the limit, no entries": append([]byte{stateFormat, 0x90, 0x4e}, make([]byte, 100)...),
		"huge record length":             {stateFormat, 1, 1, 'a', 0, 1, 0xff, 0xff, 0x03},
	}
	const ratio, slack = 16, 16 << 10
	for name, p := range inputs {
		n := allocated(func() { _, _ = Decode(p) })
		t.Logf("%s: %d bytes in, %d allocated", name, len(p), n)
		require.LessOrEqual(t, n, uint64(ratio*len(p)+slack), name)
	}
	d := many.Digest().Encode()
	n := allocated(func() { _, _ = DecodeDigest(d) })
	t.Logf("digest of 10,000 members: %d bytes in, %d allocated", len(d), n)
	require.LessOrEqual(t, n, uint64(ratio*len(d)+slack))
}

func TestDecodeStateErrors(t *testing.T) {
	t.Parallel()
	s := NewState()
	_, err := s.SetRecord("m1", 1, MemberRecord{})
	require.NoError(t, err)
	_, err = s.SetRecord("m2", 1, MemberRecord{})
	require.NoError(t, err)
	_, err = s.Leave("m2", time.Unix(5, 0))
	require.NoError(t, err)
	good := s.Encode()
	_, err = Decode(good)
	require.NoError(t, err)

	swapped := strings.Replace(string(good), "m2", "m0", 1) // m1 then m0
	zeroVer := append([]byte(nil), good...)
	zeroVer[6] = 0 // m1's version counter
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "empty", in: nil, want: "state format"},
		{name: "format", in: []byte{2, 0}, want: "state format 2"},
		{name: "members beyond input", in: []byte{stateFormat, 0x7f}, want: "members: 127 entries"},
		{name: "members beyond limit", in: []byte{stateFormat, 0x91, 0x4e}, want: "members: 10001 entries, at most 10000"},
		{name: "unsorted", in: []byte(swapped), want: `member "m0": not in strictly ascending order`},
		{name: "zero version", in: zeroVer, want: `member "m1": version 1.0: counter is zero`},
		{name: "truncated", in: good[:len(good)-1], want: "truncated"},
		{name: "trailing", in: append(append([]byte(nil), good...), 0), want: "trailing"},
		{name: "too large", in: make([]byte, MaxStateSize+1), want: "at most 67108864"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(tt.in)
			require.Error(t, err)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
