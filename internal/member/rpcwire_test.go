package member

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/gossip/crdt"
	"github.com/eleven-am/graft/internal/alloctest"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/statesync"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/stretchr/testify/require"
)

var rewriteSeeds = flag.Bool("rewrite-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz from the encoders")

// rpcSeeds are real requests of every method, as the members encode them.
func rpcSeeds(t testing.TB) map[string][2][]byte {
	start := wf.Command{Op: wf.OpStart, WF: "wf-1", Now: 1, State: json.RawMessage(`{"n":1}`),
		Metadata: map[string]string{"k": "v"}, Tasks: []wf.NewTask{{Node: "a", Config: json.RawMessage(`{"x":1}`)}}, Starter: "n1"}
	cmd, err := wf.EncodeCommand(&start)
	require.NoError(t, err)
	exec, err := json.Marshal(wire.ExecRequest{Node: "a", Context: executor.WorkflowContext{WorkflowID: "wf-1", NodeName: "a", Attempt: 1,
		Metadata: map[string]string{"k": "v"}}, State: json.RawMessage(`{"n":1}`), Config: json.RawMessage(`{"x":1}`)})
	require.NoError(t, err)
	evs, dropped := wire.EncodeEventBatches([]wire.ForwardedEvent{
		{From: "n2", Kind: wf.ChangeStarted, View: wf.View{Record: wf.Record{ID: "wf-1", CreatedAt: 1, UpdatedAt: 2,
			Metadata: map[string]string{"k": "v"}, InitialNodes: []string{"a"}, Starter: "n1"}}},
		{From: "n2", Kind: wf.ChangeCompleted, View: wf.View{Record: wf.Record{ID: "wf-1", Status: wf.StatusCompleted, CreatedAt: 1,
			UpdatedAt: 3, Starter: "n1"}, State: json.RawMessage(`{"n":2}`), Executed: []string{"a", "b"}}},
		{From: "n2", Kind: wf.ChangeFailed, View: wf.View{Record: wf.Record{ID: "wf-2", LastError: "boom", FailedNode: "b",
			FailedTry: 3, Starter: "n1"}}},
	}, 1<<20)
	require.Zero(t, dropped)
	require.Len(t, evs, 1)
	replica, _ := json.Marshal(wire.ReplicaRequest{Shard: 3, Replica: 4, New: true})
	drop, _ := json.Marshal(wire.ReplicaRequest{Shard: 3, Replica: 4})
	membership, _ := json.Marshal(wire.ReplicaRequest{Shard: 3})
	admit, _ := json.Marshal(wire.AdmitRequest{ID: "n4"})
	st := crdt.NewState()
	_, err = st.SetRecord("n2", 3, crdt.MemberRecord{NodeTypes: []string{"a", "b"}, WorkerCapacity: 4, Metadata: map[string]string{"zone": "z1"}})
	require.NoError(t, err)
	_, err = st.Add("n2", 3, crdt.StepsExecuted, 7)
	require.NoError(t, err)
	state := statesync.EncodeRequest(st.Digest(), st.Subset("n2"))
	return map[string][2][]byte{
		"apply":      {[]byte(wire.MethodApply), wire.ShardPayload(3, cmd)},
		"read":       {[]byte(wire.MethodRead), wire.ShardPayload(3, wf.EncodeQuery(wf.Query{Op: wf.QueryStatus, WF: "wf-1"}))},
		"counters":   {[]byte(wire.MethodRead), wire.ShardPayload(1, wf.EncodeQuery(wf.Query{Op: wf.QueryCounters}))},
		"exec":       {[]byte(wire.MethodExec), exec},
		"event":      {[]byte(wire.MethodEvent), evs[0]},
		"replica":    {[]byte(wire.MethodReplica), replica},
		"drop":       {[]byte(wire.MethodDrop), drop},
		"membership": {[]byte(wire.MethodMembership), membership},
		"admit":      {[]byte(wire.MethodAdmit), admit},
		"state":      {[]byte(wire.MethodState), state},

		"op-members":   {[]byte(operator.MethodMembers), nil},
		"op-shards":    {[]byte(operator.MethodShards), []byte(`{}`)},
		"op-list":      {[]byte(operator.MethodList), []byte(`{"status":"failed","metadata":{"tenant":"acme"},"node":"a","started_after":"2026-01-02T03:04:05Z","limit":20,"page_token":"AQID"}`)},
		"op-count":     {[]byte(operator.MethodCount), []byte(`{"status":"running","started_before":"2026-01-02T03:04:05Z"}`)},
		"op-show":      {[]byte(operator.MethodShow), []byte(`{"id":"wf-1"}`)},
		"op-pause":     {[]byte(operator.MethodPause), []byte(`{"id":"wf-1"}`)},
		"op-resume":    {[]byte(operator.MethodResume), []byte(`{"id":"wf-1"}`)},
		"op-stop":      {[]byte(operator.MethodStop), []byte(`{"id":"wf-1"}`)},
		"op-broadcast": {[]byte(operator.MethodBroadcast), []byte(`{"command":"flush","params":{"level":"all"}}`)},
		"op-query":     {[]byte(operator.MethodQuery), []byte(`{"command":"ping"}`)},
	}
}

