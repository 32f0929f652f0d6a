package wf

import "encoding/binary"

// Key layout inside a shard's keyspace. Workflow IDs never contain a NUL byte
// (the public API refuses control characters), so ID+0x00 ends an ID.
const (
	prefixRecord    = 'w' // w<id>            → Record JSON
	prefixState     = 's' // s<id>            → state JSON
	prefixHistory   = 'h' // h<id>\x00<seq>   → HistoryEntry JSON
	prefixActive    = 'a' // a<id>            → "" (non-terminal workflows)
	prefixRetention = 'r' // r<ended><id>     → "" (terminal workflows by end time)
	keyCounters     = "c" //                  → Counters JSON
)

func recordKey(id string) []byte { return append([]byte{prefixRecord}, id...) }
func stateKey(id string) []byte  { return append([]byte{prefixState}, id...) }
func activeKey(id string) []byte { return append([]byte{prefixActive}, id...) }

func historyPrefix(id string) []byte {
	k := append([]byte{prefixHistory}, id...)
	return append(k, 0)
}

func historyKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(id), seq)
}

func retentionKey(ended int64, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixRetention}, uint64(ended))
	return append(k, id...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
