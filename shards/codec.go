package shards

import (
	"encoding/binary"
	"errors"
)

// errBadBatch reports a malformed batch encoding.
var errBadBatch = errors.New("graft: shards: malformed batch encoding")

// encodedSize returns the encoded size of one element of length n.
func encodedSize(n int) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(n)) + n
}

// encodeBatch encodes items as a uvarint count followed by
// uvarint-length-prefixed items. Commands and results share this encoding.
func encodeBatch(items [][]byte) []byte {
	size := encodedSize(0)
	for _, it := range items {
		size += encodedSize(len(it))
	}
	out := make([]byte, 0, size)
	out = binary.AppendUvarint(out, uint64(len(items)))
	for _, it := range items {
		out = binary.AppendUvarint(out, uint64(len(it)))
		out = append(out, it...)
	}
	return out
}

// decodeBatch decodes what encodeBatch produced. The returned slices alias
// data.
func decodeBatch(data []byte) ([][]byte, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return nil, errBadBatch
	}
	data = data[k:]
	items := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, errBadBatch
		}
		items = append(items, data[k:k+int(l):k+int(l)])
		data = data[k+int(l):]
	}
	if len(data) != 0 {
		return nil, errBadBatch
	}
	return items, nil
}

// isCommandBatch reports whether decodeBatch accepts data, without allocating.
func isCommandBatch(data []byte) bool {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return false
	}
	data = data[k:]
	for range n {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return false
		}
		data = data[k+int(l):]
	}
	return len(data) == 0
}
