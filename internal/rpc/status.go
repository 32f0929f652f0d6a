package rpc

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Errors on the wire. A handler's error, or a refusal of the server, ends
// the call with a gRPC status whose details hold one
// google.rpc.ErrorInfo in errorDomain: its Reason is the error's Code
// (Code.String), and its Metadata holds the error's Kind (under kindKey)
// and Details. The status code is the Code's nearest gRPC code, for tools
// that read it; the caller goes by the ErrorInfo only. A status without
// such a detail did not come from a graft handler (a transport failure,
// or a peer that is no graft member), and the Client reports it as
// ErrUnreachable, or ErrTooLarge for codes.ResourceExhausted (gRPC's own
// message limit).
//
// Everything an error carries is bounded, so that its status fits in the
// 64 KiB of headers a Client accepts (the trailers of a call are headers):
// the text to maxMessageBytes once percent-encoded as gRPC sends it, the
// Kind to maxKindBytes, the Details to maxDetails entries and
// maxDetailBytes. Encoding clips what is over (Details in key order), and
// decoding applies the same bounds to what a peer sent, so decoding what
// was encoded gives it back unchanged. Strings are made valid UTF-8 first
// (protobuf refuses to marshal anything else).

const (
	errorDomain = "graft.v1"
	kindKey     = "kind"

	maxMessageBytes = 16 << 10
	maxKindBytes    = 64
	maxDetails      = 16
	maxDetailBytes  = 8 << 10
	maxKeyBytes     = 64

	// clipMark ends a text that was clipped.
	clipMark = " [clipped]"
)

// errorInfoURL is the type URL of google.rpc.ErrorInfo in a status detail.
var errorInfoURL = "type.googleapis.com/" + string((&errdetails.ErrorInfo{}).ProtoReflect().Descriptor().FullName())

var codeNames = [...]string{
	CodeUnknown:     "UNKNOWN",
	CodeNotFound:    "NOT_FOUND",
	CodeExists:      "EXISTS",
	CodeInvalid:     "INVALID",
	CodeUnavailable: "UNAVAILABLE",
	CodeTimeout:     "TIMEOUT",
	CodeConflict:    "CONFLICT",
	CodeTooLarge:    "TOO_LARGE",
	CodeStorageFull: "STORAGE_FULL",
}

var grpcCodes = [...]codes.Code{
	CodeUnknown:     codes.Unknown,
	CodeNotFound:    codes.NotFound,
	CodeExists:      codes.AlreadyExists,
	CodeInvalid:     codes.InvalidArgument,
	CodeUnavailable: codes.Unavailable,
	CodeTimeout:     codes.DeadlineExceeded,
	CodeConflict:    codes.FailedPrecondition,
	CodeTooLarge:    codes.ResourceExhausted,
	CodeStorageFull: codes.ResourceExhausted,
}

// String returns the code's name as it travels, e.g. "NOT_FOUND"; a code
// this package does not define is "UNKNOWN".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return codeNames[CodeUnknown]
}

// codeNamed returns the code called name, or CodeUnknown.
func codeNamed(name string) Code {
	if i := slices.Index(codeNames[:], name); i >= 0 {
		return Code(i)
	}
	return CodeUnknown
}

// refusal is the status that carries a Code and text to the caller.
func refusal(code Code, format string, args ...any) error {
	return encodeStatus(code, "", nil, fmt.Sprintf(format, args...)).Err()
}

// encodeStatus returns the status that carries an error to the caller,
// clipped to the bounds.
func encodeStatus(code Code, kind string, details map[string]string, msg string) *status.Status {
	if int(code) >= len(codeNames) {
		code = CodeUnknown
	}
	meta := boundDetails(details)
	if kind = validKind(kind); kind != "" {
		if meta == nil {
			meta = map[string]string{}
		}
		meta[kindKey] = kind
	}
	st := status.New(grpcCodes[code], clipMessage(msg))
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: code.String(), Domain: errorDomain, Metadata: meta})
	if err != nil {
		// Cannot happen: every string is valid UTF-8. Without its detail
		// the caller would take the error for a transport failure.
		return status.New(codes.Internal, "graft: cannot encode an error: "+err.Error())
	}
	return withInfo
}

// DecodeStatus returns the error a status from a graft member carries, or
// false if the status carries none (see the package's wire notes above).
// It never fails on what a peer sent: a detail that does not decode is
// ignored, a Reason it does not know is CodeUnknown, a Kind that is not
// valid is dropped, and the text, Kind and Details are bounded as an
// encoder bounds them. The work it does is proportional to the status's
// size, which the Client bounds (64 KiB of headers).
func DecodeStatus(st *status.Status) (*RemoteError, bool) {
	if st == nil || st.Code() == codes.OK {
		return nil, false
	}
	for _, a := range st.Proto().GetDetails() {
		if a.GetTypeUrl() != errorInfoURL {
			continue
		}
		var info errdetails.ErrorInfo
		if proto.Unmarshal(a.GetValue(), &info) != nil || info.GetDomain() != errorDomain {
			continue
		}
		re := &RemoteError{Code: codeNamed(info.GetReason()), Kind: validKind(info.GetMetadata()[kindKey]), Message: clipMessage(st.Message())}
		re.Details = boundDetails(info.GetMetadata())
		return re, true
	}
	return nil, false
}

// validKind returns kind if it is a valid Kind (1 to maxKindBytes of
// lowercase letters, digits, '-' and '.', starting with a letter), or "".
func validKind(kind string) string {
	if len(kind) == 0 || len(kind) > maxKindBytes || kind[0] < 'a' || kind[0] > 'z' {
		return ""
	}
	for i := range len(kind) {
		if c := kind[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return ""
		}
	}
	return kind
}

// validKey reports whether k may name a detail: 1 to maxKeyBytes of
// lowercase letters, digits, '-' and '_', starting with a letter, and not
// kindKey.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyBytes || k[0] < 'a' || k[0] > 'z' || k == kindKey {
		return false
	}
	for i := range len(k) {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// boundDetails returns the details of d within the bounds: entries with
// valid keys, in key order, at most maxDetails of them, their keys and
// values together at most maxDetailBytes (the value that crosses it is
// clipped, the rest dropped), values made valid UTF-8. nil if none is left.
func boundDetails(d map[string]string) map[string]string {
	var out map[string]string
	used := 0
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if !validKey(k) {
			continue
		}
		room := maxDetailBytes - used - len(k)
		if len(out) == maxDetails || room < 0 {
			break
		}
		v := clipBytes(strings.ToValidUTF8(d[k], "\uFFFD"), room)
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
		used += len(k) + len(v)
	}
	return out
}

// clipBytes returns the longest prefix of the valid UTF-8 s of at most n
// bytes that ends on a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clipMessage makes msg valid UTF-8 and clips it (ending it with clipMark)
// so that it takes at most maxMessageBytes once percent-encoded as gRPC
// sends it (bytes outside printable ASCII, and '%', take three).
func clipMessage(msg string) string {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if encodedLen(msg) <= maxMessageBytes {
		return msg
	}
	limit := maxMessageBytes - len(clipMark)
	n := 0
	for i, r := range msg {
		w := encodedLen(string(r))
		if n+w > limit {
			return msg[:i] + clipMark
		}
		n += w
	}
	return msg // not reached: msg is over the limit
}

// encodedLen is len(s) percent-encoded as gRPC encodes a status message.
func encodedLen(s string) int {
	n := 0
	for i := range len(s) {
		if c := s[i]; c < ' ' || c > '~' || c == '%' {
			n += 3
		} else {
			n++
		}
	}
	return n
}
