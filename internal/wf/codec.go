package wf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Binary encoding of commands, results, records and history entries.
//
// Every top-level value starts with one version byte (codecVersion). A
// struct is encoded as a fixed-width presence bitmap (little-endian, one bit
// per field in declaration order, ceil(fields/8) bytes) followed by the
// payloads of the fields whose bit is set, in field order. A field's bit is
// set iff the field is non-zero; zero fields have no payload. Bool fields are
// the bit alone. Payloads:
//
//	unsigned ints (IDs, revisions, versions)  uvarint
//	signed ints (int, int64 times)             zig-zag varint
//	Op, Status, Code                           one byte
//	string, json.RawMessage                    uvarint length + bytes (raw JSON is opaque)
//	slices                                     uvarint count + elements
//	map[string]string                          uvarint count + key/value strings, keys sorted
//	nested struct                              its own bitmap + payloads
//
// Execution is its Task followed by a bitmap of its own five fields; Claimed
// is its Task followed by the ExecID string.
//
// Empty slices, maps and byte strings are not encoded, so they decode as nil.
// Encoding is deterministic: equal values encode to identical bytes on every
// replica. Decoding rejects an unknown version, set bits beyond a struct's
// fields, lengths or counts beyond the remaining input, and trailing bytes.
// Decoded strings and byte slices never alias the input.
const codecVersion byte = 1

var errTruncated = errors.New("truncated input")

// bufPool holds scratch buffers for encoders whose output must be a fresh,
// exactly sized slice.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBuf = 64 << 10

// fresh returns a copy of the scratch buffer b, which the caller owns, and
// puts b back into the pool.
func fresh(bp *[]byte, b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return out
}

// ---------------------------------------------------------------- encoding

// fields reserves a presence bitmap of n bytes and returns the buffer and
// the bitmap's offset.
func fields(b []byte, n int) ([]byte, int) {
	at := len(b)
	for range n {
		b = append(b, 0)
	}
	return b, at
}

func set(b []byte, at, bit int) { b[at+bit/8] |= 1 << (bit % 8) }

func appendInt(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// appendMap encodes m with its keys in sorted order.
func appendMap(b []byte, m map[string]string) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, m[k])
	}
	return b
}

func (t *Task) appendTo(b []byte) []byte {
	b, at := fields(b, 2)
	if t.ID != 0 {
		set(b, at, 0)
		b = binary.AppendUvarint(b, t.ID)
	}
	if t.Node != "" {
		set(b, at, 1)
		b = appendStr(b, t.Node)
	}
	if len(t.Config) > 0 {
		set(b, at, 2)
		b = appendBytes(b, t.Config)
	}
	if t.Priority != 0 {
		set(b, at, 3)
		b = appendInt(b, int64(t.Priority))
	}
	if t.NotBefore != 0 {
		set(b, at, 4)
		b = appendInt(b, t.NotBefore)
	}
	if t.Key != "" {
		set(b, at, 5)
		b = appendStr(b, t.Key)
	}
	if t.HasKey {
		set(b, at, 6)
	}
	if t.Claims != 0 {
		set(b, at, 7)
		b = appendInt(b, int64(t.Claims))
	}
	if t.Failures != 0 {
		set(b, at, 8)
		b = appendInt(b, int64(t.Failures))
	}
	if t.EnqueuedAt != 0 {
		set(b, at, 9)
		b = appendInt(b, t.EnqueuedAt)
	}
	if t.LastError != "" {
		set(b, at, 10)
		b = appendStr(b, t.LastError)
	}
	return b
}

func (x *Execution) appendTo(b []byte) []byte {
	b = x.Task.appendTo(b)
	b, at := fields(b, 1)
	if x.ExecID != "" {
		set(b, at, 0)
		b = appendStr(b, x.ExecID)
	}
	if x.Member != "" {
		set(b, at, 1)
		b = appendStr(b, x.Member)
	}
	if x.Incarnation != "" {
		set(b, at, 2)
		b = appendStr(b, x.Incarnation)
	}
	if x.StartedAt != 0 {
		set(b, at, 3)
		b = appendInt(b, x.StartedAt)
	}
	if x.LeaseUntil != 0 {
		set(b, at, 4)
		b = appendInt(b, x.LeaseUntil)
	}
	if x.ClaimNonce != "" {
		set(b, at, 5)
		b = appendStr(b, x.ClaimNonce)
	}
	return b
}

func (c *Claimed) appendTo(b []byte) []byte {
	b = c.Task.appendTo(b)
	return appendStr(b, c.ExecID)
}

