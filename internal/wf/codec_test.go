package wf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// filler sets every field of a value, recursively, to a distinct non-zero
// value: slices get two elements, maps three entries, raw JSON a small object.
type filler struct{ n int }

func (f *filler) next() int { f.n++; return f.n }

func (f *filler) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d-é\x00%s", f.next(), strings.Repeat("x", f.n%5)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8:
		v.SetUint(uint64(f.next()%250 + 1))
	case reflect.Uint64:
		n := uint64(f.next())
		v.SetUint(n<<40 | n)
	case reflect.Int, reflect.Int64:
		n := int64(f.next())
		if n%2 == 0 {
			n = -n << 33
		}
		v.SetInt(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(fmt.Sprintf(`{"k":%d,"pad":"%s"}`, f.next(), strings.Repeat("y", f.n%7))))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 3 {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(k)
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			f.fill(v.Field(i))
		}
	default:
		panic("filler: unhandled kind " + v.Kind().String())
	}
}

func full[T any]() T {
	var v T
	(&filler{}).fill(reflect.ValueOf(&v).Elem())
	return v
}

// onlyField returns a T with just field i set (filled recursively).
func onlyField[T any](i int) T {
	var v T
	(&filler{n: i * 100}).fill(reflect.ValueOf(&v).Elem().Field(i))
	return v
}

func encCommand(c Command) []byte {
	b, err := EncodeCommand(&c)
	if err != nil {
		panic(err)
	}
	return b
}

func encRecord(r Record) []byte        { return r.appendTo(nil) }
func encHistory(h HistoryEntry) []byte { return h.appendTo(nil) }
func encResult(r Result) []byte {
	b, err := encodeResult(r)
	if err != nil {
		panic(err)
	}
	return b
}

func decCommand(b []byte) (Command, error) { return DecodeCommand(b) }
func decResult(b []byte) (Result, error)   { return DecodeResult(b) }
func decRecord(b []byte) (Record, error) {
	var r Record
	err := r.decode(b)
	return r, err
}
func decHistory(b []byte) (HistoryEntry, error) {
	var h HistoryEntry
	err := h.decode(b)
	return h, err
}

func roundTrip[T any](t *testing.T, v T, enc func(T) []byte, dec func([]byte) (T, error)) {
	t.Helper()
	b := enc(v)
	got, err := dec(b)
	require.NoError(t, err)
	require.Equal(t, v, got)
	require.Equal(t, b, enc(got), "re-encoding must give identical bytes")
}

func TestCodecRoundTripFull(t *testing.T) {
	t.Parallel()
	c := full[Command]()
	require.Len(t, c.Patch, 2)
	require.NotEmpty(t, c.Patch[0].Path)
	require.True(t, c.Retry && c.Unstarted && c.Tasks[1].Claim && c.Tasks[1].HasKey)
	roundTrip(t, c, encCommand, decCommand)

	r := full[Result]()
	require.NotEmpty(t, r.Claimed[1].Task.Config)
	roundTrip(t, r, encResult, decResult)

	rec := full[Record]()
	require.NotEmpty(t, rec.Executing[1].Task.LastError)
	require.NotZero(t, rec.Executing[1].LeaseUntil)
	roundTrip(t, rec, encRecord, decRecord)

	roundTrip(t, full[HistoryEntry](), encHistory, decHistory)
}

// TestCodecRoundTripEachField sets one field at a time, so that a field
// encoded under the wrong bit or out of order cannot hide behind its
// neighbours.
func TestCodecRoundTripEachField(t *testing.T) {
	t.Parallel()
	each := func(name string, n int, test func(i int)) {
		for i := range n {
			t.Run(fmt.Sprintf("%s/%d", name, i), func(t *testing.T) { test(i) })
		}
	}
	each("Command", reflect.TypeFor[Command]().NumField(), func(i int) {
		roundTrip(t, onlyField[Command](i), encCommand, decCommand)
	})
	each("NewTask", reflect.TypeFor[NewTask]().NumField(), func(i int) {
		roundTrip(t, Command{Op: OpStart, Tasks: []NewTask{onlyField[NewTask](i), {}}}, encCommand, decCommand)
	})
	each("PatchOp", reflect.TypeFor[PatchOp]().NumField(), func(i int) {
		roundTrip(t, Command{Patch: Patch{{}, onlyField[PatchOp](i)}}, encCommand, decCommand)
	})
	each("Result", reflect.TypeFor[Result]().NumField(), func(i int) {
		roundTrip(t, onlyField[Result](i), encResult, decResult)
	})
	each("Claimed", reflect.TypeFor[Claimed]().NumField(), func(i int) {
		roundTrip(t, Result{Claimed: []Claimed{onlyField[Claimed](i), {}}}, encResult, decResult)
	})
	each("Record", reflect.TypeFor[Record]().NumField(), func(i int) {
		roundTrip(t, onlyField[Record](i), encRecord, decRecord)
	})
	each("Task", reflect.TypeFor[Task]().NumField(), func(i int) {
		roundTrip(t, Record{Pending: []Task{onlyField[Task](i), {}}}, encRecord, decRecord)
	})
	each("Execution", reflect.TypeFor[Execution]().NumField(), func(i int) {
		roundTrip(t, Record{Executing: []Execution{onlyField[Execution](i), {}}}, encRecord, decRecord)
	})
	each("HistoryEntry", reflect.TypeFor[HistoryEntry]().NumField(), func(i int) {
		roundTrip(t, onlyField[HistoryEntry](i), encHistory, decHistory)
	})
}

