package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

var rewriteSeeds = flag.Bool("rewrite-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz from the encoder")

// Handler errors reach the caller with their Code, Kind, Details and text,
// whichever way the handler wrapped its *CodedError.
func TestHandlerErrorsKeepTheirKind(t *testing.T) {
	t.Parallel()
	b := setup(t, HandlerFunc(func(_ context.Context, method string, _ []byte) ([]byte, error) {
		ce := &CodedError{Code: CodeNotFound, Kind: "workflow-not-found", Details: map[string]string{"id": "wf-1"},
			Err: errors.New(`graft: workflow not found: "wf-1"`)}
		if method == "wrapped" {
			return nil, fmt.Errorf("reading: %w", ce)
		}
		return nil, ce
	}))
	for method, text := range map[string]string{"plain": `graft: workflow not found: "wf-1"`, "wrapped": `reading: graft: workflow not found: "wf-1"`} {
		_, err := b.client.Call(context.Background(), b.addr, method, nil)
		var re *RemoteError
		require.ErrorAs(t, err, &re, method)
		require.Equal(t, &RemoteError{Code: CodeNotFound, Kind: "workflow-not-found", Details: map[string]string{"id": "wf-1"}, Message: text}, re)
		require.Equal(t, codes.NotFound, grpcCodes[re.Code])
	}
}

