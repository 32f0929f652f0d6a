package wf

import (
	"fmt"
	"testing"
)

// BenchmarkLifecycle applies one workflow's start (claiming its step) and
// completion, with metadata: the state machine's cost per workflow,
// indexes included.
func BenchmarkLifecycle(b *testing.B) {
	kv := newMemKV()
	l := NewLogic(1, nil)
	l.ListExecuted(func() bool { return false })
	if err := l.Open(kv); err != nil {
		b.Fatal(err)
	}
	var index uint64
	apply := func(c *Command) Result {
		raw, err := EncodeCommand(c)
		if err != nil {
			b.Fatal(err)
		}
		index++
		out, err := l.Apply(kv, index, raw)
		if err != nil {
			b.Fatal(err)
		}
		l.Applied(index)
		r, err := DecodeResult(out)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	b.ReportAllocs()
	for i := range b.N {
		id := fmt.Sprintf("wf-%d", i)
		r := apply(&Command{Op: OpStart, WF: id, Now: int64(i), State: []byte(`{}`),
			Metadata: map[string]string{"tenant": "t1", "env": "prod"},
			Tasks:    []NewTask{{Node: "A", Claim: true}}, Member: "m", Incarnation: "i", LeaseUntil: 1 << 40})
		if len(r.Claimed) != 1 {
			b.Fatalf("start claimed %d", len(r.Claimed))
		}
		apply(&Command{Op: OpComplete, WF: id, TaskID: r.Claimed[0].Task.ID, ExecID: r.Claimed[0].ExecID, Now: int64(i) + 1})
	}
}