func TestCodecZeroAndEmpty(t *testing.T) {
	t.Parallel()
	roundTrip(t, Command{}, encCommand, decCommand)
	roundTrip(t, Result{}, encResult, decResult)
	roundTrip(t, Record{}, encRecord, decRecord)
	roundTrip(t, HistoryEntry{}, encHistory, decHistory)
	require.Equal(t, []byte{codecVersion, 0, 0, 0}, encCommand(Command{}))

	// The rule: empty slices, maps and raw messages are not encoded and
	// decode as nil. Elements inside a slice keep their position even when
	// empty.
	c := Command{State: json.RawMessage{}, Metadata: map[string]string{}, Tasks: []NewTask{},
		Patch: Patch{{Path: []string{"", "a"}, Value: json.RawMessage{}}}}
	got, err := DecodeCommand(encCommand(c))
	require.NoError(t, err)
	require.Equal(t, Command{Patch: Patch{{Path: []string{"", "a"}}}}, got)

	rec := Record{Pending: []Task{}, Executing: []Execution{}, DoneKeys: []string{}, InitialNodes: []string{""}}
	gotRec, err := decRecord(encRecord(rec))
	require.NoError(t, err)
	require.Equal(t, Record{InitialNodes: []string{""}}, gotRec)
}

func TestCodecDeterministicMaps(t *testing.T) {
	t.Parallel()
	md := map[string]string{}
	for i := range 40 { // more than appendMap's stack array
		md[fmt.Sprintf("key-%02d", i)] = fmt.Sprint(i)
	}
	want := encCommand(Command{Op: OpStart, Metadata: md})
	for range 50 {
		require.Equal(t, want, encCommand(Command{Op: OpStart, Metadata: md}))
		require.Equal(t, encRecord(Record{Metadata: md}), encRecord(Record{Metadata: md}))
	}
	got, err := DecodeCommand(want)
	require.NoError(t, err)
	require.Equal(t, md, got.Metadata)
}

// TestCodecNoAliasing checks that decoded values survive the input buffer
// being reused, as Dragonboat and Pebble do.
func TestCodecNoAliasing(t *testing.T) {
	t.Parallel()
	c := full[Command]()
	b := encCommand(c)
	got, err := DecodeCommand(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0xAA
	}
	require.Equal(t, c, got)

	r := full[Result]()
	b = encResult(r)
	gotR, err := DecodeResult(b)
	require.NoError(t, err)
	clear(b)
	require.Equal(t, r, gotR)

	rec := full[Record]()
	b = encRecord(rec)
	gotRec, err := decRecord(b)
	require.NoError(t, err)
	clear(b)
	require.Equal(t, rec, gotRec)

	// Decoded raw messages have no spare capacity shared with anything.
	require.Equal(t, len(got.State), cap(got.State))
}

