package crdt

import (
	"fmt"
	"time"

	"pgregory.net/rapid"
)

// Generators shared by the property tests. IDs, versions and values come
// from small ranges so that random states collide often (equal versions,
// equal members), which is where merge bugs live.

var testMembers = []string{"a", "b", "c", "d"}

var testEpoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func genRecord() *rapid.Generator[MemberRecord] {
	return rapid.Custom(func(t *rapid.T) MemberRecord {
		r := MemberRecord{
			NodeTypes:       rapid.SliceOfN(rapid.SampledFrom([]string{"fetch", "parse", "store", "notify"}), 0, 3).Draw(t, "types"),
			WorkerCapacity:  rapid.Uint64Range(0, 16).Draw(t, "capacity"),
			Executing:       rapid.Uint64Range(0, 4).Draw(t, "executing"),
			Queued:          rapid.Uint64Range(0, 4).Draw(t, "queued"),
			ShardsHeld:      rapid.SliceOfN(rapid.Uint64Range(1, 8), 0, 4).Draw(t, "held"),
			ShardsLed:       rapid.SliceOfN(rapid.Uint64Range(1, 8), 0, 2).Draw(t, "led"),
			SoftwareVersion: rapid.SampledFrom([]string{"", "v1.0.0", "v1.1.0"}).Draw(t, "version"),
			DiskFull:        rapid.Bool().Draw(t, "diskFull"),
		}
		if rapid.Bool().Draw(t, "started") {
			r.StartedAt = testEpoch.Add(time.Duration(rapid.IntRange(0, 3).Draw(t, "startSec")) * time.Second)
		}
		if n := rapid.IntRange(0, 2).Draw(t, "metaN"); n > 0 {
			r.Metadata = make(map[string]string, n)
			for i := range n {
				k := rapid.SampledFrom([]string{"zone", "rack", "owner"}).Draw(t, fmt.Sprint("key", i))
				r.Metadata[k] = rapid.SampledFrom([]string{"", "x", "eu-1"}).Draw(t, fmt.Sprint("value", i))
			}
		}
		return r
	})
}

// genState draws an arbitrary canonical state: random versions, records,
// counters and tombstones per member, unrelated to one another, so equal
// versions with different contents (which correct members never produce)
// occur too. The merge laws must hold for these as well.
func genState() *rapid.Generator[*State] {
	return rapid.Custom(func(t *rapid.T) *State {
		s := NewState()
		for _, id := range testMembers {
			if !rapid.Bool().Draw(t, id+" present") {
				continue
			}
			rec := genRecord().Draw(t, id+" record")
			enc, err := rec.encode()
			if err != nil {
				t.Fatalf("generated record does not encode: %v", err)
			}
			e := entry{
				ver: Version{
					Incarnation: rapid.Uint64Range(0, 2).Draw(t, id+" inc"),
					Counter:     rapid.Uint64Range(1, 3).Draw(t, id+" ctr"),
				},
				rec: enc,
			}
			for i := range e.counters {
				e.counters[i] = rapid.Uint64Range(0, 3).Draw(t, fmt.Sprint(id, " counter ", i))
			}
			if rapid.Bool().Draw(t, id+" left") {
				e.left = true
				e.obs = Version{Incarnation: e.ver.Incarnation, Counter: rapid.Uint64Range(1, e.ver.Counter).Draw(t, id+" obs")}
				e.at = testEpoch.Add(time.Duration(rapid.IntRange(0, 3).Draw(t, id+" at")) * time.Second).UnixNano()
			}
			s.put(id, e)
		}
		return s
	})
}

func mergeOf(t interface{ Fatalf(string, ...any) }, states ...*State) *State {
	out := NewState()
	for _, s := range states {
		if err := out.Merge(s); err != nil {
			t.Fatalf("merge: %v", err)
		}
	}
	return out
}