func (t *NewTask) appendTo(b []byte) []byte {
	b, at := fields(b, 1)
	if t.Node != "" {
		set(b, at, 0)
		b = appendStr(b, t.Node)
	}
	if len(t.Config) > 0 {
		set(b, at, 1)
		b = appendBytes(b, t.Config)
	}
	if t.Priority != 0 {
		set(b, at, 2)
		b = appendInt(b, int64(t.Priority))
	}
	if t.NotBefore != 0 {
		set(b, at, 3)
		b = appendInt(b, t.NotBefore)
	}
	if t.Key != "" {
		set(b, at, 4)
		b = appendStr(b, t.Key)
	}
	if t.HasKey {
		set(b, at, 5)
	}
	if t.Claim {
		set(b, at, 6)
	}
	return b
}

func (p *PatchOp) appendTo(b []byte) []byte {
	b, at := fields(b, 1)
	if len(p.Path) > 0 {
		set(b, at, 0)
		b = appendStrs(b, p.Path)
	}
	if len(p.Value) > 0 {
		set(b, at, 1)
		b = appendBytes(b, p.Value)
	}
	if p.Delete {
		set(b, at, 2)
	}
	return b
}

func (c *Command) appendTo(b []byte) []byte {
	b = append(b, codecVersion)
	b, at := fields(b, 3)
	// Bit 23 announces a second bitmap byte, for the fields added later
	// (Proposer); commands without them encode as before.
	ext := -1
	if c.Proposer != "" {
		set(b, at, 23)
		b, ext = fields(b, 1)
	}
	if c.Op != 0 {
		set(b, at, 0)
		b = append(b, byte(c.Op))
	}
	if c.WF != "" {
		set(b, at, 1)
		b = appendStr(b, c.WF)
	}
	if c.Now != 0 {
		set(b, at, 2)
		b = appendInt(b, c.Now)
	}
	if len(c.State) > 0 {
		set(b, at, 3)
		b = appendBytes(b, c.State)
	}
	if len(c.Metadata) > 0 {
		set(b, at, 4)
		b = appendMap(b, c.Metadata)
	}
	if len(c.Tasks) > 0 {
		set(b, at, 5)
		b = binary.AppendUvarint(b, uint64(len(c.Tasks)))
		for i := range c.Tasks {
			b = c.Tasks[i].appendTo(b)
		}
	}
	if c.Starter != "" {
		set(b, at, 6)
		b = appendStr(b, c.Starter)
	}
	if c.TaskID != 0 {
		set(b, at, 7)
		b = binary.AppendUvarint(b, c.TaskID)
	}
	if c.ExecID != "" {
		set(b, at, 8)
		b = appendStr(b, c.ExecID)
	}
	if c.Unstarted {
		set(b, at, 9)
	}
	if c.Member != "" {
		set(b, at, 10)
		b = appendStr(b, c.Member)
	}
	if c.Incarnation != "" {
		set(b, at, 11)
		b = appendStr(b, c.Incarnation)
	}
	if c.LeaseUntil != 0 {
		set(b, at, 12)
		b = appendInt(b, c.LeaseUntil)
	}
	if len(c.Patch) > 0 {
		set(b, at, 13)
		b = binary.AppendUvarint(b, uint64(len(c.Patch)))
		for i := range c.Patch {
			b = c.Patch[i].appendTo(b)
		}
	}
	if c.StartedAt != 0 {
		set(b, at, 14)
		b = appendInt(b, c.StartedAt)
	}
	if c.MaxStateBytes != 0 {
		set(b, at, 15)
		b = appendInt(b, int64(c.MaxStateBytes))
	}
	if c.Error != "" {
		set(b, at, 16)
		b = appendStr(b, c.Error)
	}
	if c.Retry {
		set(b, at, 17)
	}
	if c.RetryAt != 0 {
		set(b, at, 18)
		b = appendInt(b, c.RetryAt)
	}
	if c.StateVersion != 0 {
		set(b, at, 19)
		b = binary.AppendUvarint(b, c.StateVersion)
	}
	if c.Before != 0 {
		set(b, at, 20)
		b = appendInt(b, c.Before)
	}
	if c.Limit != 0 {
		set(b, at, 21)
		b = appendInt(b, int64(c.Limit))
	}
	if c.Nonce != "" {
		set(b, at, 22)
		b = appendStr(b, c.Nonce)
	}
	if c.Proposer != "" {
		set(b, ext, 0)
		b = appendStr(b, c.Proposer)
	}
	return b
}