func TestCodecErrors(t *testing.T) {
	t.Parallel()
	valid := map[string]struct {
		b   []byte
		dec func([]byte) error
	}{
		"command": {encCommand(full[Command]()), func(b []byte) error { _, err := DecodeCommand(b); return err }},
		"result":  {encResult(full[Result]()), func(b []byte) error { _, err := DecodeResult(b); return err }},
		"record":  {encRecord(full[Record]()), func(b []byte) error { _, err := decRecord(b); return err }},
		"history": {encHistory(full[HistoryEntry]()), func(b []byte) error { _, err := decHistory(b); return err }},
	}
	for name, v := range valid {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, v.dec(v.b))
			for i := range len(v.b) {
				// A fresh exact-size copy so reading past the end cannot
				// hit spare capacity.
				p := bytes.Clone(v.b[:i])
				require.Error(t, v.dec(p), "truncated to %d of %d bytes", i, len(v.b))
			}
			for _, ver := range []byte{0, 2, 0xff, '{'} {
				p := bytes.Clone(v.b)
				p[0] = ver
				err := v.dec(p)
				require.ErrorContains(t, err, "unknown encoding version")
			}
			require.ErrorContains(t, v.dec(append(bytes.Clone(v.b), 0)), "trailing")
			// Every top-level struct leaves its last bitmap byte's high bit
			// unused: setting it is an unknown field.
			p := bytes.Clone(v.b)
			n := map[string]int{"command": 4, "result": 2, "record": 3, "history": 2}[name]
			p[n] |= 0x80
			require.ErrorContains(t, v.dec(p), "unknown fields")
		})
	}

	// Legacy JSON is refused, not misread.
	old, err := json.Marshal(full[Record]())
	require.NoError(t, err)
	_, err = decRecord(old)
	require.ErrorContains(t, err, "unknown encoding version 123")

	// A varint longer than 64 bits.
	_, err = DecodeCommand(append([]byte{codecVersion, 1 << 2, 0, 0}, bytes.Repeat([]byte{0xff}, 11)...))
	require.ErrorContains(t, err, "overflows")

	// The state machine answers an undecodable command with Invalid.
	l := NewLogic(1, nil)
	kv := newMemKV()
	require.NoError(t, l.Open(kv))
	out, err := l.Apply(kv, 1, encCommand(full[Command]())[:7])
	require.NoError(t, err)
	res, err := DecodeResult(out)
	require.NoError(t, err)
	require.Equal(t, Invalid, res.Code)
	require.Contains(t, res.Message, "truncated")
}

// TestCodecCorruptLength checks that a corrupt length or count far beyond
// the input errors without allocating it. (Not parallel: it measures allocation.)
func TestCodecCorruptLength(t *testing.T) {
	for _, field := range []byte{1 << 1, 1 << 3, 1 << 4, 1 << 5} { // WF, State, Metadata, Tasks
		huge := []byte{codecVersion, field, 0, 0}
		huge = binary.AppendUvarint(huge, 1<<62)
		huge = append(huge, "abc"...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			_, err := DecodeCommand(huge)
			require.ErrorContains(t, err, "truncated")
		}
		runtime.ReadMemStats(&after)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "field bit %#x", field)
	}
}

// TestCodecPersisted checks that the state machine stores records and history
// in the binary encoding and reads them back after a reopen.
func TestCodecPersisted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, OK, b.do(t, start("wf", "A", "B")).Code)
	require.Equal(t, OK, b.do(t, claim("wf", 1, 110)).Code)
	raw := b.kv.m[string(recordKey("wf"))]
	require.Equal(t, codecVersion, raw[0])
	require.Equal(t, OK, b.do(t, Command{Op: OpComplete, WF: "wf", TaskID: 1, ExecID: "wf/1.1", Now: 120, StartedAt: 110}).Code)

	l := NewLogic(7, nil)
	require.NoError(t, l.Open(b.kv))
	act := l.Active()
	require.Len(t, act, 1)
	require.Equal(t, b.l.Active(), act)
	out, err := l.Lookup(b.kv, EncodeQuery(Query{Op: QueryStatus, WF: "wf"}))
	require.NoError(t, err)
	var a StatusAnswer
	require.NoError(t, json.Unmarshal(out, &a))
	require.Len(t, a.History, 1)
	require.Equal(t, "wf/1.1", a.History[0].ExecID)
}

func fuzzSeeds(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
		if len(s) > 4 {
			f.Add(s[:len(s)/2])
		}
	}
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	f.Add([]byte(`{"o":1}`))
}

func FuzzDecodeCommand(f *testing.F) {
	fuzzSeeds(f,
		encCommand(full[Command]()),
		encCommand(benchCommand()),
		encCommand(Command{Op: OpClaim, WF: "w", TaskID: 3, Member: "m", Now: 5}),
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := DecodeCommand(encCommand(c))
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

func FuzzDecodeRecord(f *testing.F) {
	fuzzSeeds(f, encRecord(full[Record]()), encRecord(benchRecord()))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decRecord(b)
		if err != nil {
			return
		}
		again, err := decRecord(encRecord(r))
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}

func FuzzDecodeResult(f *testing.F) {
	fuzzSeeds(f, encResult(full[Result]()), encResult(benchResult()))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		again, err := DecodeResult(encResult(r))
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}

func FuzzDecodeHistory(f *testing.F) {
	fuzzSeeds(f, encHistory(full[HistoryEntry]()))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decHistory(b)
		if err != nil {
			return
		}
		again, err := decHistory(encHistory(h))
		require.NoError(t, err)
		require.Equal(t, h, again)
	})
}

// ---------------------------------------------------------------- benchmarks
//
// Each value is benchmarked with the JSON encoding the state machine used
// before (BenchmarkCodec/.../json) and the binary codec (.../bin):
//
//	go test -run=^$ -bench=Codec -benchmem ./internal/wf/

