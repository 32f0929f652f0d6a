package wf

import (
	"bytes"
	"sort"
)

// memKV is an in-memory shards.Writer for driving the state machine by hand.
type memKV struct{ m map[string][]byte }

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (kv *memKV) Get(k []byte) ([]byte, bool, error) {
	v, ok := kv.m[string(k)]
	return append([]byte(nil), v...), ok, nil
}

func (kv *memKV) Scan(start, end []byte, fn func(k, v []byte) bool) error {
	keys := make([]string, 0, len(kv.m))
	for k := range kv.m {
		if bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), kv.m[k]) {
			return nil
		}
	}
	return nil
}

func (kv *memKV) Set(k, v []byte) error { kv.m[string(k)] = append([]byte(nil), v...); return nil }
func (kv *memKV) Delete(k []byte) error { delete(kv.m, string(k)); return nil }