func (r *Result) appendTo(b []byte) []byte {
	b = append(b, codecVersion)
	b, at := fields(b, 2)
	if r.Code != 0 {
		set(b, at, 0)
		b = append(b, byte(r.Code))
	}
	if r.Message != "" {
		set(b, at, 1)
		b = appendStr(b, r.Message)
	}
	if r.Status != 0 {
		set(b, at, 2)
		b = append(b, byte(r.Status))
	}
	if r.Purged != 0 {
		set(b, at, 3)
		b = appendInt(b, int64(r.Purged))
	}
	if len(r.Claimed) > 0 {
		set(b, at, 4)
		b = binary.AppendUvarint(b, uint64(len(r.Claimed)))
		for i := range r.Claimed {
			b = r.Claimed[i].appendTo(b)
		}
	}
	if len(r.State) > 0 {
		set(b, at, 5)
		b = appendBytes(b, r.State)
	}
	if r.Version != 0 {
		set(b, at, 6)
		b = binary.AppendUvarint(b, r.Version)
	}
	if len(r.Meta) > 0 {
		set(b, at, 7)
		b = appendMap(b, r.Meta)
	}
	if r.Created != 0 {
		set(b, at, 8)
		b = appendInt(b, r.Created)
	}
	return b
}

func (r *Record) appendTo(b []byte) []byte {
	b = append(b, codecVersion)
	b, at := fields(b, 3)
	if r.ID != "" {
		set(b, at, 0)
		b = appendStr(b, r.ID)
	}
	if r.Rev != 0 {
		set(b, at, 1)
		b = binary.AppendUvarint(b, r.Rev)
	}
	if r.Status != 0 {
		set(b, at, 2)
		b = append(b, byte(r.Status))
	}
	if r.StateVersion != 0 {
		set(b, at, 3)
		b = binary.AppendUvarint(b, r.StateVersion)
	}
	if r.StateSize != 0 {
		set(b, at, 4)
		b = appendInt(b, int64(r.StateSize))
	}
	if len(r.Metadata) > 0 {
		set(b, at, 5)
		b = appendMap(b, r.Metadata)
	}
	if r.CreatedAt != 0 {
		set(b, at, 6)
		b = appendInt(b, r.CreatedAt)
	}
	if r.UpdatedAt != 0 {
		set(b, at, 7)
		b = appendInt(b, r.UpdatedAt)
	}
	if r.EndedAt != 0 {
		set(b, at, 8)
		b = appendInt(b, r.EndedAt)
	}
	if len(r.Pending) > 0 {
		set(b, at, 9)
		b = binary.AppendUvarint(b, uint64(len(r.Pending)))
		for i := range r.Pending {
			b = r.Pending[i].appendTo(b)
		}
	}
	if len(r.Executing) > 0 {
		set(b, at, 10)
		b = binary.AppendUvarint(b, uint64(len(r.Executing)))
		for i := range r.Executing {
			b = r.Executing[i].appendTo(b)
		}
	}
	if len(r.DoneKeys) > 0 {
		set(b, at, 11)
		b = appendStrs(b, r.DoneKeys)
	}
	if r.NextSeq != 0 {
		set(b, at, 12)
		b = binary.AppendUvarint(b, r.NextSeq)
	}
	if r.Steps != 0 {
		set(b, at, 13)
		b = binary.AppendUvarint(b, r.Steps)
	}
	if r.LastError != "" {
		set(b, at, 14)
		b = appendStr(b, r.LastError)
	}
	if r.FailedNode != "" {
		set(b, at, 15)
		b = appendStr(b, r.FailedNode)
	}
	if r.FailedTry != 0 {
		set(b, at, 16)
		b = appendInt(b, int64(r.FailedTry))
	}
	if r.BlockedSince != 0 {
		set(b, at, 17)
		b = appendInt(b, r.BlockedSince)
	}
	if r.Starter != "" {
		set(b, at, 18)
		b = appendStr(b, r.Starter)
	}
	if len(r.InitialNodes) > 0 {
		set(b, at, 19)
		b = appendStrs(b, r.InitialNodes)
	}
	if r.StartNonce != "" {
		set(b, at, 20)
		b = appendStr(b, r.StartNonce)
	}
	return b
}

