package shards

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/stretchr/testify/require"
)

func openMemDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("state", &pebble.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

func newTestSM(t *testing.T, db *pebble.DB, shardID uint64) (*stateMachine, *testLogic) {
	t.Helper()
	l := newTestLogic()
	s := &stateMachine{db: db, shardID: shardID, replicaID: 1, logic: l, log: slog.New(slog.DiscardHandler), stats: &shardStats{}}
	idx, err := s.Open(nil)
	require.NoError(t, err)
	require.Zero(t, idx)
	return s, l
}

// update applies entries of the given commands, one entry per inner slice.
func update(t *testing.T, s *stateMachine, first uint64, entries ...[]string) []sm.Entry {
	t.Helper()
	es := make([]sm.Entry, len(entries))
	for i, cmds := range entries {
		bs := make([][]byte, len(cmds))
		for j, c := range cmds {
			bs[j] = []byte(c)
		}
		es[i] = sm.Entry{Index: first + uint64(i), Cmd: encodeBatch(bs)}
	}
	out, err := s.Update(es)
	require.NoError(t, err)
	return out
}

func TestStateMachineUpdateAndOpen(t *testing.T) {
	t.Parallel()
	db := openMemDB(t)
	s, l := newTestSM(t, db, 3)
	out := update(t, s, 1, []string{"a=1", "b=2"}, []string{"c=3"})
	res, err := decodeBatch(out[0].Result.Data)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a=1@1"), []byte("b=2@2")}, res)
	res, err = decodeBatch(out[1].Result.Data)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("c=3@3")}, res)
	_, _, applied, _ := l.stats()
	require.Equal(t, uint64(2), applied)
	require.NoError(t, s.Sync())

	// A fresh replica object over the same DB reports the durable index.
	s2 := &stateMachine{db: db, shardID: 3, logic: newTestLogic(), log: slog.New(slog.DiscardHandler), stats: &shardStats{}}
	idx, err := s2.Open(nil)
	require.NoError(t, err)
	require.Equal(t, uint64(2), idx)
	v, err := s2.Lookup([]byte("kv/b"))
	require.NoError(t, err)
	require.Equal(t, []byte("2"), v)

	// Another shard in the same DB is isolated.
	other, _ := newTestSM(t, db, 4)
	v, err = other.Lookup([]byte("n"))
	require.NoError(t, err)
	require.Equal(t, []byte("0"), v)

	// A malformed entry is a fatal error.
	_, err = s.Update([]sm.Entry{{Index: 3, Cmd: []byte{5, 1}}})
	require.ErrorIs(t, err, errBadBatch)
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	src := openMemDB(t)
	s, _ := newTestSM(t, src, 7)
	neighbour, _ := newTestSM(t, src, 8) // keys right after shard 7's range
	update(t, neighbour, 1, []string{"z=neighbour"})
	for i := range 50 {
		update(t, s, uint64(i+1), []string{fmt.Sprintf("k%02d=%d", i, i), fmt.Sprintf("x%02d=%d", i, i)})
	}
	wantHash, err := s.GetHash()
	require.NoError(t, err)

	ctx, err := s.PrepareSnapshot()
	require.NoError(t, err)
	// Writes after PrepareSnapshot are not part of the snapshot.
	update(t, s, 51, []string{"late=1"})
	var buf bytes.Buffer
	require.NoError(t, s.SaveSnapshot(ctx, &buf, make(chan struct{})))

	// Recover into a different shard ID of another DB that already holds stale
	// keys, with a neighbouring shard that must survive.
	dst := openMemDB(t)
	r, rl := newTestSM(t, dst, 9)
	update(t, r, 1, []string{"stale=1"}, []string{"k00=old"})
	keep, _ := newTestSM(t, dst, 10)
	update(t, keep, 1, []string{"keep=1"})
	keepHash, err := keep.GetHash()
	require.NoError(t, err)

	require.NoError(t, r.RecoverFromSnapshot(bytes.NewReader(buf.Bytes()), make(chan struct{})))
	_, _, _, opens := rl.stats()
	require.Equal(t, 2, opens, "Logic.Open runs after recovery")

	gotHash, applied, err := stateHash(dst, 9)
	require.NoError(t, err)
	require.Equal(t, wantHash, gotHash)
	require.Equal(t, uint64(50), applied)
	idx, err := r.Open(nil)
	require.NoError(t, err)
	require.Equal(t, uint64(50), idx)
	for q, want := range map[string]string{"kv/k00": "0", "kv/x49": "49", "kv/stale": "", "kv/late": "", "n": "100"} {
		v, err := r.Lookup([]byte(q))
		require.NoError(t, err)
		require.Equal(t, want, string(v.([]byte)), q)
	}
	h, err := keep.GetHash()
	require.NoError(t, err)
	require.Equal(t, keepHash, h, "neighbouring shard untouched")

	// Stopped and truncated streams fail.
	stopped := make(chan struct{})
	close(stopped)
	ctx, err = s.PrepareSnapshot()
	require.NoError(t, err)
	require.ErrorIs(t, s.SaveSnapshot(ctx, &bytes.Buffer{}, stopped), sm.ErrSnapshotStopped)
	require.Error(t, r.RecoverFromSnapshot(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), make(chan struct{})))
}