// benchCommand is a typical Complete: a 3-op patch and one next task.
func benchCommand() Command {
	return Command{Op: OpComplete, WF: "order-7f3a9c21", Now: 1_730_000_000_123_456_789,
		TaskID: 2, ExecID: "order-7f3a9c21/2.1", Member: "node-2", Incarnation: "inc-5d1e",
		LeaseUntil: 1_730_000_030_123_456_789, StartedAt: 1_730_000_000_100_000_000, MaxStateBytes: 1 << 20,
		Patch: Patch{
			{Path: []string{"step"}, Value: json.RawMessage(`2`)},
			{Path: []string{"order", "status"}, Value: json.RawMessage(`"charged"`)},
			{Path: []string{"tmp"}, Delete: true},
		},
		Tasks: []NewTask{{Node: "ship", Config: json.RawMessage(`{"carrier":"ups"}`), Claim: true}},
	}
}

// benchResult is a claim result: one claimed task and a 200-byte state.
func benchResult() Result {
	state := json.RawMessage(`{"order":{"id":"7f3a9c21","status":"charged","amount":1299,"currency":"EUR"},"step":2,` +
		`"customer":{"name":"Ada Lovelace","email":"ada@example.com"},"notes":"` + strings.Repeat("n", 42) + `"}`)
	if len(state) != 200 {
		panic(fmt.Sprint("bench state is ", len(state), " bytes"))
	}
	return Result{Code: OK, Status: StatusRunning, State: state, Version: 3,
		Meta: map[string]string{"tenant": "acme", "source": "api"}, Created: 1_730_000_000_000_000_000,
		Claimed: []Claimed{{ExecID: "order-7f3a9c21/3.1", Task: Task{ID: 3, Node: "ship",
			Config: json.RawMessage(`{"carrier":"ups"}`), Claims: 1, EnqueuedAt: 1_730_000_000_123_456_789}}},
	}
}

// benchRecord is a running workflow's record with two pending tasks.
func benchRecord() Record {
	return Record{ID: "order-7f3a9c21", Rev: 7, Status: StatusRunning, StateVersion: 3, StateSize: 200,
		Metadata:  map[string]string{"tenant": "acme", "source": "api"},
		CreatedAt: 1_730_000_000_000_000_000, UpdatedAt: 1_730_000_000_123_456_789,
		Pending: []Task{
			{ID: 3, Node: "ship", Config: json.RawMessage(`{"carrier":"ups"}`), EnqueuedAt: 1_730_000_000_123_456_789},
			{ID: 4, Node: "notify", Priority: 2, Key: "notify-1", HasKey: true, EnqueuedAt: 1_730_000_000_123_456_789},
		},
		NextSeq: 4, Steps: 2, Starter: "node-1", InitialNodes: []string{"validate"},
	}
}

func BenchmarkCodec(b *testing.B) {
	cmd, res, rec := benchCommand(), benchResult(), benchRecord()
	type pair struct {
		name        string
		enc         func() ([]byte, error)
		dec         func([]byte) error
		jsonEnc     func() ([]byte, error)
		jsonDecInto func([]byte) error
	}
	var buf []byte
	pairs := []pair{
		{"command", func() ([]byte, error) { return EncodeCommand(&cmd) },
			func(p []byte) error { var c Command; return c.decode(p) },
			func() ([]byte, error) { return json.Marshal(&cmd) },
			func(p []byte) error { var c Command; return json.Unmarshal(p, &c) }},
		{"result", func() ([]byte, error) { return encodeResult(res) },
			func(p []byte) error { _, err := DecodeResult(p); return err },
			func() ([]byte, error) { return json.Marshal(res) },
			func(p []byte) error { var r Result; return json.Unmarshal(p, &r) }},
		// Records are encoded into save()'s reused buffer.
		{"record", func() ([]byte, error) { buf = rec.appendTo(buf[:0]); return buf, nil },
			func(p []byte) error { var r Record; return r.decode(p) },
			func() ([]byte, error) { return json.Marshal(&rec) },
			func(p []byte) error { var r Record; return json.Unmarshal(p, &r) }},
	}
	for _, p := range pairs {
		bin, err := p.enc()
		require.NoError(b, err)
		bin = bytes.Clone(bin)
		js, err := p.jsonEnc()
		require.NoError(b, err)
		b.Run(p.name+"/encode/json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				if _, err := p.jsonEnc(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/encode/bin", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bin)))
			for b.Loop() {
				if _, err := p.enc(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/decode/json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				if err := p.jsonDecInto(js); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/decode/bin", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bin)))
			for b.Loop() {
				if err := p.dec(bin); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