// commandSeeds are dev commands as BroadcastCommand encodes them.
func commandSeeds(t testing.TB) map[string][]byte {
	// devCommand is graft.DevCommand, as BroadcastCommand encodes it.
	type devCommand struct {
		Command string `json:"command"`
		Params  any    `json:"params,omitempty"`
	}
	out := map[string][]byte{}
	for name, cmd := range map[string]*devCommand{
		"map":    {Command: "set-level", Params: map[string]any{"level": "debug", "n": 3}},
		"none":   {Command: "flush"},
		"nested": {Command: "tag", Params: []any{"a", 1.5, true, nil, map[string]any{"x": []any{}}}},
	} {
		b, err := json.Marshal(cmd)
		require.NoError(t, err)
		out[name] = b
	}
	return out
}

// writeSeeds writes a seed corpus in testdata/fuzz/name (go test fuzz v1).
func writeSeeds(t *testing.T, name string, seeds map[string][]any) {
	dir := filepath.Join("testdata", "fuzz", name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for file, vals := range seeds {
		b := []byte("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				b = fmt.Appendf(b, "string(%q)\n", v)
			case []byte:
				b = fmt.Appendf(b, "[]byte(%q)\n", v)
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "seed-"+file), b, 0o644))
	}
}

// TestWriteFuzzSeeds rewrites the committed seed corpora with
// -rewrite-seeds; otherwise it checks they are there.
func TestWriteFuzzSeeds(t *testing.T) {
	rpcs, cmds := map[string][]any{}, map[string][]any{}
	for k, v := range rpcSeeds(t) {
		rpcs[k] = []any{string(v[0]), v[1]}
	}
	for k, v := range commandSeeds(t) {
		cmds[k] = []any{v}
	}
	all := map[string]map[string][]any{"FuzzDecodeRPC": rpcs, "FuzzDecodeCommand": cmds}
	for name, seeds := range all {
		if *rewriteSeeds {
			writeSeeds(t, name, seeds)
		}
		for file := range seeds {
			require.FileExists(t, filepath.Join("testdata", "fuzz", name, "seed-"+file), "run go test -run TestWriteFuzzSeeds -rewrite-seeds")
		}
	}
}