func (h *HistoryEntry) appendTo(b []byte) []byte {
	b = append(b, codecVersion)
	b, at := fields(b, 2)
	if h.TaskID != 0 {
		set(b, at, 0)
		b = binary.AppendUvarint(b, h.TaskID)
	}
	if h.Node != "" {
		set(b, at, 1)
		b = appendStr(b, h.Node)
	}
	if h.ExecID != "" {
		set(b, at, 2)
		b = appendStr(b, h.ExecID)
	}
	if h.Member != "" {
		set(b, at, 3)
		b = appendStr(b, h.Member)
	}
	if h.Attempt != 0 {
		set(b, at, 4)
		b = appendInt(b, int64(h.Attempt))
	}
	if h.StartedAt != 0 {
		set(b, at, 5)
		b = appendInt(b, h.StartedAt)
	}
	if h.Duration != 0 {
		set(b, at, 6)
		b = appendInt(b, h.Duration)
	}
	if h.Error != "" {
		set(b, at, 7)
		b = appendStr(b, h.Error)
	}
	if len(h.Next) > 0 {
		set(b, at, 8)
		b = appendStrs(b, h.Next)
	}
	return b
}

// ---------------------------------------------------------------- decoding

// decoder reads from b; the first error sticks and makes every later read
// return a zero value without consuming input.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// begin checks the version byte of a top-level value.
func (d *decoder) begin() {
	if len(d.b) == 0 {
		d.fail(errTruncated)
		return
	}
	if v := d.b[0]; v != codecVersion {
		d.fail(fmt.Errorf("unknown encoding version %d", v))
		return
	}
	d.b = d.b[1:]
}

// end reports the sticky error, or trailing input.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}

// fields reads a presence bitmap of n bytes describing nf fields.
func (d *decoder) fields(n, nf int) uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < n {
		d.fail(errTruncated)
		return 0
	}
	var m uint64
	for i := range n {
		m |= uint64(d.b[i]) << (8 * i)
	}
	d.b = d.b[n:]
	if m>>nf != 0 {
		d.fail(fmt.Errorf("unknown fields in bitmap %#x", m))
		return 0
	}
	return m
}

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail(errTruncated)
		} else {
			d.fail(errors.New("varint overflows 64 bits"))
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		if n == 0 {
			d.fail(errTruncated)
		} else {
			d.fail(errors.New("varint overflows 64 bits"))
		}
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail(fmt.Errorf("integer %d overflows int", v))
		return 0
	}
	return int(v)
}

// count reads a length or element count, which cannot exceed the remaining
// input since every element takes at least one byte.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail(errTruncated)
		return 0
	}
	return int(v)
}

// raw returns the next n bytes, aliasing the input.
func (d *decoder) raw() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw()) }

// bytes returns a copy of the next length-prefixed bytes; nil if empty.
func (d *decoder) bytes() []byte {
	p := d.raw()
	if len(p) == 0 {
		return nil
	}
	out := make([]byte, len(p))
	copy(out, p)
	return out
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	if d.err != nil {
		return nil
	}
	return ss
}

func (d *decoder) strMap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		v := d.str()
		if d.err != nil {
			return nil
		}
		m[k] = v
	}
	return m
}

func (t *Task) decodeFrom(d *decoder) {
	m := d.fields(2, 11)
	if m&(1<<0) != 0 {
		t.ID = d.uvarint()
	}
	if m&(1<<1) != 0 {
		t.Node = d.str()
	}
	if m&(1<<2) != 0 {
		t.Config = d.bytes()
	}
	if m&(1<<3) != 0 {
		t.Priority = d.int()
	}
	if m&(1<<4) != 0 {
		t.NotBefore = d.varint()
	}
	if m&(1<<5) != 0 {
		t.Key = d.str()
	}
	t.HasKey = m&(1<<6) != 0
	if m&(1<<7) != 0 {
		t.Claims = d.int()
	}
	if m&(1<<8) != 0 {
		t.Failures = d.int()
	}
	if m&(1<<9) != 0 {
		t.EnqueuedAt = d.varint()
	}
	if m&(1<<10) != 0 {
		t.LastError = d.str()
	}
}

func (x *Execution) decodeFrom(d *decoder) {
	x.Task.decodeFrom(d)
	m := d.fields(1, 6)
	if m&(1<<0) != 0 {
		x.ExecID = d.str()
	}
	if m&(1<<1) != 0 {
		x.Member = d.str()
	}
	if m&(1<<2) != 0 {
		x.Incarnation = d.str()
	}
	if m&(1<<3) != 0 {
		x.StartedAt = d.varint()
	}
	if m&(1<<4) != 0 {
		x.LeaseUntil = d.varint()
	}
	if m&(1<<5) != 0 {
		x.ClaimNonce = d.str()
	}
}

