package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Member RPC wire format (internal/rpc): one bidirectional gRPC stream per
// call on RPCMethod, messages passed through unencoded. The request's first
// message opens with the request's length as a uvarint; the request is the
// method name's length as a uvarint, the method name and the payload, sent
// in messages of at most RPCChunkBytes.
const (
	RPCMethod     = "/graft.v1.Member/Call"
	RPCChunkBytes = 64 << 10
)

// HTTP2Preface opens every HTTP/2 (and so gRPC) connection.
const HTTP2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types used by RPCProbes.
const (
	http2Data     = 0x0
	http2Headers  = 0x1
	http2Settings = 0x4
)

// http2Frame returns an HTTP/2 frame header announcing length bytes,
// followed by payload.
func http2Frame(length uint32, typ, flags byte, stream uint32, payload []byte) []byte {
	b := []byte{byte(length >> 16), byte(length >> 8), byte(length), typ, flags}
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

// RPCRequest frames a member RPC request for method and payload (without
// the length prefix of the first message).
func RPCRequest(method string, payload []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(method)))
	b = append(b, method...)
	return append(b, payload...)
}

// RPCProbes returns hostile bytes for a member RPC (gRPC) port, each sent on
// its own connection: random bytes, the HTTP/2 preface followed by garbage,
// frames announcing 16 MiB that never arrive, a DATA frame on a stream never
// opened, a HEADERS frame of garbage, and an HTTP/1.1 request.
func RPCProbes(rng *rand.Rand) []Probe {
	preface := []byte(HTTP2Preface)
	with := func(parts ...[]byte) []byte {
		out := append([]byte(nil), preface...)
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	emptySettings := http2Frame(0, http2Settings, 0, 0, nil)
	return []Probe{
		{"random bytes", RandomBytes(rng, 4096)},
		{"HTTP/2 preface then garbage", with(RandomBytes(rng, 1024))},
		{"HTTP/2 preface only", with()},
		{"SETTINGS frame announcing 16 MiB", with(http2Frame(1<<24-1, http2Settings, 0, 0, nil))},
		{"HEADERS frame announcing 16 MiB", with(emptySettings, http2Frame(1<<24-1, http2Headers, 0x4, 1, RandomBytes(rng, 100)))},
		{"HEADERS frame of garbage", with(emptySettings, http2Frame(200, http2Headers, 0x4, 1, RandomBytes(rng, 200)))},
		{"DATA frame on a stream never opened", with(emptySettings, http2Frame(1000, http2Data, 0, 7, RandomBytes(rng, 1000)))},
		{"HTTP/1.1 request", []byte("POST " + RPCMethod + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776\r\n\r\n")},
	}
}

// RPCCall makes one member RPC call to addr over a connection of its own
// that enforces no limits: its first message announces a request of
// announced bytes, and it sends body (at most announced bytes of it, from
// RPCRequest) until the server stops it. It returns the call's gRPC status
// error, or nil when the server answered.
func RPCCall(ctx context.Context, addr string, announced uint64, body []byte) error {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Call", ServerStreams: true, ClientStreams: true},
		RPCMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	body = body[:min(uint64(len(body)), announced)]
	n := min(len(body), RPCChunkBytes)
	first := binary.AppendUvarint(nil, announced)
	first = append(first, body[:n]...)
	err = cs.SendMsg(&first)
	for body = body[n:]; err == nil && len(body) > 0; body = body[n:] {
		n = min(len(body), RPCChunkBytes)
		chunk := body[:n:n]
		err = cs.SendMsg(&chunk)
	}
	if err == nil {
		_ = cs.CloseSend()
	}
	for {
		var msg []byte
		if err := cs.RecvMsg(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// rawCodec passes []byte messages through unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "graft-hostile-raw" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if p, ok := v.(*[]byte); ok {
		return *p, nil
	}
	return nil, fmt.Errorf("hostile: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("hostile: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}