func TestReaderScan(t *testing.T) {
	t.Parallel()
	db := openMemDB(t)
	b := db.NewIndexedBatch()
	w := newBatchWriter(b, 1)
	for _, k := range []string{"a", "b", "c", "d"} {
		require.NoError(t, w.Set([]byte(k), []byte("v"+k)))
	}
	require.NoError(t, w.Delete([]byte("c")))
	// Reads see the batch's own writes.
	v, found, err := w.Get([]byte("a"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, []byte("va"), v)
	_, found, err = w.Get([]byte("c"))
	require.NoError(t, err)
	require.False(t, found)
	require.NoError(t, b.Commit(pebble.Sync))
	require.NoError(t, b.Close())
	// A neighbouring shard's key must not leak into shard 1's scans.
	require.NoError(t, db.Set(dataKey(2, []byte("a")), []byte("other"), pebble.Sync))

	scan := func(start, end string, limit int) []string {
		var keys []string
		var s, e []byte
		if start != "" {
			s = []byte(start)
		}
		if end != "" {
			e = []byte(end)
		}
		require.NoError(t, newPrefixed(db, 1).Scan(s, e, func(k, v []byte) bool {
			keys = append(keys, string(k)+"="+string(v))
			return len(keys) < limit
		}))
		return keys
	}
	require.Equal(t, []string{"a=va", "b=vb", "d=vd"}, scan("", "", 10))
	require.Equal(t, []string{"b=vb"}, scan("b", "d", 10))
	require.Equal(t, []string{"a=va", "b=vb"}, scan("", "", 2))
}

func TestCodec(t *testing.T) {
	t.Parallel()
	for _, items := range [][][]byte{nil, {{}}, {[]byte("a"), {}, bytes.Repeat([]byte("x"), 300)}} {
		got, err := decodeBatch(encodeBatch(items))
		require.NoError(t, err)
		require.Len(t, got, len(items))
		for i := range items {
			require.Equal(t, string(items[i]), string(got[i]))
		}
	}
	for _, bad := range [][]byte{nil, {1}, {1, 5, 'a'}, {1, 0, 0}, {0xff}} {
		_, err := decodeBatch(bad)
		require.ErrorIs(t, err, errBadBatch, "%v", bad)
	}
}

// upgradingLogic is a testLogic whose Upgrade writes kv/up once.
type upgradingLogic struct {
	*testLogic
	upgrades int
}

func (l *upgradingLogic) Upgrade(w Writer) error {
	if _, ok, err := w.Get([]byte("kv/up")); err != nil || ok {
		return err
	}
	l.upgrades++
	return w.Set([]byte("kv/up"), []byte("1"))
}

// A Logic's Upgrade runs and commits before Open, on every open and after
// a snapshot is recovered.
func TestUpgradeRunsBeforeOpen(t *testing.T) {
	t.Parallel()
	db := openMemDB(t)
	l := &upgradingLogic{testLogic: newTestLogic()}
	s := &stateMachine{db: db, shardID: 5, replicaID: 1, logic: l, log: slog.New(slog.DiscardHandler), stats: &shardStats{}}
	_, err := s.Open(nil)
	require.NoError(t, err)
	require.Equal(t, 1, l.upgrades)
	v, err := s.Lookup([]byte("kv/up"))
	require.NoError(t, err)
	require.Equal(t, []byte("1"), v)
	_, err = s.Open(nil)
	require.NoError(t, err)
	require.Equal(t, 1, l.upgrades, "an upgraded keyspace is not upgraded again")

	// A snapshot of a keyspace without the key is upgraded once loaded.
	src, _ := newTestSM(t, openMemDB(t), 5)
	update(t, src, 1, []string{"a=1"})
	var buf bytes.Buffer
	require.NoError(t, writeSnapshot(src.db, 5, &buf, nil))
	require.NoError(t, s.RecoverFromSnapshot(&buf, nil))
	require.Equal(t, 2, l.upgrades)
	v, err = s.Lookup([]byte("kv/up"))
	require.NoError(t, err)
	require.Equal(t, []byte("1"), v)
}
