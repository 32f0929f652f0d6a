package shards

// The frame format and the header encoding below derive from Dragonboat's
// internal/transport/tcp.go (Copyright 2017-2019 Lei Ni and other
// contributors, Apache License 2.0): requestHeader.encode/decode, the magic
// and poison numbers and the method types are kept byte-for-byte so that a
// member running this transport and one running Dragonboat's TCP transport
// understand each other. What differs is the reading side: sizes are checked
// against limits before anything is allocated, the payload buffer grows only
// as bytes actually arrive, and a message batch is pre-scanned so that its
// decoded size is bounded before it is unmarshalled.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unsafe"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Wire constants shared with Dragonboat's TCP transport.
const (
	frameHeaderSize        = 18
	methodRaft      uint16 = 100
	methodSnapshot  uint16 = 200
)

var (
	frameMagic  = [2]byte{0xAE, 0x7D}
	framePoison = [2]byte{0x0, 0x0}
)

// Frame limits. Dragonboat's sender packs a message batch until the sum of
// its messages' SizeUpperLimit reaches dragonboatBatchBytes, and a single
// Replicate message carries entries up to that size (always at least one
// entry); snapshot chunks carry at most dragonboatChunkBytes of data.
const (
	dragonboatBatchBytes = 64 << 20 // settings.MaxMessageBatchSize
	dragonboatChunkBytes = 2 << 20  // settings.SnapshotChunkSize
	// frameOverhead covers per-message and per-batch framing (addresses,
	// headers, SizeUpperLimit's fixed costs) beyond the entry bytes.
	frameOverhead = 1 << 20
	// chunkOverhead covers a chunk's metadata: file path, membership, file
	// info.
	chunkOverhead = 256 << 10
	// maxChunkFrame is the largest snapshot chunk frame accepted.
	maxChunkFrame = dragonboatChunkBytes + chunkOverhead
	// readStep is how much payload is read (and the buffer grown) at a time.
	readStep = 256 << 10
)

var (
	errBadMagic     = errors.New("bad magic number")
	errPoison       = errors.New("poison received")
	errBadHeader    = errors.New("bad frame header")
	errBadMethod    = errors.New("unknown frame method")
	errEmptyFrame   = errors.New("empty frame")
	errFrameTooBig  = errors.New("frame too large")
	errBadChecksum  = errors.New("payload checksum mismatch")
	errBatchTooBig  = errors.New("decoded batch would be too large")
	errMalformed    = errors.New("malformed payload")
	errChunkTooBig  = errors.New("chunk data too large")
	errDecodePanics = errors.New("payload decoder panicked")
)

// frameLimits bounds what readFrame and decodeBatch accept.
type frameLimits struct {
	// maxBatchFrame is the largest message-batch payload accepted.
	maxBatchFrame uint64
	// maxDecoded bounds the estimated heap of a decoded message batch.
	maxDecoded uint64
}

// newFrameLimits derives the limits from the largest Raft entry this member
// proposes (Config.MaxBatchBytes): every batch Dragonboat's sender builds
// from such entries fits.
func newFrameLimits(maxBatchBytes int) frameLimits {
	f := uint64(dragonboatBatchBytes) + uint64(max(maxBatchBytes, 0)) + frameOverhead
	return frameLimits{maxBatchFrame: f, maxDecoded: 2 * f}
}

// frameHeader is the 18-byte header following the magic number: method (2
// bytes), payload size (8), header CRC32 (4), payload CRC32 (4), big endian.
type frameHeader struct {
	method uint16
	size   uint64
	crc    uint32
}

// encode writes h into buf (at least frameHeaderSize bytes) and returns the
// header bytes.
func (h frameHeader) encode(buf []byte) []byte {
	buf = buf[:frameHeaderSize]
	binary.BigEndian.PutUint16(buf, h.method)
	binary.BigEndian.PutUint64(buf[2:], h.size)
	binary.BigEndian.PutUint32(buf[10:], 0)
	binary.BigEndian.PutUint32(buf[14:], h.crc)
	binary.BigEndian.PutUint32(buf[10:], crc32.ChecksumIEEE(buf))
	return buf
}

// decodeFrameHeader parses and checks a header. It does not modify buf.
func decodeFrameHeader(buf []byte) (frameHeader, error) {
	if len(buf) < frameHeaderSize {
		return frameHeader{}, errBadHeader
	}
	var tmp [frameHeaderSize]byte
	copy(tmp[:], buf)
	incoming := binary.BigEndian.Uint32(tmp[10:])
	binary.BigEndian.PutUint32(tmp[10:], 0)
	if crc32.ChecksumIEEE(tmp[:]) != incoming {
		return frameHeader{}, errBadHeader
	}
	h := frameHeader{
		method: binary.BigEndian.Uint16(tmp[:]),
		size:   binary.BigEndian.Uint64(tmp[2:]),
		crc:    binary.BigEndian.Uint32(tmp[14:]),
	}
	if h.method != methodRaft && h.method != methodSnapshot {
		return frameHeader{}, errBadMethod
	}
	if h.size == 0 {
		return frameHeader{}, errEmptyFrame
	}
	return h, nil
}

// maxPayload is the largest payload accepted for method.
func (l frameLimits) maxPayload(method uint16) uint64 {
	if method == methodSnapshot {
		return maxChunkFrame
	}
	return l.maxBatchFrame
}

// readMagic reads the two bytes that open a frame, or the poison pair that
// closes a snapshot connection.
func readMagic(r io.Reader) error {
	var m [2]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return err
	}
	switch {
	case m == framePoison:
		return errPoison
	case m != frameMagic:
		return errBadMagic
	}
	return nil
}

