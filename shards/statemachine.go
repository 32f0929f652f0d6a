package shards

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"

	"github.com/cockroachdb/pebble"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// stateMachine is the Dragonboat on-disk state machine of one shard replica.
// Its data lives in the Host's shared Pebble database under the shard prefix.
type stateMachine struct {
	db        *pebble.DB
	shardID   uint64
	replicaID uint64
	logic     Logic
	log       *slog.Logger
	stats     *shardStats
}

var (
	_ sm.IOnDiskStateMachine = (*stateMachine)(nil)
	_ sm.IHash               = (*stateMachine)(nil)
)

// Open loads Logic's indexes and returns the durable applied index.
func (s *stateMachine) Open(stopc <-chan struct{}) (uint64, error) {
	applied, err := readApplied(s.db, s.shardID)
	if err != nil {
		return 0, err
	}
	if err := s.upgrade(); err != nil {
		return 0, err
	}
	if err := s.logic.Open(newPrefixed(s.db, s.shardID)); err != nil {
		return 0, fmt.Errorf("logic open: %w", err)
	}
	s.log.Debug("state machine opened", "applied", applied)
	return applied, nil
}

// upgrade runs Logic's Upgrade, if it has one, and commits its writes.
func (s *stateMachine) upgrade() error {
	u, ok := s.logic.(Upgrader)
	if !ok {
		return nil
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	if err := u.Upgrade(newBatchWriter(b, s.shardID)); err != nil {
		return fmt.Errorf("logic upgrade: %w", err)
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebble commit upgrade: %w", err)
	}
	level := slog.LevelDebug // a new keyspace only gains its layout marker
	if b.Count() > 1 {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "state machine upgraded", "writes", b.Count(), "bytes", b.Len())
	return nil
}

// Update applies every command of every entry in one Pebble batch, stores the
// last index with it, commits, and only then calls Logic.Applied.
func (s *stateMachine) Update(entries []sm.Entry) ([]sm.Entry, error) {
	if len(entries) == 0 {
		return entries, nil
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	w := newBatchWriter(b, s.shardID)
	var commands uint64
	for i := range entries {
		e := &entries[i]
		cmds, err := decodeBatch(e.Cmd)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		results := make([][]byte, len(cmds))
		for j, cmd := range cmds {
			res, err := s.logic.Apply(w, e.Index, cmd)
			if err != nil {
				return nil, fmt.Errorf("logic apply at index %d: %w", e.Index, err)
			}
			results[j] = res
		}
		commands += uint64(len(cmds))
		e.Result = sm.Result{Value: uint64(len(cmds)), Data: encodeBatch(results)}
	}
	last := entries[len(entries)-1].Index
	if err := b.Set(appliedKey(s.shardID), encodeUint64(last), nil); err != nil {
		return nil, fmt.Errorf("pebble set applied index: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("pebble commit: %w", err)
	}
	s.stats.entries.Add(uint64(len(entries)))
	s.stats.commands.Add(commands)
	s.logic.Applied(last)
	return entries, nil
}

// Lookup answers a []byte query through Logic against committed state.
func (s *stateMachine) Lookup(query interface{}) (interface{}, error) {
	q, ok := query.([]byte)
	if !ok {
		return nil, fmt.Errorf("graft: shards: query must be []byte, got %T", query)
	}
	// One snapshot, so a query reading several keys sees one committed
	// batch, never half of the next.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return s.logic.Lookup(newPrefixed(snap, s.shardID), q)
}

// Sync makes every committed Update durable by syncing Pebble's WAL.
func (s *stateMachine) Sync() error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("pebble sync: %w", err)
	}
	return nil
}

// PrepareSnapshot captures a point-in-time Pebble snapshot.
func (s *stateMachine) PrepareSnapshot() (interface{}, error) {
	return s.db.NewSnapshot(), nil
}

// Snapshot stream format: 8-byte BE applied index, then records of
// (1, uvarint key len, key, uvarint value len, value) and a final 0 byte.
// Keys are Logic keys without any prefix, so a stream can be loaded into a
// shard with a different ID.

// SaveSnapshot streams the shard's applied index and Logic keys.
func (s *stateMachine) SaveSnapshot(ctx interface{}, w io.Writer, stopc <-chan struct{}) error {
	snap, ok := ctx.(*pebble.Snapshot)
	if !ok {
		return fmt.Errorf("graft: shards: snapshot context is %T", ctx)
	}
	defer snap.Close()
	return writeSnapshot(snap, s.shardID, w, stopc)
}

func writeSnapshot(r pebble.Reader, shardID uint64, w io.Writer, stopc <-chan struct{}) error {
	applied, err := readApplied(r, shardID)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(encodeUint64(applied)); err != nil {
		return err
	}
	var werr error
	n := 0
	var hdr [1 + binary.MaxVarintLen64]byte
	scanErr := newPrefixed(r, shardID).Scan(nil, nil, func(k, v []byte) bool {
		if n%1024 == 0 && isStopped(stopc) {
			werr = sm.ErrSnapshotStopped
			return false
		}
		n++
		hdr[0] = 1
		m := binary.PutUvarint(hdr[1:], uint64(len(k)))
		if _, werr = bw.Write(hdr[:1+m]); werr != nil {
			return false
		}
		if _, werr = bw.Write(k); werr != nil {
			return false
		}
		m = binary.PutUvarint(hdr[:], uint64(len(v)))
		if _, werr = bw.Write(hdr[:m]); werr != nil {
			return false
		}
		_, werr = bw.Write(v)
		return werr == nil
	})
	if err := errors.Join(scanErr, werr); err != nil {
		return err
	}
	if err := bw.WriteByte(0); err != nil {
		return err
	}
	return bw.Flush()
}

// RecoverFromSnapshot replaces the shard's keys with the stream's content in
// one batch, then reopens Logic.
func (s *stateMachine) RecoverFromSnapshot(r io.Reader, stopc <-chan struct{}) error {
	if err := loadSnapshot(s.db, s.shardID, r, stopc); err != nil {
		return err
	}
	if err := s.upgrade(); err != nil {
		return err
	}
	if err := s.logic.Open(newPrefixed(s.db, s.shardID)); err != nil {
		return fmt.Errorf("logic open: %w", err)
	}
	return nil
}

func loadSnapshot(db *pebble.DB, shardID uint64, r io.Reader, stopc <-chan struct{}) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var idx [8]byte
	if _, err := io.ReadFull(br, idx[:]); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	b := db.NewBatch()
	defer b.Close()
	start, end := shardRange(shardID)
	if err := b.DeleteRange(start, end, nil); err != nil {
		return err
	}
	if err := b.Set(appliedKey(shardID), idx[:], nil); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n%1024 == 0 && isStopped(stopc) {
			return sm.ErrSnapshotStopped
		}
		flag, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		if flag == 0 {
			break
		}
		k, err := readChunk(br)
		if err != nil {
			return err
		}
		v, err := readChunk(br)
		if err != nil {
			return err
		}
		if err := b.Set(dataKey(shardID, k), v, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebble commit snapshot: %w", err)
	}
	return nil
}

