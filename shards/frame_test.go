package shards

import (
	"bytes"
	"log/slog"
	"runtime"
	"testing"

	"github.com/eleven-am/graft/internal/hostile"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// FuzzDecodeFrame reads one frame from arbitrary bytes the way the TCP
// transport does (magic, header, payload, decode) and runs a decoded batch
// through the inbound filter. It must never panic, and what it allocates is
// bounded by a function of the input length: frames are refused before the
// declared size is allocated, and a batch's decoded size is bounded before
// it is unmarshalled.
func FuzzDecodeFrame(f *testing.F) {
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}
	rep := pb.Message{Type: pb.Replicate, ShardID: 1, From: 2, To: 1, Term: 3, LogIndex: 5,
		Entries: []pb.Entry{{Term: 3, Index: 6, Cmd: []byte("a=1")}, {Term: 3, Index: 7}}}
	for _, b := range []pb.MessageBatch{
		validBatch("127.0.0.1:7002", hb),
		validBatch("127.0.0.1:7002", hb, rep),
		validBatch("not-an-address", hb),
		validBatch("127.0.0.1:9", pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2}),
	} {
		data, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(hostile.RaftFrame(data))
	}
	chunk := pb.Chunk{ShardID: 1, ReplicaID: 1, From: 2, Index: 9, Term: 2, Filepath: "snapshot-0000000000000009.gbsnap",
		BinVer: raftio.TransportBinVersion, Data: []byte("snapshot bytes")}
	cb, err := chunk.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendFrame(nil, methodSnapshot, cb))
	f.Add(hostile.RaftHeader(hostile.RaftMethodBatch, 1<<40, 0))
	f.Add([]byte{0xAE, 0x7D})

	limits := newFrameLimits(DefaultMaxBatchBytes)
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		decodeOne(t, limits, data)
		runtime.ReadMemStats(&after)
		// Per input byte: at most a message struct and an entry struct per
		// two bytes, a payload copy and map growth for snapshots, plus the
		// fixed cost of the reader, the filter and its registry.
		bound := uint64(len(data))*(sizeofMessage+sizeofEntry+2*mapAmplification+8) + 1<<20
		if got := after.TotalAlloc - before.TotalAlloc; got > bound {
			t.Fatalf("allocated %d bytes decoding %d input bytes (bound %d)", got, len(data), bound)
		}
	})
}

// FuzzDecodePayload decodes arbitrary bytes as a batch or chunk payload (the
// part FuzzDecodeFrame reaches only through valid checksums) and runs it
// through the inbound filter, with the same properties.
func FuzzDecodePayload(f *testing.F) {
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}
	rep := pb.Message{Type: pb.Replicate, ShardID: 1, From: 2, To: 1, Term: 3, LogIndex: 5,
		Entries: []pb.Entry{{Term: 3, Index: 6, Cmd: []byte("a=1")}, {Term: 3, Index: 7}}}
	for _, b := range []pb.MessageBatch{
		validBatch("127.0.0.1:7002", hb, rep),
		validBatch("127.0.0.1:9", pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2}),
	} {
		data, err := b.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	chunk := pb.Chunk{ShardID: 1, ReplicaID: 1, From: 2, Index: 9, Term: 2, Filepath: "snapshot-0000000000000009.gbsnap",
		BinVer: raftio.TransportBinVersion, Data: []byte("snapshot bytes"),
		Membership: pb.Membership{Addresses: map[uint64]string{1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}}}
	cb, err := chunk.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cb, true)

	limits := newFrameLimits(DefaultMaxBatchBytes)
	f.Fuzz(func(t *testing.T, data []byte, isChunk bool) {
		method := methodRaft
		if isChunk {
			method = methodSnapshot
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		decodePayload(t, limits, method, data)
		runtime.ReadMemStats(&after)
		bound := uint64(len(data))*(sizeofMessage+sizeofEntry+2*mapAmplification+8) + 1<<20
		if got := after.TotalAlloc - before.TotalAlloc; got > bound {
			t.Fatalf("allocated %d bytes decoding %d input bytes (bound %d)", got, len(data), bound)
		}
	})
}

func decodeOne(t *testing.T, limits frameLimits, data []byte) {
	r := bytes.NewReader(data)
	if readMagic(r) != nil {
		return
	}
	h, err := limits.readHeader(r)
	if err != nil {
		return
	}
	payload, err := readPayload(r, h, nil, nil)
	if err != nil {
		return
	}
	decodePayload(t, limits, h.method, payload)
}

func decodePayload(t *testing.T, limits frameLimits, method uint16, payload []byte) {
	reg := newNodeRegistry(discardLogger(), &transportStats{}, nil, "")
	reg.setLocal(1, 1)
	in := &inbound{log: discardLogger(), reg: reg, stats: reg.stats}
	if method == methodSnapshot {
		if c, err := decodeChunk(payload); err == nil {
			in.checkChunk(c)
		}
		return
	}
	b, err := limits.decodeBatch(payload)
	if err != nil {
		return
	}
	out, ok := in.filterBatch(b)
	if !ok {
		return
	}
	for _, m := range out.Requests {
		if m.To == 0 || m.From == 0 || m.ShardID != 1 || !isRemoteType(m.Type) || !validAddress(out.SourceAddress) {
			t.Fatalf("filter let through %+v from %q", m, out.SourceAddress)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