func (c *Claimed) decodeFrom(d *decoder) {
	c.Task.decodeFrom(d)
	c.ExecID = d.str()
}

func (t *NewTask) decodeFrom(d *decoder) {
	m := d.fields(1, 7)
	if m&(1<<0) != 0 {
		t.Node = d.str()
	}
	if m&(1<<1) != 0 {
		t.Config = d.bytes()
	}
	if m&(1<<2) != 0 {
		t.Priority = d.int()
	}
	if m&(1<<3) != 0 {
		t.NotBefore = d.varint()
	}
	if m&(1<<4) != 0 {
		t.Key = d.str()
	}
	t.HasKey = m&(1<<5) != 0
	t.Claim = m&(1<<6) != 0
}

func (p *PatchOp) decodeFrom(d *decoder) {
	m := d.fields(1, 3)
	if m&(1<<0) != 0 {
		p.Path = d.strs()
	}
	if m&(1<<1) != 0 {
		p.Value = d.bytes()
	}
	p.Delete = m&(1<<2) != 0
}

// decodeSlice decodes a counted sequence of elements.
func decodeSlice[T any, P interface {
	*T
	decodeFrom(*decoder)
}](d *decoder) []T {
	n := d.count()
	if n == 0 {
		return nil
	}
	s := make([]T, n)
	for i := range s {
		P(&s[i]).decodeFrom(d)
		if d.err != nil {
			return nil
		}
	}
	return s
}

func (c *Command) decode(b []byte) error {
	*c = Command{}
	d := decoder{b: b}
	d.begin()
	m := d.fields(3, 24)
	var m2 uint64
	if m&(1<<23) != 0 {
		if m2 = d.fields(1, 1); m2 == 0 && d.err == nil {
			d.fail(errors.New("empty extension bitmap"))
		}
	}
	if m&(1<<0) != 0 {
		c.Op = Op(d.u8())
	}
	if m&(1<<1) != 0 {
		c.WF = d.str()
	}
	if m&(1<<2) != 0 {
		c.Now = d.varint()
	}
	if m&(1<<3) != 0 {
		c.State = d.bytes()
	}
	if m&(1<<4) != 0 {
		c.Metadata = d.strMap()
	}
	if m&(1<<5) != 0 {
		c.Tasks = decodeSlice[NewTask](&d)
	}
	if m&(1<<6) != 0 {
		c.Starter = d.str()
	}
	if m&(1<<7) != 0 {
		c.TaskID = d.uvarint()
	}
	if m&(1<<8) != 0 {
		c.ExecID = d.str()
	}
	c.Unstarted = m&(1<<9) != 0
	if m&(1<<10) != 0 {
		c.Member = d.str()
	}
	if m&(1<<11) != 0 {
		c.Incarnation = d.str()
	}
	if m&(1<<12) != 0 {
		c.LeaseUntil = d.varint()
	}
	if m&(1<<13) != 0 {
		c.Patch = decodeSlice[PatchOp](&d)
	}
	if m&(1<<14) != 0 {
		c.StartedAt = d.varint()
	}
	if m&(1<<15) != 0 {
		c.MaxStateBytes = d.int()
	}
	if m&(1<<16) != 0 {
		c.Error = d.str()
	}
	c.Retry = m&(1<<17) != 0
	if m&(1<<18) != 0 {
		c.RetryAt = d.varint()
	}
	if m&(1<<19) != 0 {
		c.StateVersion = d.uvarint()
	}
	if m&(1<<20) != 0 {
		c.Before = d.varint()
	}
	if m&(1<<21) != 0 {
		c.Limit = d.int()
	}
	if m&(1<<22) != 0 {
		c.Nonce = d.str()
	}
	if m2&(1<<0) != 0 {
		c.Proposer = d.str()
	}
	return d.end()
}

func (r *Result) decode(b []byte) error {
	*r = Result{}
	d := decoder{b: b}
	d.begin()
	m := d.fields(2, 9)
	if m&(1<<0) != 0 {
		r.Code = Code(d.u8())
	}
	if m&(1<<1) != 0 {
		r.Message = d.str()
	}
	if m&(1<<2) != 0 {
		r.Status = Status(d.u8())
	}
	if m&(1<<3) != 0 {
		r.Purged = d.int()
	}
	if m&(1<<4) != 0 {
		r.Claimed = decodeSlice[Claimed](&d)
	}
	if m&(1<<5) != 0 {
		r.State = d.bytes()
	}
	if m&(1<<6) != 0 {
		r.Version = d.uvarint()
	}
	if m&(1<<7) != 0 {
		r.Meta = d.strMap()
	}
	if m&(1<<8) != 0 {
		r.Created = d.varint()
	}
	return d.end()
}

