package crdt

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Binary encoding shared by records, states and digests.
//
//	unsigned integers   uvarint, minimal length
//	signed integers     zig-zag varint, minimal length
//	strings, bytes      uvarint length + bytes
//	lists, maps         uvarint count + elements, in strictly ascending order
//
// Every top-level value starts with one format byte. Decoding accepts exactly
// one encoding per value (minimal varints, sorted and unique lists and keys,
// no trailing bytes), so decode followed by encode gives back the input and
// equal values always travel as equal bytes.

// errTruncated reports input that ends inside a value.
var errTruncated = fmt.Errorf("truncated input: %w", ErrInvalid)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// reader decodes from a byte slice; the first error sticks and every later
// read returns zero values. Field names are only formatted into an error,
// so that decoding valid input allocates nothing for them.
type reader struct {
	b      []byte
	err    error
	member string // the member being decoded, if any, named in errors
}

func (r *reader) fail(err error) {
	if r.err == nil {
		if r.member != "" {
			err = fmt.Errorf("member %s: %w", quoteShort(r.member), err)
		}
		r.err = err
	}
}

func (r *reader) failf(format string, args ...any) {
	r.fail(fmt.Errorf(format, args...))
}

func (r *reader) uvarint(what string) uint64 { return r.uvarint2(what, "") }

// uvarint2 reads a uvarint named what+suffix in errors.
func (r *reader) uvarint2(what, suffix string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		if n == 0 {
			r.failf("%s%s: %w", what, suffix, errTruncated)
		} else {
			r.failf("%s%s: varint overflows 64 bits: %w", what, suffix, ErrInvalid)
		}
		return 0
	}
	if n != uvarintLen(v) {
		r.failf("%s%s: varint is not minimally encoded: %w", what, suffix, ErrInvalid)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		if n == 0 {
			r.failf("%s: %w", what, errTruncated)
		} else {
			r.failf("%s: varint overflows 64 bits: %w", what, ErrInvalid)
		}
		return 0
	}
	if n != len(binary.AppendVarint(nil, v)) {
		r.failf("%s: varint is not minimally encoded: %w", what, ErrInvalid)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.failf("%s: %w", what, errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count reads a list length. Every element takes at least minSize bytes,
// so a count that cannot fit in the remaining input is refused before
// anything is allocated; limit is the field's own bound.
func (r *reader) count(what string, limit, minSize int) int {
	n := r.uvarint2(what, " count")
	if r.err != nil {
		return 0
	}
	if n > uint64(limit) {
		r.failf("%s: %d entries, at most %d allowed: %w", what, n, limit, ErrTooLarge)
		return 0
	}
	if n > uint64(len(r.b)/minSize) {
		r.failf("%s: %d entries in %d remaining bytes: %w", what, n, len(r.b), errTruncated)
		return 0
	}
	return int(n)
}

// raw reads a length-prefixed byte string of at most limit bytes without
// copying it.
func (r *reader) raw(what string, limit int) []byte {
	n := r.uvarint2(what, " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) {
		r.failf("%s: %d bytes, at most %d allowed: %w", what, n, limit, ErrTooLarge)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.failf("%s: %d bytes in %d remaining: %w", what, n, len(r.b), errTruncated)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// string reads a length-prefixed UTF-8 string of at most limit bytes.
func (r *reader) string(what string, limit int) string {
	p := r.raw(what, limit)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(p) {
		r.failf("%s: not valid UTF-8: %w", what, ErrInvalid)
		return ""
	}
	return string(p)
}

// end fails unless the whole input was consumed.
func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.failf("%s: %d trailing bytes: %w", what, len(r.b), ErrInvalid)
	}
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