func readChunk(br *bufio.Reader) ([]byte, error) {
	l, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("snapshot record: %w", err)
	}
	if l > 1<<31 {
		return nil, fmt.Errorf("snapshot record: length %d too large", l)
	}
	buf := make([]byte, l)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("snapshot record: %w", err)
	}
	return buf, nil
}

// Close releases per-replica resources. The shared Pebble database is closed
// by the Host, not here.
func (s *stateMachine) Close() error { return nil }

// GetHash returns a hash of the shard's Logic keys and values.
func (s *stateMachine) GetHash() (uint64, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	h, _, err := stateHash(snap, s.shardID)
	return h, err
}

// stateHash hashes the shard's Logic keyspace and returns it with the applied
// index read from the same view.
func stateHash(r pebble.Reader, shardID uint64) (hash, applied uint64, err error) {
	applied, err = readApplied(r, shardID)
	if err != nil {
		return 0, 0, err
	}
	h := fnv.New64a()
	var lb [binary.MaxVarintLen64]byte
	err = newPrefixed(r, shardID).Scan(nil, nil, func(k, v []byte) bool {
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(k)))])
		h.Write(k)
		h.Write(lb[:binary.PutUvarint(lb[:], uint64(len(v)))])
		h.Write(v)
		return true
	})
	return h.Sum64(), applied, err
}

func readApplied(r pebble.Reader, shardID uint64) (uint64, error) {
	v, closer, err := r.Get(appliedKey(shardID))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pebble read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("graft: shards: corrupt applied index for shard %d", shardID)
	}
	return binary.BigEndian.Uint64(v), nil
}

func isStopped(stopc <-chan struct{}) bool {
	select {
	case <-stopc:
		return true
	default:
		return false
	}
}
