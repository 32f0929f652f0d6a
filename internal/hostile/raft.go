package hostile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Raft transport wire format (Dragonboat's TCP transport, which shards'
// transport keeps byte-for-byte): a frame is the two magic bytes, an
// 18-byte header — method (uint16), payload size (uint64), header CRC32
// (IEEE, computed over the header with this field zero), payload CRC32
// (uint32), all big endian — and the payload. The poison pair closes a
// snapshot connection.
const (
	RaftMagic          = "\xAE\x7D"
	RaftPoison         = "\x00\x00"
	RaftHeaderSize     = 18
	RaftMethodBatch    = uint16(100)
	RaftMethodSnapshot = uint16(200)
)

// RaftHeader returns the magic bytes and a header for a payload of size
// bytes whose CRC32 is payloadCRC, with a correct header CRC.
func RaftHeader(method uint16, size uint64, payloadCRC uint32) []byte {
	var h [RaftHeaderSize]byte
	binary.BigEndian.PutUint16(h[0:], method)
	binary.BigEndian.PutUint64(h[2:], size)
	binary.BigEndian.PutUint32(h[14:], payloadCRC)
	binary.BigEndian.PutUint32(h[10:], crc32.ChecksumIEEE(h[:]))
	return append([]byte(RaftMagic), h[:]...)
}

// RaftFrame returns a complete, well-formed message-batch frame carrying
// payload.
func RaftFrame(payload []byte) []byte {
	return append(RaftHeader(RaftMethodBatch, uint64(len(payload)), crc32.ChecksumIEEE(payload)), payload...)
}

// RaftBatch returns a well-formed frame carrying a message batch of msgs as
// a Dragonboat peer at src would send it (current binary version, the
// default deployment ID). It panics if the batch cannot be marshalled,
// which does not happen.
func RaftBatch(src string, msgs ...pb.Message) []byte {
	batch := pb.MessageBatch{
		SourceAddress: src,
		BinVer:        raftio.TransportBinVersion,
		DeploymentId:  1, // Dragonboat's deployment ID when none is configured
		Requests:      msgs,
	}
	data, err := batch.Marshal()
	if err != nil {
		panic(fmt.Sprintf("hostile: marshalling a message batch: %v", err))
	}
	return RaftFrame(data)
}

// RaftHeartbeat is a heartbeat for shard 1 from replica 2 to replica 1 at
// term 1.
func RaftHeartbeat() pb.Message {
	return pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}
}

// Names of RaftProbes' probes, for tests that check each one's outcome.
const (
	RaftProbeToZero        = "message with To=0"
	RaftProbeNotAnAddress  = "source address not an address"
	RaftProbeForgedReplica = "replica 2 from an unknown address"
	RaftProbeHuge          = "1 TiB payload declared"
	RaftProbeMaxSize       = "max uint64 payload declared"
	RaftProbeLocalType     = "local message type"
	RaftProbeSnapshot      = "install snapshot in a batch"
	RaftProbeUnknownShard  = "unknown shard"
	RaftProbeBadMagic      = "bad magic"
	RaftProbePoison        = "poison only"
	RaftProbeRandomHeader  = "random header after the magic number"
)

// RaftProbes returns hostile frames for a Raft port serving shard 1 with
// replica 1, each under 100 bytes and sent on its own connection: batches
// with bad fields (a message with To=0, a source that is not an address,
// local and snapshot message types in a batch, an unknown shard), a batch
// claiming shard 1 replica 2 from forgedSource (an address that is not
// replica 2's), headers declaring 1 TiB and 2^64-1 bytes, a bad magic number,
// the poison pair, and a random header.
func RaftProbes(rng *rand.Rand, forgedSource string) []Probe {
	hb := RaftHeartbeat()
	toZero := hb
	toZero.To = 0
	return []Probe{
		{RaftProbeToZero, RaftBatch(forgedSource, toZero)},
		{RaftProbeNotAnAddress, RaftBatch("not-an-address", hb)},
		{RaftProbeForgedReplica, RaftBatch(forgedSource, hb)},
		{RaftProbeHuge, RaftHeader(RaftMethodBatch, 1<<40, 0)},
		{RaftProbeMaxSize, RaftHeader(RaftMethodBatch, ^uint64(0), 0)},
		{RaftProbeLocalType, RaftBatch(forgedSource, pb.Message{Type: pb.LocalTick, ShardID: 1, From: 3, To: 1})},
		{RaftProbeSnapshot, RaftBatch(forgedSource, pb.Message{Type: pb.InstallSnapshot, ShardID: 1, From: 3, To: 1})},
		{RaftProbeUnknownShard, RaftBatch(forgedSource, pb.Message{Type: pb.Heartbeat, ShardID: 77, From: 3, To: 1})},
		{RaftProbeBadMagic, []byte("GET / HTTP/1.0\r\n\r\n")},
		{RaftProbePoison, []byte(RaftPoison)},
		{RaftProbeRandomHeader, append([]byte(RaftMagic), RandomBytes(rng, RaftHeaderSize+rng.IntN(32))...)},
	}
}

// RaftJunk returns payloads for junk connections to a Raft port: nothing, a
// bad magic number, the magic number alone, a header declaring 1 TiB, and a
// truncated header.
func RaftJunk() [][]byte {
	return [][]byte{
		nil,
		[]byte("hello"),
		[]byte(RaftMagic),
		RaftHeader(RaftMethodBatch, 1<<40, 0),
		append([]byte(RaftMagic), make([]byte, 10)...),
	}
}
