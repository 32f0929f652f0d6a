package shards

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// prefixed adapts a pebble reader (DB, Snapshot or indexed Batch) to Reader
// for one shard's Logic keyspace.
type prefixed struct {
	r      pebble.Reader
	prefix []byte // shard prefix + data sub-prefix
}

var _ Reader = prefixed{}

func newPrefixed(r pebble.Reader, shardID uint64) prefixed {
	return prefixed{r: r, prefix: shardPrefix(shardID, dataSubPrefix)}
}

func (p prefixed) abs(key []byte) []byte {
	k := make([]byte, 0, len(p.prefix)+len(key))
	return append(append(k, p.prefix...), key...)
}

// Get returns a copy of the value stored under key.
func (p prefixed) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := p.r.Get(p.abs(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	return out, true, nil
}

// Scan iterates [start, end) of the shard's Logic keyspace.
func (p prefixed) Scan(start, end []byte, fn func(key, value []byte) bool) error {
	upper := p.abs(end)
	if end == nil {
		upper = append(bytes.Clone(p.prefix[:shardPrefixLen]), dataSubPrefix+1)
	}
	it := p.r.NewIter(&pebble.IterOptions{LowerBound: p.abs(start), UpperBound: upper})
	for valid := it.First(); valid; valid = it.Next() {
		if !fn(it.Key()[len(p.prefix):], it.Value()) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble scan: %w", err)
	}
	return nil
}

// batchWriter is the Writer handed to Logic.Apply: an indexed pebble batch.
type batchWriter struct {
	prefixed
	b *pebble.Batch
}

var _ Writer = batchWriter{}

func newBatchWriter(b *pebble.Batch, shardID uint64) batchWriter {
	return batchWriter{prefixed: newPrefixed(b, shardID), b: b}
}

// Set stores value under key in the batch.
func (w batchWriter) Set(key, value []byte) error {
	if err := w.b.Set(w.abs(key), value, nil); err != nil {
		return fmt.Errorf("pebble set: %w", err)
	}
	return nil
}

// Delete removes key in the batch.
func (w batchWriter) Delete(key []byte) error {
	if err := w.b.Delete(w.abs(key), nil); err != nil {
		return fmt.Errorf("pebble delete: %w", err)
	}
	return nil
}
