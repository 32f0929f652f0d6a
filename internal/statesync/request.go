package statesync

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/eleven-am/graft/gossip/crdt"
)

// requestFormat is the first byte of an encoded exchange request.
const requestFormat byte = 1

// maxDigestBytes bounds the digest part of a request: crdt.MaxMembers
// entries of at most a 128-byte ID and 16 uvarints and a hash each.
const maxDigestBytes = crdt.MaxMembers * (2 + crdt.MaxMemberIDLen + 16*binary.MaxVarintLen64 + 8)

// Request is one anti-entropy request: the sender's digest, and the
// sender's own entry it pushes (at most one member).
type Request struct {
	// Digest is the sender's crdt.State.Digest.
	Digest crdt.Digest
	// Push holds the sender's own entry (State.Subset(sender)); it may be
	// empty.
	Push *crdt.State
}

// EncodeRequest encodes a request: format byte, uvarint length of the
// digest, the digest (crdt.Digest.Encode), then the pushed state
// (crdt.State.Encode).
func EncodeRequest(d crdt.Digest, push *crdt.State) []byte {
	db := d.Encode()
	pb := push.Encode()
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(db)+len(pb))
	b = append(b, requestFormat)
	b = binary.AppendUvarint(b, uint64(len(db)))
	b = append(b, db...)
	return append(b, pb...)
}

// DecodeRequest decodes an exchange request with the bounded crdt
// decoders. It never panics and refuses a push of more than one member.
func DecodeRequest(p []byte) (Request, error) {
	if len(p) == 0 || p[0] != requestFormat {
		return Request{}, errors.New("state request: unknown format")
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return Request{}, errors.New("state request: bad digest length")
	}
	if n > maxDigestBytes {
		return Request{}, fmt.Errorf("state request: digest is %d bytes, at most %d allowed", n, maxDigestBytes)
	}
	start := 1 + k
	d, err := crdt.DecodeDigest(p[start : start+int(n)])
	if err != nil {
		return Request{}, fmt.Errorf("state request: %w", err)
	}
	push, err := crdt.Decode(p[start+int(n):])
	if err != nil {
		return Request{}, fmt.Errorf("state request: pushed entry: %w", err)
	}
	if push.Len() > 1 {
		return Request{}, fmt.Errorf("state request: pushes %d members, at most 1 allowed", push.Len())
	}
	return Request{Digest: d, Push: push}, nil
}
