package cluster

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/eleven-am/graft/internal/alloctest"
	"github.com/stretchr/testify/require"
)

var rewriteSeeds = flag.Bool("rewrite-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz from the encoders")

// TestWriteFuzzSeeds rewrites the committed seed corpus of FuzzParseLayout
// with -rewrite-seeds; otherwise it checks it is there.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseLayout")
	for name, b := range layoutSeeds(t) {
		file := filepath.Join(dir, "seed-"+name)
		if *rewriteSeeds {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644))
		}
		require.FileExists(t, file, "run go test -run TestWriteFuzzSeeds -rewrite-seeds")
	}
}

// layoutSeeds are layout files as saveLayout writes them.
func layoutSeeds(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, l := range map[string]*layout{
		"founder": {ClusterID: "5f1c0a2b9d3e4f60", Members: []string{"n1", "n2", "n3"}, Shards: 8, RF: 3,
			Replicas: map[uint64]uint64{1: 1, 2: 1, 4: 1, 5: 1, 7: 1}},
		"joiner": {ClusterID: "5f1c0a2b9d3e4f60", Shards: 8, RF: 3, Replicas: map[uint64]uint64{}},
	} {
		b, err := json.MarshalIndent(l, "", "  ")
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

func TestParseLayout(t *testing.T) {
	t.Parallel()
	for name, b := range layoutSeeds(t) {
		l, err := parseLayout(b)
		require.NoError(t, err, name)
		require.NotNil(t, l.Replicas)
	}
	for _, tc := range []struct{ file, want string }{
		{`{"shards":8,"rf":3}`, "no cluster_id"},
		{`{"cluster_id":"c","shards":0,"rf":3}`, "shards is 0, want 1 to 4096"},
		{`{"cluster_id":"c","shards":5000,"rf":3}`, "shards is 5000"},
		{`{"cluster_id":"c","shards":8,"rf":0}`, "rf is 0"},
		{`{"cluster_id":"c","shards":8,"rf":3,"members":["a",""]}`, "members[1] is empty"},
		{`{"cluster_id":"c","shards":8,"rf":3,"replicas":{"9":1}}`, "shard 9, outside 1 to 8"},
		{`{"cluster_id":"c","shards":8,"rf":3,"replicas":{"2":0}}`, "shard 2 replica ID 0"},
		{`{"cluster_id":"c","shards":8,"rf":3}{}`, "data after"},
		{`{"cluster_id":"c","shards":"8"}`, "cannot unmarshal"},
	} {
		_, err := parseLayout([]byte(tc.file))
		require.ErrorContains(t, err, tc.want, tc.file)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cluster.json"), []byte(`{"cluster_id":"c","shards":8,"rf":3,"replicas":{"2":0}}`), 0o644))
	_, err := loadLayout(dir)
	require.ErrorContains(t, err, filepath.Join(dir, "cluster.json"))
	require.ErrorContains(t, err, "replica ID 0")
}

// FuzzParseLayout parses arbitrary layout files: no panic, allocations
// bounded, and a layout that parses satisfies parseLayout's rules and
// parses the same after saveLayout's encoding.
func FuzzParseLayout(f *testing.F) {
	for _, b := range layoutSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l *layout
		var err error
		alloctest.RequireBounded(t, len(b), func() { l, err = parseLayout(b) })
		if err != nil {
			return
		}
		require.NotEmpty(t, l.ClusterID)
		require.True(t, l.Shards >= 1 && l.Shards <= maxLayoutShards && l.RF >= 1)
		for s, r := range l.Replicas {
			require.True(t, s >= 1 && s <= uint64(l.Shards) && r != 0)
		}
		again, err := json.MarshalIndent(l, "", "  ")
		require.NoError(t, err)
		l2, err := parseLayout(again)
		require.NoError(t, err)
		require.Equal(t, l, l2)
	})
}