func TestDecodeRPC(t *testing.T) {
	t.Parallel()
	for name, s := range rpcSeeds(t) {
		_, err := decodeRPC(string(s[0]), s[1])
		require.NoError(t, err, name)
	}
	for _, tc := range []struct {
		method, payload, want string
	}{
		{"nope", "", `unknown method "nope"`},
		{wire.MethodApply, "1234567", "short payload"},
		{wire.MethodRead, "\x00\x00\x00\x00\x00\x00\x00\x00", "shard 0"},
		{wire.MethodExec, `{"node":""}`, "no node"},
		{wire.MethodExec, `{"node":"a"} {}`, "data after"},
		{wire.MethodReplica, `{"shard":1}`, "replica 0"},
		{wire.MethodMembership, `{"shard":0}`, "shard 0"},
		{wire.MethodAdmit, `{}`, "no node ID"},
		{wire.MethodState, "", "unknown format"},
		{wire.MethodState, "\x01\x05ab", "bad digest length"},
		{wire.MethodEvent, `{}`, "not a JSON array"},
		{wire.MethodEvent, `[{"view":{}}]`, "names no workflow"},
		{wire.MethodEvent, `[{"view":{"id":"a"}}`, "unterminated"},
	} {
		_, err := decodeRPC(tc.method, []byte(tc.payload))
		require.ErrorContains(t, err, tc.want, "%s %q", tc.method, tc.payload)
	}
	// A batch over wire.MaxEventBatch is refused as it is read.
	b := []byte("[")
	for i := range wire.MaxEventBatch + 1 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"view":{"id":"a"}}`...)
	}
	_, err := decodeRPC(wire.MethodEvent, append(b, ']'))
	require.ErrorContains(t, err, "more than 512 events")
}

// A forwarded event keeps every field lifecycle events report, and only
// those.
func TestForwardedEventRoundTrip(t *testing.T) {
	t.Parallel()
	fe := wire.ForwardedEvent{From: "n2", Kind: wf.ChangeFailed, View: wf.View{Record: wf.Record{ID: "wf-1", Status: wf.StatusFailed,
		Metadata: map[string]string{"k": "v"}, CreatedAt: 1, UpdatedAt: 2, EndedAt: 3, LastError: "boom", FailedNode: "b",
		FailedTry: 2, Starter: "n1", InitialNodes: []string{"a"}, Pending: []wf.Task{{ID: 9, Node: "c"}}, Steps: 4},
		State: json.RawMessage(`{"n":1}`), Executed: []string{"a"}}}
	batches, dropped := wire.EncodeEventBatches([]wire.ForwardedEvent{fe}, 1<<20)
	require.Zero(t, dropped)
	evs, err := wire.DecodeEvents(batches[0])
	require.NoError(t, err)
	got := evs[0].Change()
	want := fe.View
	want.Pending, want.Steps = nil, 0 // not forwarded
	require.Equal(t, wf.Change{Kind: fe.Kind, View: want}, got)
	require.Equal(t, "n2", evs[0].From)
}

func TestEncodeEventBatchesSplitsByBytes(t *testing.T) {
	t.Parallel()
	var evs []wire.ForwardedEvent
	for i := range 1200 {
		evs = append(evs, wire.ForwardedEvent{From: "n2", Kind: wf.ChangeCompleted,
			View: wf.View{Record: wf.Record{ID: fmt.Sprintf("wf-%d", i)}, State: json.RawMessage(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)}})
	}
	evs = append(evs, wire.ForwardedEvent{View: wf.View{Record: wf.Record{ID: "huge"}, State: json.RawMessage(fmt.Sprintf(`"%0*d"`, 9000, 0))}})
	batches, dropped := wire.EncodeEventBatches(evs, 8<<10)
	require.Equal(t, 1, dropped, "the event over the limit alone")
	n := 0
	for _, b := range batches {
		require.LessOrEqual(t, len(b), 8<<10)
		got, err := wire.DecodeEvents(b)
		require.NoError(t, err)
		for _, ev := range got {
			require.Equal(t, fmt.Sprintf("wf-%d", n), ev.View.ID, "in order")
			n++
		}
	}
	require.Equal(t, 1200, n)
}

func TestDecodeCommand(t *testing.T) {
	t.Parallel()
	for name, b := range commandSeeds(t) {
		_, err := decodeCommand(b)
		require.NoError(t, err, name)
	}
	for _, b := range []string{`{"params":1}`, `[]`, `{"command":"a"} x`, `{"command":"` + fmt.Sprintf("%0*d", MaxCommandBytes, 0) + `"}`} {
		_, err := decodeCommand([]byte(b))
		require.ErrorIs(t, err, errs.ErrInvalidCommand, b)
	}
}

// handleRPC refuses a call about a shard this member does not host before
// it touches storage: this member has no storage at all (a nil host would
// panic).
func TestHandleRPCRefusesUnhostedShardWithoutStorage(t *testing.T) {
	t.Parallel()
	m := &Member{state: stateRunning}
	m.cfg.NodeID = "n1"
	m.alone = hostsOnly{lone{"n1"}, 1}
	for _, method := range []string{wire.MethodApply, wire.MethodRead} {
		_, err := m.serveRPC(t.Context(), method, wire.ShardPayload(2, []byte("x")))
		var ce *rpc.CodedError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, rpc.CodeUnavailable, ce.Code)
		require.ErrorContains(t, err, "does not serve shard 2")
		_, err = m.serveRPC(t.Context(), method, []byte("short"))
		require.ErrorContains(t, err, "short payload")
	}
}

// FuzzDecodeRPC decodes arbitrary requests of every method, as handleRPC
// does first, and the shard body as the shard would (a command for apply,
// a query for read): no panic, and a decode allocates at most
// alloctest.Bound(len).
func FuzzDecodeRPC(f *testing.F) {
	for _, s := range rpcSeeds(f) {
		f.Add(string(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, method string, payload []byte) {
		var req any
		var err error
		alloctest.RequireBounded(t, len(payload), func() {
			req, err = decodeRPC(method, payload)
			if err != nil {
				return
			}
			switch r := req.(type) {
			case wire.ShardCall:
				if method == wire.MethodApply {
					_, _ = wf.DecodeCommand(r.Body)
				} else {
					var q wf.Query
					_ = json.Unmarshal(r.Body, &q)
				}
			case []wire.Event:
				for i := range r {
					_ = r[i].Change()
				}
			}
		})
		if err != nil {
			return
		}
		switch r := req.(type) {
		case wire.ShardCall:
			require.NotZero(t, r.Shard)
		case []wire.Event:
			require.LessOrEqual(t, len(r), wire.MaxEventBatch)
		}
	})
}

// FuzzDecodeCommand decodes arbitrary dev command payloads and their params
// into a typed handler's params (as graft.WrapHandler does): no panic,
// allocations bounded, and errors are errs.ErrInvalidCommand.
func FuzzDecodeCommand(f *testing.F) {
	for _, b := range commandSeeds(f) {
		f.Add(b)
	}
	type params struct {
		Level string         `json:"level"`
		N     int            `json:"n"`
		More  map[string]any `json:"more"`
	}
	typed := func(_ context.Context, _ string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var p params
		return json.Unmarshal(b, &p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cw commandWire
		var err, herr error
		alloctest.RequireBounded(t, len(b), func() {
			if cw, err = decodeCommand(b); err == nil {
				herr = typed(context.Background(), "n1", cw.Params)
			}
		})
		if err != nil {
			require.ErrorIs(t, err, errs.ErrInvalidCommand)
			return
		}
		require.NotEmpty(t, cw.Command)
		_ = herr // a mismatch of the params' type is the handler's error
	})
}

// A member whose disk is full answers a forwarded write with
// CodeStorageFull, which the caller sees as errs.ErrStorageFull (not retried
// elsewhere: it is not IsRetryable).
func TestRemoteStorageFullIsErrStorageFull(t *testing.T) {
	t.Parallel()
	err := wire.FromRemote(&rpc.RemoteError{Code: rpc.CodeStorageFull, Message: "graft: storage full: 1 byte free"})
	require.ErrorIs(t, err, errs.ErrStorageFull)
	require.False(t, errs.IsRetryable(err))
	require.ErrorContains(t, err, "1 byte free")
}

// hostsOnly is a network on which this member hosts only shard s.
type hostsOnly struct {
	lone
	s uint64
}

func (h hostsOnly) ReplicaOf(s uint64) (uint64, bool) { return 1, s == h.s }