// readHeader reads and checks a frame header, refusing payload sizes above
// the limits before anything is allocated.
func (l frameLimits) readHeader(r io.Reader) (frameHeader, error) {
	var hb [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return frameHeader{}, err
	}
	h, err := decodeFrameHeader(hb[:])
	if err != nil {
		return frameHeader{}, err
	}
	if h.size > l.maxPayload(h.method) {
		return frameHeader{}, fmt.Errorf("%w: %d bytes (limit %d)", errFrameTooBig, h.size, l.maxPayload(h.method))
	}
	return h, nil
}

// readPayload reads h.size bytes into buf (reused when large enough) and
// checks the payload CRC. The buffer grows by at most readStep beyond what
// has arrived, so a peer declaring a large size must send it before this
// side holds it. before is called before each read (to set a deadline).
func readPayload(r io.Reader, h frameHeader, buf []byte, before func() error) ([]byte, error) {
	size := int(h.size) // checked against the limits, which fit in an int
	buf = buf[:0]
	for len(buf) < size {
		n := min(size-len(buf), readStep)
		if cap(buf)-len(buf) < n {
			nb := make([]byte, len(buf), min(size, max(2*cap(buf), len(buf)+n)))
			copy(nb, buf)
			buf = nb
		}
		if before != nil {
			if err := before(); err != nil {
				return nil, err
			}
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+n]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+n]
	}
	if crc32.ChecksumIEEE(buf) != h.crc {
		return nil, errBadChecksum
	}
	return buf, nil
}

// writeFrame writes magic, header and payload to w.
func writeFrame(w io.Writer, method uint16, payload []byte) error {
	var hb [2 + frameHeaderSize]byte
	copy(hb[:], frameMagic[:])
	frameHeader{method: method, size: uint64(len(payload)), crc: crc32.ChecksumIEEE(payload)}.encode(hb[2:])
	if _, err := w.Write(hb[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// appendFrame appends one complete frame to dst (for tests and fuzz seeds).
func appendFrame(dst []byte, method uint16, payload []byte) []byte {
	var b bytes.Buffer
	_ = writeFrame(&b, method, payload)
	return append(dst, b.Bytes()...)
}

// Decoded sizes used to bound what unmarshalling a batch may allocate.
var (
	sizeofMessage = uint64(unsafe.Sizeof(pb.Message{}))
	sizeofEntry   = uint64(unsafe.Sizeof(pb.Entry{}))
)

// mapAmplification bounds the heap a byte of an embedded snapshot (whose
// membership maps decode to Go maps) may turn into.
const mapAmplification = 16

// decodeBatch pre-scans a message batch payload, refuses it when its decoded
// form would exceed l.maxDecoded, and unmarshals it. It never panics and
// allocates at most a constant multiple of len(payload).
func (l frameLimits) decodeBatch(payload []byte) (batch pb.MessageBatch, err error) {
	est, err := estimateBatch(payload)
	if err != nil {
		return pb.MessageBatch{}, err
	}
	if est > l.maxDecoded {
		return pb.MessageBatch{}, fmt.Errorf("%w: ~%d bytes (limit %d)", errBatchTooBig, est, l.maxDecoded)
	}
	defer func() {
		if r := recover(); r != nil {
			batch, err = pb.MessageBatch{}, fmt.Errorf("%w: %v", errDecodePanics, r)
		}
	}()
	if err := batch.Unmarshal(payload); err != nil {
		return pb.MessageBatch{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return batch, nil
}

// decodeChunk unmarshals a snapshot chunk payload (already bounded by
// maxChunkFrame) and checks its data size.
func decodeChunk(payload []byte) (chunk pb.Chunk, err error) {
	defer func() {
		if r := recover(); r != nil {
			chunk, err = pb.Chunk{}, fmt.Errorf("%w: %v", errDecodePanics, r)
		}
	}()
	if uint64(len(payload)) > maxChunkFrame {
		return pb.Chunk{}, errFrameTooBig
	}
	if err := chunk.Unmarshal(payload); err != nil {
		return pb.Chunk{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if len(chunk.Data) > dragonboatChunkBytes {
		return pb.Chunk{}, errChunkTooBig
	}
	return chunk, nil
}

// estimateBatch walks the protobuf encoding of a pb.MessageBatch without
// allocating and returns an upper estimate of its decoded heap: the payload
// (bytes fields are copied) plus a struct per message and per entry, with
// embedded snapshots weighted for their maps.
func estimateBatch(b []byte) (uint64, error) {
	est := uint64(len(b))
	err := walkFields(b, func(field uint64, wire int, v []byte) error {
		if field != 1 || wire != 2 { // Requests
			return nil
		}
		est += sizeofMessage
		return walkFields(v, func(field uint64, wire int, v []byte) error {
			switch {
			case field == 11 && wire == 2: // Entries
				est += sizeofEntry
			case field == 12 && wire == 2: // Snapshot
				est += mapAmplification * uint64(len(v))
			}
			return nil
		})
	})
	return est, err
}

// walkFields calls f for each top-level field of the protobuf message b:
// its number, wire type and, for length-delimited fields, its bytes.
func walkFields(b []byte, f func(field uint64, wire int, v []byte) error) error {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errMalformed
		}
		b = b[n:]
		field, wire := tag>>3, int(tag&7)
		if field == 0 {
			return errMalformed
		}
		var v []byte
		switch wire {
		case 0:
			_, n := binary.Uvarint(b)
			if n <= 0 {
				return errMalformed
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errMalformed
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errMalformed
			}
			v, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errMalformed
			}
			b = b[4:]
		default:
			return errMalformed
		}
		if err := f(field, wire, v); err != nil {
			return err
		}
	}
	return nil
}