// Everything an error carries is clipped to its bounds, on the way out and
// on the way in, and what was encoded decodes unchanged.
func TestStatusBounds(t *testing.T) {
	t.Parallel()
	details := map[string]string{"Bad": "x", "kind": "smuggled", "": "x", "a": "\xff", "stack": strings.Repeat("s", 20<<10)}
	for i := range 30 {
		details[fmt.Sprintf("k%02d", i)] = "v"
	}
	for _, tc := range []struct {
		name      string
		code      Code
		kind, msg string
		details   map[string]string
		want      *RemoteError
	}{
		{"plain", CodeTimeout, "", "late", nil, &RemoteError{Code: CodeTimeout, Message: "late"}},
		{"invalid kind dropped", CodeInvalid, "Not A Kind", "x", nil, &RemoteError{Code: CodeInvalid, Message: "x"}},
		{"kind too long", CodeInvalid, strings.Repeat("k", maxKindBytes+1), "x", nil, &RemoteError{Code: CodeInvalid, Message: "x"}},
		{"undefined code", Code(99), "step", "x", nil, &RemoteError{Code: CodeUnknown, Kind: "step", Message: "x"}},
		{"invalid UTF-8 text", CodeUnknown, "", "a\xffb", nil, &RemoteError{Code: CodeUnknown, Message: "a\uFFFDb"}},
		{"empty text", CodeUnknown, "step", "", nil, &RemoteError{Code: CodeUnknown, Kind: "step", Message: ""}},
	} {
		got, ok := DecodeStatus(encodeStatus(tc.code, tc.kind, tc.details, tc.msg))
		require.True(t, ok, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}

	re, ok := DecodeStatus(encodeStatus(CodeUnknown, "step-panic", details, strings.Repeat("é", 20<<10)))
	require.True(t, ok)
	require.Equal(t, "step-panic", re.Kind)
	require.LessOrEqual(t, len(re.Details), maxDetails)
	require.NotContains(t, re.Details, "Bad")
	require.NotContains(t, re.Details, "kind")
	require.Equal(t, "\uFFFD", re.Details["a"])
	n := 0
	for k, v := range re.Details {
		n += len(k) + len(v)
	}
	require.LessOrEqual(t, n, maxDetailBytes)
	require.True(t, strings.HasSuffix(re.Message, clipMark))
	require.LessOrEqual(t, encodedLen(re.Message), maxMessageBytes)
	require.True(t, utf8.ValidString(re.Message))
	again, ok := DecodeStatus(encodeStatus(re.Code, re.Kind, re.Details, re.Message))
	require.True(t, ok)
	require.Equal(t, re, again, "decoding what was encoded gives it back")

	// The largest status fits in the headers a client accepts.
	// The message takes at most maxMessageBytes percent-encoded (the most
	// raw bytes when it is ASCII), the status with it and its details
	// travels again in base64.
	b, err := proto.Marshal(encodeStatus(CodeUnknown, "step-panic", details, strings.Repeat("a", 20<<10)).Proto())
	require.NoError(t, err)
	require.Less(t, maxMessageBytes+(len(b)+2)/3*4+1024, maxHeaderBytes)
}

// hostileStatuses are statuses a peer that is no graft member (or a broken
// one) may end a call with, and what the caller makes of each.
func hostileStatuses() map[string]struct {
	st   *spb.Status
	want func(t *testing.T, err error)
} {
	info := func(reason, domain string, meta map[string]string) *anypb.Any {
		a, err := anypb.New(&errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: meta})
		if err != nil {
			panic(err)
		}
		return a
	}
	unreachable := func(t *testing.T, err error) {
		require.ErrorIs(t, err, ErrUnreachable)
		require.NotErrorAs(t, err, new(*RemoteError))
	}
	remote := func(want *RemoteError) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			var re *RemoteError
			require.ErrorAs(t, err, &re)
			require.Equal(t, want, re)
		}
	}
	many := map[string]string{}
	for i := range 300 {
		many[fmt.Sprintf("k%04d", i)] = strings.Repeat("v", 30)
	}
	huge := map[string]string{"a": strings.Repeat("v", 50<<10)} // 67 KiB in base64
	return map[string]struct {
		st   *spb.Status
		want func(t *testing.T, err error)
	}{
		"no details":         {&spb.Status{Code: int32(codes.Aborted), Message: "graft-code=1;not found"}, unreachable},
		"resource exhausted": {&spb.Status{Code: int32(codes.ResourceExhausted), Message: "too big"}, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrTooLarge) }},
		"other domain":       {&spb.Status{Code: int32(codes.NotFound), Message: "x", Details: []*anypb.Any{info("NOT_FOUND", "example.com", nil)}}, unreachable},
		"unknown reason": {&spb.Status{Code: int32(codes.NotFound), Message: "x", Details: []*anypb.Any{info("FROBNICATED", errorDomain, map[string]string{"kind": "Bad!"})}},
			remote(&RemoteError{Code: CodeUnknown, Message: "x"})},
		"garbage first": {&spb.Status{Code: int32(codes.Unavailable), Message: "busy", Details: []*anypb.Any{
			{TypeUrl: errorInfoURL, Value: []byte{0xff, 0xff, 0xff}}, {TypeUrl: "type.googleapis.com/nope", Value: []byte("x")},
			info("UNAVAILABLE", errorDomain, map[string]string{"kind": "not-ready"})}},
			remote(&RemoteError{Code: CodeUnavailable, Kind: "not-ready", Message: "busy"})},
		"many details": {&spb.Status{Code: int32(codes.Unknown), Message: "x", Details: []*anypb.Any{info("UNKNOWN", errorDomain, many)}},
			func(t *testing.T, err error) {
				var re *RemoteError
				require.ErrorAs(t, err, &re)
				require.Len(t, re.Details, maxDetails)
			}},
		"over the header limit": {&spb.Status{Code: int32(codes.Unknown), Message: "x", Details: []*anypb.Any{info("UNKNOWN", errorDomain, huge)}}, unreachable},
	}
}

