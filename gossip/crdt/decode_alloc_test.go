package crdt

import (
	"fmt"
	"runtime"
	"testing"

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
