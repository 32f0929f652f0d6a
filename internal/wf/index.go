package wf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
)

// Secondary indexes, kept by the state machine in the shard's keyspace and
// written in the same batch as the record they index, so they are part of
// every snapshot and of the state hash. Every index key ends with the
// workflow's position: its start time inverted (newest first) and its ID,
//
//	pos = ^(uint64(CreatedAt) ^ 1<<63) (8 bytes, big endian) <id>
//
// so that a scan of any index prefix yields workflows newest first, ties by
// ascending ID, and a start-time range is a key range.
//
//	t <pos>                                  every retained workflow
//	i <list status:1> <pos>                  by status as the API reports it (blocked apart)
//	m <uvarint len><key><uvarint len><value> <pos>   one per metadata pair
//	n <uvarint len><node> <pos>              per node a workflow waits on (below)
//	k                                        → StatusCounts JSON
//	v                                        → index layout version
//
// The node index holds, for a running, paused or blocked workflow, each
// distinct node of its pending and executing steps, and for a failed one its
// failed node: "what is stuck on node X, what failed in node X". Completed
// and stopped workflows are in no node index.
const (
	prefixByTime   = 't'
	prefixByStatus = 'i'
	prefixByMeta   = 'm'
	prefixByNode   = 'n'
	keyStatusCount = "k"
	keyIndexLayout = "v"
)

// indexLayout is the version of the index layout written under
// keyIndexLayout; Open builds the indexes of a keyspace without it.
const indexLayout = "1"

// ListBlocked is the list status of a running workflow that is blocked
// (Record.BlockedSince set); the other list statuses are Status values.
const ListBlocked Status = 6

// ListStatus is a record's status as the public API reports it: Running
// with BlockedSince set is ListBlocked.
func ListStatus(r *Record) Status {
	if r.Status == StatusRunning && r.BlockedSince != 0 {
		return ListBlocked
	}
	return r.Status
}

// StatusCounts are a shard's retained workflows by list status, indexed by
// Status (ListBlocked included).
type StatusCounts [ListBlocked + 1]int64

// posLen is the length of a position's time part.
const posLen = 8

func appendPos(b []byte, created int64, id string) []byte {
	b = binary.BigEndian.AppendUint64(b, ^(uint64(created) ^ 1<<63))
	return append(b, id...)
}

// decodePos splits a position (an index key's suffix) into its start time
// and ID.
func decodePos(p []byte) (int64, string, error) {
	if len(p) < posLen {
		return 0, "", fmt.Errorf("index position of %d bytes, want at least %d", len(p), posLen)
	}
	return int64(^binary.BigEndian.Uint64(p) ^ 1<<63), string(p[posLen:]), nil
}

func appendLenStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// timePrefix, statusPrefix, nodePrefix and metaPrefix return the prefixes
// of the indexes: every key of an index is its prefix and a position.
func timePrefix() []byte            { return []byte{prefixByTime} }
func statusPrefix(s Status) []byte  { return []byte{prefixByStatus, byte(s)} }
func nodePrefix(node string) []byte { return appendLenStr([]byte{prefixByNode}, node) }
func metaPrefix(k, v string) []byte {
	return appendLenStr(appendLenStr([]byte{prefixByMeta}, k), v)
}

// indexed is what a workflow's index entries depend on besides its start
// time, ID and metadata (which never change): its list status and the
// nodes of the node index.
type indexed struct {
	status Status
	nodes  []string // sorted, distinct
}

// indexedOf is the index state of a record; a pure function of it, so
// that indexes maintained command by command equal indexes built from the
// records (Open on a keyspace without them).
func indexedOf(r *Record) indexed {
	return indexed{status: ListStatus(r), nodes: appendNodes(nil, r)}
}

// appendNodes appends the sorted, distinct nodes of r's node index
// entries to b.
func appendNodes(b []string, r *Record) []string {
	switch {
	case !r.Status.Terminal():
		for _, t := range r.Pending {
			b = append(b, t.Node)
		}
		for _, x := range r.Executing {
			b = append(b, x.Node)
		}
		slices.Sort(b)
		b = slices.Compact(b)
	case r.Status == StatusFailed && r.FailedNode != "":
		b = append(b, r.FailedNode)
	}
	return b
}