// A peer that ends calls with statuses graft members never send cannot make
// the client fail in any other way than those DecodeStatus documents.
func TestHostileStatusDetails(t *testing.T) {
	t.Parallel()
	cases := hostileStatuses()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Call", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			var first []byte
			if err := ss.RecvMsg(&first); err != nil {
				return err
			}
			_, k := binary.Uvarint(first)
			method, _, err := splitRequest(first[k:])
			if err != nil {
				return err
			}
			return status.FromProto(cases[method].st).Err()
		}}},
	}, struct{}{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	c, err := NewClient(nil, Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	for name, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.Call(ctx, l.Addr().String(), name, nil)
		cancel()
		require.Error(t, err, name)
		t.Run(name, func(t *testing.T) { tc.want(t, err) })
	}
}

// statusSeeds are statuses as a server sends them (the value of the
// grpc-status-details-bin trailer), and some a hostile peer might.
func statusSeeds(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	add := func(name string, st *spb.Status) {
		b, err := proto.Marshal(st)
		require.NoError(t, err)
		out[name] = b
	}
	add("refusal", status.Convert(refusal(CodeUnavailable, "member busy: %d calls in progress", 128)).Proto())
	add("not-found", encodeStatus(CodeNotFound, "workflow-not-found", nil, `graft: workflow not found: "wf-1"`).Proto())
	add("step-panic", encodeStatus(CodeUnknown, "step-panic", map[string]string{"node": "Charge", "value": "boom",
		"stack": "goroutine 7 [running]:\nmain.main()\n\t/x.go:3 +0x1d\n"}, `graft: node "Charge": panic: boom`).Proto())
	add("step-decode", encodeStatus(CodeUnknown, "step-decode", map[string]string{"node": "Charge", "param": "state", "field": "n",
		"cause": "json: cannot unmarshal string into Go value of type int", "permanent": "1"}, `graft: node "Charge": decoding state field "n": json: ...`).Proto())
	add("storage-full", encodeStatus(CodeStorageFull, "storage-full", nil, "graft: storage full: 1 byte free").Proto())
	for name, tc := range hostileStatuses() {
		if name != "over the header limit" { // a 50 KiB seed would add nothing
			add("hostile-"+strings.ReplaceAll(name, " ", "-"), tc.st)
		}
	}
	return out
}

// TestWriteStatusSeeds rewrites the committed seed corpus with
// -rewrite-seeds; otherwise it checks it is there.
func TestWriteStatusSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeStatus")
	for name, b := range statusSeeds(t) {
		file := filepath.Join(dir, "seed-"+name)
		if *rewriteSeeds {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644))
		}
		require.FileExists(t, file, "run go test -run TestWriteStatusSeeds -rewrite-seeds")
	}
}

// FuzzDecodeStatus decodes arbitrary statuses as a client receives them
// (the grpc-status-details-bin trailer, which gRPC decodes into a status
// before DecodeStatus reads it): no panic, allocations proportional to the
// input, results within the bounds, and decoding what the encoder makes of
// a result gives the result back.
func FuzzDecodeStatus(f *testing.F) {
	for _, b := range statusSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p spb.Status
		if proto.Unmarshal(b, &p) != nil {
			return // the transport refuses the call
		}
		st := status.FromProto(&p)
		var re *RemoteError
		var ok bool
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		re, ok = DecodeStatus(st)
		runtime.ReadMemStats(&after)
		require.LessOrEqual(t, after.TotalAlloc-before.TotalAlloc, 16*uint64(len(b))+64<<10)
		if !ok {
			return
		}
		require.True(t, utf8.ValidString(re.Message))
		require.LessOrEqual(t, encodedLen(re.Message), maxMessageBytes)
		require.Equal(t, re.Kind, validKind(re.Kind))
		require.LessOrEqual(t, len(re.Details), maxDetails)
		n := 0
		for k, v := range re.Details {
			require.True(t, validKey(k), k)
			require.True(t, utf8.ValidString(v))
			n += len(k) + len(v)
		}
		require.LessOrEqual(t, n, maxDetailBytes)
		again, ok := DecodeStatus(encodeStatus(re.Code, re.Kind, re.Details, re.Message))
		require.True(t, ok)
		require.Equal(t, re, again)
	})
}