func (r *Record) decode(b []byte) error {
	*r = Record{}
	d := decoder{b: b}
	d.begin()
	m := d.fields(3, 21)
	if m&(1<<0) != 0 {
		r.ID = d.str()
	}
	if m&(1<<1) != 0 {
		r.Rev = d.uvarint()
	}
	if m&(1<<2) != 0 {
		r.Status = Status(d.u8())
	}
	if m&(1<<3) != 0 {
		r.StateVersion = d.uvarint()
	}
	if m&(1<<4) != 0 {
		r.StateSize = d.int()
	}
	if m&(1<<5) != 0 {
		r.Metadata = d.strMap()
	}
	if m&(1<<6) != 0 {
		r.CreatedAt = d.varint()
	}
	if m&(1<<7) != 0 {
		r.UpdatedAt = d.varint()
	}
	if m&(1<<8) != 0 {
		r.EndedAt = d.varint()
	}
	if m&(1<<9) != 0 {
		r.Pending = decodeSlice[Task](&d)
	}
	if m&(1<<10) != 0 {
		r.Executing = decodeSlice[Execution](&d)
	}
	if m&(1<<11) != 0 {
		r.DoneKeys = d.strs()
	}
	if m&(1<<12) != 0 {
		r.NextSeq = d.uvarint()
	}
	if m&(1<<13) != 0 {
		r.Steps = d.uvarint()
	}
	if m&(1<<14) != 0 {
		r.LastError = d.str()
	}
	if m&(1<<15) != 0 {
		r.FailedNode = d.str()
	}
	if m&(1<<16) != 0 {
		r.FailedTry = d.int()
	}
	if m&(1<<17) != 0 {
		r.BlockedSince = d.varint()
	}
	if m&(1<<18) != 0 {
		r.Starter = d.str()
	}
	if m&(1<<19) != 0 {
		r.InitialNodes = d.strs()
	}
	if m&(1<<20) != 0 {
		r.StartNonce = d.str()
	}
	return d.end()
}

func (h *HistoryEntry) decode(b []byte) error {
	*h = HistoryEntry{}
	d := decoder{b: b}
	d.begin()
	m := d.fields(2, 9)
	if m&(1<<0) != 0 {
		h.TaskID = d.uvarint()
	}
	if m&(1<<1) != 0 {
		h.Node = d.str()
	}
	if m&(1<<2) != 0 {
		h.ExecID = d.str()
	}
	if m&(1<<3) != 0 {
		h.Member = d.str()
	}
	if m&(1<<4) != 0 {
		h.Attempt = d.int()
	}
	if m&(1<<5) != 0 {
		h.StartedAt = d.varint()
	}
	if m&(1<<6) != 0 {
		h.Duration = d.varint()
	}
	if m&(1<<7) != 0 {
		h.Error = d.str()
	}
	if m&(1<<8) != 0 {
		h.Next = d.strs()
	}
	return d.end()
}

// ---------------------------------------------------------------- entry points

// EncodeCommand serialises a command for proposal. The result is a fresh
// slice the caller owns.
func EncodeCommand(c *Command) ([]byte, error) {
	bp := bufPool.Get().(*[]byte)
	return fresh(bp, c.appendTo(*bp)), nil
}

// DecodeCommand parses what EncodeCommand produced. The command does not
// alias b.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := c.decode(b); err != nil {
		return Command{}, fmt.Errorf("decoding command: %w", err)
	}
	return c, nil
}

// encodeResult serialises a command's result into a fresh slice.
func encodeResult(r Result) ([]byte, error) {
	bp := bufPool.Get().(*[]byte)
	return fresh(bp, r.appendTo(*bp)), nil
}

// EncodeResult serialises a command's result, as Logic.Apply returns it.
func EncodeResult(r Result) ([]byte, error) { return encodeResult(r) }

// DecodeResult parses a command's result. The result does not alias b.
func DecodeResult(b []byte) (Result, error) {
	var r Result
	if err := r.decode(b); err != nil {
		return Result{}, fmt.Errorf("decoding command result: %w", err)
	}
	return r, nil
}