// nodeKeys returns the node index keys of nodes for the workflow at pos.
func nodeKeys(nodes []string, pos []byte) [][]byte {
	out := make([][]byte, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, append(nodePrefix(n), pos...))
	}
	return out
}

// indexer writes index changes through a Writer.
type indexer struct {
	w      writer
	counts *StatusCounts
	dirty  bool
	// scratch is a reusable buffer for the nodes of a record (Logic's),
	// so that a change that moves no index entry allocates nothing.
	scratch *[]string
}

// writer is the part of shards.Writer the indexer uses.
type writer interface {
	Set(key, value []byte) error
	Delete(key []byte) error
}

// add writes every index entry of a new record.
func (x *indexer) add(r *Record) (indexed, error) {
	pos := appendPos(nil, r.CreatedAt, r.ID)
	ix := indexedOf(r)
	keys := [][]byte{append(timePrefix(), pos...), append(statusPrefix(ix.status), pos...)}
	for k, v := range r.Metadata {
		keys = append(keys, append(metaPrefix(k, v), pos...))
	}
	keys = append(keys, nodeKeys(ix.nodes, pos)...)
	for _, k := range keys {
		if err := x.w.Set(k, nil); err != nil {
			return ix, err
		}
	}
	x.counts[ix.status]++
	x.dirty = true
	return ix, nil
}

// update moves a record's entries from its old index state to its
// current one and returns the latter.
func (x *indexer) update(r *Record, old indexed) (indexed, error) {
	var nodes []string
	if x.scratch != nil {
		*x.scratch = appendNodes((*x.scratch)[:0], r)
		nodes = *x.scratch
	} else {
		nodes = appendNodes(nil, r)
	}
	status := ListStatus(r)
	if status == old.status && slices.Equal(nodes, old.nodes) {
		return old, nil
	}
	ix := indexed{status: status, nodes: slices.Clone(nodes)}
	pos := appendPos(nil, r.CreatedAt, r.ID)
	if ix.status != old.status {
		if err := x.w.Delete(append(statusPrefix(old.status), pos...)); err != nil {
			return ix, err
		}
		if err := x.w.Set(append(statusPrefix(ix.status), pos...), nil); err != nil {
			return ix, err
		}
		x.counts[old.status]--
		x.counts[ix.status]++
		x.dirty = true
	}
	for _, n := range old.nodes {
		if _, keep := slices.BinarySearch(ix.nodes, n); !keep {
			if err := x.w.Delete(append(nodePrefix(n), pos...)); err != nil {
				return ix, err
			}
		}
	}
	for _, n := range ix.nodes {
		if _, had := slices.BinarySearch(old.nodes, n); !had {
			if err := x.w.Set(append(nodePrefix(n), pos...), nil); err != nil {
				return ix, err
			}
		}
	}
	return ix, nil
}

// remove deletes every index entry of a record (retention purge).
func (x *indexer) remove(r *Record) error {
	pos := appendPos(nil, r.CreatedAt, r.ID)
	ix := indexedOf(r)
	keys := [][]byte{append(timePrefix(), pos...), append(statusPrefix(ix.status), pos...)}
	for k, v := range r.Metadata {
		keys = append(keys, append(metaPrefix(k, v), pos...))
	}
	keys = append(keys, nodeKeys(ix.nodes, pos)...)
	for _, k := range keys {
		if err := x.w.Delete(k); err != nil {
			return err
		}
	}
	x.counts[ix.status]--
	x.dirty = true
	return nil
}

// flush writes the status counts if they changed.
func (x *indexer) flush() error {
	if !x.dirty {
		return nil
	}
	x.dirty = false
	b, _ := json.Marshal(x.counts)
	return x.w.Set([]byte(keyStatusCount), b)
}

// readStatusCounts reads the persisted status counts.
func readStatusCounts(r interface {
	Get([]byte) ([]byte, bool, error)
}) (StatusCounts, error) {
	var c StatusCounts
	raw, ok, err := r.Get([]byte(keyStatusCount))
	if err != nil || !ok {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("decoding status counts: %w", err)
	}
	return c, nil
}
