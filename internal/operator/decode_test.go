package operator_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eleven-am/graft/internal/operator"
	"github.com/stretchr/testify/require"
)

// methods are every operator method, in a fixed order (the fuzz target
// picks one by index).
var methods = []string{
	operator.MethodMembers, operator.MethodShards, operator.MethodList, operator.MethodCount, operator.MethodShow,
	operator.MethodPause, operator.MethodResume, operator.MethodStop, operator.MethodBroadcast, operator.MethodQuery,
}

func TestDecodeRequestRefusesBadInput(t *testing.T) {
	t.Parallel()
	big := `{"id":"` + strings.Repeat("a", operator.MaxRequestBytes) + `"}`
	meta := map[string]string{}
	for i := range operator.MaxMetadataPairs + 1 {
		meta[strings.Repeat("k", i+1)] = "v"
	}
	tooMany, err := json.Marshal(map[string]any{"metadata": meta})
	require.NoError(t, err)
	cases := []struct {
		method, payload, want string
	}{
		{"op.nope", `{}`, `unknown operator method "op.nope"`},
		{operator.MethodMembers, `[]`, "not a JSON object"},
		{operator.MethodMembers, `{"x":1}`, "unknown field"},
		{operator.MethodShow, ``, "not a JSON object"},
		{operator.MethodShow, `{}`, "no workflow id"},
		{operator.MethodShow, `{"id":"a"} {"id":"b"}`, "data after its JSON object"},
		{operator.MethodShow, `{"id":"a"`, "not valid"},
		{operator.MethodShow, `{"id":7}`, "not valid"},
		{operator.MethodShow, big, "over the limit of 65536"},
		{operator.MethodStop, `{"id":"` + strings.Repeat("x", operator.MaxWorkflowIDBytes+1) + `"}`, "over the limit of 256"},
		{operator.MethodList, `{"limit":-1}`, "limit -1 is not between 0 and 1000"},
		{operator.MethodList, `{"limit":1001}`, "limit 1001"},
		{operator.MethodList, `{"limit":1e30}`, "not valid"},
		{operator.MethodList, `{"status":"gone"}`, `status "gone" is not one of`},
		{operator.MethodList, `{"page_token":"` + strings.Repeat("t", operator.MaxPageTokenBytes+1) + `"}`, "page_token is 1025 bytes"},
		{operator.MethodList, `{"started_after":"yesterday"}`, "not valid"},
		{operator.MethodCount, string(tooMany), "9 pairs, over the limit of 8"},
		{operator.MethodCount, `{"metadata":{"":"v"}}`, "empty key"},
		{operator.MethodCount, `{"metadata":{"k":"` + strings.Repeat("v", operator.MaxFilterBytes+1) + `"}}`, "over 1024 bytes"},
		{operator.MethodCount, `{"node":"` + strings.Repeat("n", operator.MaxFilterBytes+1) + `"}`, "over 1024 bytes"},
		{operator.MethodBroadcast, `{"params":{}}`, "no command"},
		{operator.MethodBroadcast, `{"command":"` + strings.Repeat("c", operator.MaxCommandNameBytes+1) + `"}`, "over 256 bytes"},
		{operator.MethodQuery, `{"command":"c","params":"` + strings.Repeat("p", operator.MaxParamsBytes) + `"}`, "params are 4098 bytes"},
		{operator.MethodQuery, `{"command":"c","params":{]}`, "not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.want, func(t *testing.T) {
			t.Parallel()
			_, err := operator.DecodeRequest(tc.method, []byte(tc.payload))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestDecodeRequestAcceptsGoodInput(t *testing.T) {
	t.Parallel()
	req, err := operator.DecodeRequest(operator.MethodMembers, nil)
	require.NoError(t, err)
	require.Equal(t, struct{}{}, req)
	req, err = operator.DecodeRequest(operator.MethodList, []byte(`{"status":"failed","metadata":{"tenant":"acme"},"node":"Charge","started_after":"2026-01-02T03:04:05Z","limit":20,"page_token":"abc"}`))
	require.NoError(t, err)
	lr := req.(operator.ListRequest)
	require.Equal(t, "failed", lr.Status)
	require.Equal(t, map[string]string{"tenant": "acme"}, lr.Metadata)
	require.Equal(t, 20, lr.Limit)
	require.Equal(t, 2026, lr.StartedAfter.Year())
	req, err = operator.DecodeRequest(operator.MethodQuery, []byte(`{"command":"ping","params":{"x":[1,2]}}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"x":[1,2]}`, string(req.(operator.CommandRequest).Params))
}

// stubService answers every method with a fixed value.
type stubService struct{ controlled []string }

func (s *stubService) Members(context.Context) (*operator.MembersAnswer, error) {
	return &operator.MembersAnswer{NodeID: "n1"}, nil
}
func (s *stubService) Shards(context.Context) (*operator.ShardsAnswer, error) { return nil, nil }
func (s *stubService) List(_ context.Context, r operator.ListRequest) (*operator.ListAnswer, error) {
	return &operator.ListAnswer{NextPageToken: r.PageToken}, nil
}
func (s *stubService) Count(context.Context, operator.Filter) (*operator.Counts, error) {
	return &operator.Counts{Total: 3}, nil
}
func (s *stubService) Show(_ context.Context, id string) (*operator.Workflow, error) {
	return &operator.Workflow{ID: id}, nil
}
func (s *stubService) Control(_ context.Context, method, id string) error {
	s.controlled = append(s.controlled, method+" "+id)
	return nil
}
func (s *stubService) Broadcast(context.Context, operator.CommandRequest) error { return nil }
func (s *stubService) Query(_ context.Context, r operator.CommandRequest) (*operator.QueryAnswer, error) {
	return &operator.QueryAnswer{Outcomes: map[string]string{"n1": r.Command}}, nil
}

func TestServeDispatchesEachMethod(t *testing.T) {
	t.Parallel()
	s := &stubService{}
	serve := func(method, payload string) string {
		m, ok := operator.Lookup(method)
		require.True(t, ok, method)
		req, err := m.Decode([]byte(payload))
		require.NoError(t, err)
		out, err := m.Serve(context.Background(), s, req)
		require.NoError(t, err)
		return string(out)
	}
	require.JSONEq(t, `{"node_id":"n1","status":"","coordinator":false,"shards":0,"members":null}`, serve(operator.MethodMembers, ``))
	require.JSONEq(t, `{}`, serve(operator.MethodShards, `{}`))
	require.JSONEq(t, `{"workflows":null,"next_page_token":"p"}`, serve(operator.MethodList, `{"page_token":"p"}`))
	require.JSONEq(t, `{"by_status":null,"total":3,"complete":false}`, serve(operator.MethodCount, `{}`))
	require.Contains(t, serve(operator.MethodShow, `{"id":"w1"}`), `"id":"w1"`)
	require.JSONEq(t, `{}`, serve(operator.MethodStop, `{"id":"w1"}`))
	require.JSONEq(t, `{}`, serve(operator.MethodPause, `{"id":"w2"}`))
	require.JSONEq(t, `{"outcomes":{"n1":"ping"}}`, serve(operator.MethodQuery, `{"command":"ping"}`))
	require.Equal(t, []string{"op.stop w1", "op.pause w2"}, s.controlled)
	for _, m := range methods {
		require.True(t, operator.IsMethod(m), m)
	}
	require.False(t, operator.IsMethod("apply"))
}

// FuzzDecodeRequest: no payload crashes a decoder or is accepted out of
// bounds, and an accepted request re-encodes to one that decodes the same.
func FuzzDecodeRequest(f *testing.F) {
	for i, p := range []string{
		``, `{}`, `{"id":"wf-1"}`, `{"command":"ping","params":{"a":[1,{"b":null}]}}`,
		`{"status":"failed","metadata":{"k":"v"},"node":"N","started_after":"2026-01-02T03:04:05Z","started_before":"2027-01-02T03:04:05+02:00","limit":5,"page_token":"AQID"}`,
		`{"limit":1e3}`, `{"id":"\u0000"}`, `[[[[[[[[[[`, `{"params":` + strings.Repeat("[", 200) + `}`,
	} {
		f.Add(uint8(i), []byte(p))
	}
	f.Fuzz(func(t *testing.T, pick uint8, payload []byte) {
		method := methods[int(pick)%len(methods)]
		req, err := operator.DecodeRequest(method, payload)
		if err != nil {
			return
		}
		switch r := req.(type) {
		case operator.ListRequest:
			require.True(t, r.Limit >= 0 && r.Limit <= operator.MaxListLimit)
			require.LessOrEqual(t, len(r.PageToken), operator.MaxPageTokenBytes)
			require.LessOrEqual(t, len(r.Metadata), operator.MaxMetadataPairs)
		case operator.Filter:
			require.LessOrEqual(t, len(r.Metadata), operator.MaxMetadataPairs)
			require.LessOrEqual(t, len(r.Node), operator.MaxFilterBytes)
		case operator.WorkflowRequest:
			require.NotEmpty(t, r.ID)
			require.LessOrEqual(t, len(r.ID), operator.MaxWorkflowIDBytes)
			require.True(t, utf8.ValidString(r.ID))
		case operator.CommandRequest:
			require.NotEmpty(t, r.Command)
			require.LessOrEqual(t, len(r.Params), operator.MaxParamsBytes)
		}
		if _, empty := req.(struct{}); empty {
			return
		}
		again, err := json.Marshal(req)
		require.NoError(t, err)
		req2, err := operator.DecodeRequest(method, again)
		require.NoError(t, err, "re-encoded %s", again)
		again2, err := json.Marshal(req2)
		require.NoError(t, err)
		require.JSONEq(t, string(again), string(again2))
	})
}
