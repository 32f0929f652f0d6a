package wf

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/eleven-am/graft/shards"
)

// Query kinds of the secondary indexes.
const (
	QueryList  = "list"  // one shard's part of a page of workflows (ListQuery, ListAnswer)
	QueryCount = "count" // one shard's workflows by status (ListQuery without paging, CountAnswer)
)

// Bounds of one shard's answer to a list or count query.
const (
	// MaxListLimit is the most workflows one list query returns.
	MaxListLimit = 1000
	// listExamineFactor × Limit (at least minListExamine) index entries
	// are examined at most per shard and page when filters are combined;
	// the answer then stops early with More set.
	listExamineFactor = 20
	minListExamine    = 1000
	// maxListAnswerBytes bounds the summaries of one shard's answer (an
	// RPC message is at most 4 MiB by default).
	maxListAnswerBytes = 1 << 20
	// MaxCountExamine is the most index entries a filtered count examines
	// per shard; past it the count is incomplete.
	MaxCountExamine = 100_000
	// maxSummaryError bounds the error text of a summary, in bytes.
	maxSummaryError = 512
	// maxListMeta bounds the metadata pairs of a query (the public API
	// allows fewer).
	maxListMeta = 64
)

// ListQuery selects workflows of one shard. A zero field does not filter.
// Bounds are exclusive: After < CreatedAt < Before.
type ListQuery struct {
	Status Status            `json:"s,omitempty"` // a list status (ListStatus)
	Meta   map[string]string `json:"m,omitempty"` // every pair must match
	Node   string            `json:"n,omitempty"` // see the node index
	After  int64             `json:"a,omitempty"`
	Before int64             `json:"b,omitempty"`
	// From, if set, resumes strictly after this position (newest first).
	From  *Position `json:"f,omitempty"`
	Limit int       `json:"l,omitempty"`
}

// Position is a workflow's place in list order: newest first, ties by
// ascending ID.
type Position struct {
	Created int64  `json:"c"`
	ID      string `json:"i"`
}

// Before reports whether p comes before q in list order.
func (p Position) Before(q Position) bool {
	if p.Created != q.Created {
		return p.Created > q.Created
	}
	return p.ID < q.ID
}

// Summary is one workflow in a list.
type Summary struct {
	ID         string            `json:"id"`
	Status     Status            `json:"s"` // list status
	Metadata   map[string]string `json:"md,omitempty"`
	Created    int64             `json:"c"`
	Updated    int64             `json:"u"`
	Ended      int64             `json:"e,omitempty"`
	Pending    []string          `json:"p,omitempty"` // node names of pending steps
	Executing  []string          `json:"x,omitempty"` // node names of executing steps
	FailedNode string            `json:"fn,omitempty"`
	LastError  string            `json:"le,omitempty"` // at most 512 bytes
	Steps      uint64            `json:"n,omitempty"`
	Starter    string            `json:"st,omitempty"`
}

// Position returns the summary's place in list order.
func (s *Summary) Position() Position { return Position{Created: s.Created, ID: s.ID} }

// ListAnswer answers QueryList: the matching workflows in list order. When
// More is set the shard stopped before the end of its range and has looked
// at everything up to and including Last; otherwise it looked at all of it.
type ListAnswer struct {
	Items []Summary `json:"items,omitempty"`
	More  bool      `json:"more,omitempty"`
	Last  Position  `json:"last"`
}

// CountAnswer answers QueryCount: workflows by list status (indexed by
// Status). Complete is false when a filtered count stopped after
// MaxCountExamine index entries.
type CountAnswer struct {
	Counts   StatusCounts `json:"c"`
	Complete bool         `json:"ok"`
}

// filtered reports whether q filters by anything but status and time.
func (q *ListQuery) filtered() bool { return len(q.Meta) > 0 || q.Node != "" }

// drive returns the prefix of the index a query scans: the node index if
// it filters by node (it holds only workflows waiting on or failed in a
// node), else the status index if it filters by status and that status
// has at most budget workflows in the shard (statuses, when known) or no
// metadata filter, else the index of the metadata pair with the smallest
// key, else the start-time index.
func (q *ListQuery) drive(statuses *StatusCounts, budget int) []byte {
	switch {
	case q.Node != "":
		return nodePrefix(q.Node)
	case q.Status != 0 && (len(q.Meta) == 0 || (statuses != nil && statuses[q.Status] <= int64(budget))):
		return statusPrefix(q.Status)
	case len(q.Meta) > 0:
		keys := make([]string, 0, len(q.Meta))
		for k := range q.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return metaPrefix(keys[0], q.Meta[keys[0]])
	default:
		return timePrefix()
	}
}

// bounds returns the key range of prefix p the query covers.
func (q *ListQuery) bounds(p []byte) (start, end []byte) {
	start = p
	if q.Before != 0 {
		start = appendPos(bytes.Clone(p), q.Before-1, "")
	}
	if q.From != nil {
		from := append(appendPos(bytes.Clone(p), q.From.Created, q.From.ID), 0)
		if bytes.Compare(from, start) > 0 {
			start = from
		}
	}
	end = prefixEnd(p)
	if q.After != 0 {
		end = appendPos(bytes.Clone(p), q.After, "")
	}
	return start, end
}

// matches reports whether rec passes every filter of q.
func (q *ListQuery) matches(rec *Record) bool {
	if q.Status != 0 && ListStatus(rec) != q.Status {
		return false
	}
	for k, v := range q.Meta {
		if got, ok := rec.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return q.Node == "" || contains(indexedOf(rec).nodes, q.Node)
}

// contains reports whether sorted s holds v.
func contains(s []string, v string) bool {
	i := sort.SearchStrings(s, v)
	return i < len(s) && s[i] == v
}

// list answers QueryList from r: one scan of the driving index from the
// query's position, reading the record of each entry, bounded by the
// limit, the examine budget and the answer's size.
func list(r shards.Reader, q *ListQuery) (ListAnswer, error) {
	var a ListAnswer
	if q.Limit <= 0 || q.Limit > MaxListLimit {
		return a, fmt.Errorf("list limit %d is outside 1..%d", q.Limit, MaxListLimit)
	}
	if len(q.Meta) > maxListMeta {
		return a, fmt.Errorf("list query with %d metadata pairs, over the limit of %d", len(q.Meta), maxListMeta)
	}
	budget := max(listExamineFactor*q.Limit, minListExamine)
	var statuses *StatusCounts
	if q.Status != 0 && len(q.Meta) > 0 {
		c, err := readStatusCounts(r)
		if err != nil {
			return a, err
		}
		statuses = &c
	}
	p := q.drive(statuses, budget)
	start, end := q.bounds(p)
	if bytes.Compare(start, end) >= 0 {
		return a, nil
	}
	examined, size := 0, 0
	var scanErr error
	err := r.Scan(start, end, func(k, _ []byte) bool {
		created, id, err := decodePos(k[len(p):])
		if err != nil {
			scanErr = err
			return false
		}
		examined++
		raw, ok, err := r.Get(recordKey(id))
		if err != nil {
			scanErr = err
			return false
		}
		if !ok {
			scanErr = fmt.Errorf("index entry %q names workflow %q, which has no record", k, id)
			return false
		}
		var rec Record
		if err := rec.decode(raw); err != nil {
			scanErr = fmt.Errorf("decoding workflow %q: %w", id, err)
			return false
		}
		if q.matches(&rec) {
			s := summaryOf(&rec)
			a.Items = append(a.Items, s)
			size += summarySize(&s)
		}
		if len(a.Items) == q.Limit || examined >= budget || size >= maxListAnswerBytes {
			a.More, a.Last = true, Position{Created: created, ID: id}
			return false
		}
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return ListAnswer{}, fmt.Errorf("listing workflows: %w", err)
	}
	return a, nil
}

func summaryOf(r *Record) Summary {
	s := Summary{ID: r.ID, Status: ListStatus(r), Metadata: r.Metadata, Created: r.CreatedAt, Updated: r.UpdatedAt,
		Ended: r.EndedAt, FailedNode: r.FailedNode, LastError: r.LastError, Steps: r.Steps, Starter: r.Starter}
	if len(s.LastError) > maxSummaryError {
		s.LastError = s.LastError[:maxSummaryError]
	}
	for _, t := range r.Pending {
		s.Pending = append(s.Pending, t.Node)
	}
	for _, x := range r.Executing {
		s.Executing = append(s.Executing, x.Node)
	}
	return s
}

// summarySize estimates the encoded size of s.
func summarySize(s *Summary) int {
	n := 128 + len(s.ID) + len(s.FailedNode) + len(s.LastError) + len(s.Starter)
	for k, v := range s.Metadata {
		n += len(k) + len(v) + 8
	}
	for _, p := range s.Pending {
		n += len(p) + 3
	}
	for _, x := range s.Executing {
		n += len(x) + 3
	}
	return n
}

// count answers QueryCount from r. Without filters it reads the persisted
// status counts; filtered by status and start time only, it counts the
// keys of the status indexes in range; otherwise it scans the driving
// index and reads each entry's record. Either scan stops after
// MaxCountExamine entries, leaving the answer incomplete.
func count(r shards.Reader, q *ListQuery) (CountAnswer, error) {
	if len(q.Meta) > maxListMeta {
		return CountAnswer{}, fmt.Errorf("count query with %d metadata pairs, over the limit of %d", len(q.Meta), maxListMeta)
	}
	if !q.filtered() && q.After == 0 && q.Before == 0 {
		c, err := readStatusCounts(r)
		if err != nil {
			return CountAnswer{}, err
		}
		if q.Status != 0 {
			only := c[q.Status]
			c = StatusCounts{}
			c[q.Status] = only
		}
		return CountAnswer{Counts: c, Complete: true}, nil
	}
	a := CountAnswer{Complete: true}
	examined := 0
	var scanErr error
	scan := func(p []byte, each func(id string) bool) error {
		start, end := q.bounds(p)
		if bytes.Compare(start, end) >= 0 {
			return nil
		}
		return r.Scan(start, end, func(k, _ []byte) bool {
			if examined == MaxCountExamine {
				a.Complete = false
				return false
			}
			examined++
			_, id, err := decodePos(k[len(p):])
			if err != nil {
				scanErr = err
				return false
			}
			return each(id)
		})
	}
	if !q.filtered() {
		for s := StatusRunning; s <= ListBlocked; s++ {
			if q.Status != 0 && s != q.Status {
				continue
			}
			if err := scan(statusPrefix(s), func(string) bool { a.Counts[s]++; return true }); err != nil || scanErr != nil {
				return CountAnswer{}, fmt.Errorf("counting workflows: %w", errors.Join(err, scanErr))
			}
		}
		return a, nil
	}
	p := q.drive(nil, 0)
	err := scan(p, func(id string) bool {
		raw, ok, err := r.Get(recordKey(id))
		if err != nil || !ok {
			scanErr = fmt.Errorf("reading workflow %q of an index entry (found %t): %v", id, ok, err)
			return false
		}
		var rec Record
		if err := rec.decode(raw); err != nil {
			scanErr = fmt.Errorf("decoding workflow %q: %w", id, err)
			return false
		}
		if q.matches(&rec) {
			a.Counts[ListStatus(&rec)]++
		}
		return true
	})
	if err != nil || scanErr != nil {
		return CountAnswer{}, fmt.Errorf("counting workflows: %w", errors.Join(err, scanErr))
	}
	return a, nil
}

// Upgrade builds the secondary indexes and status counts of a keyspace
// written before they existed (no index layout key), from its records, in
// w; on a keyspace that has them it writes nothing. The indexes built are
// those command-by-command maintenance writes (indexedOf), so a replica
// upgraded at one index and one that applied the same commands after its
// upgrade hold identical keys. It implements shards.Upgrader.
func (l *Logic) Upgrade(w shards.Writer) error {
	_, ok, err := w.Get([]byte(keyIndexLayout))
	if err != nil || ok {
		return err
	}
	var counts StatusCounts
	x := indexer{w: w, counts: &counts}
	var recs [][]byte
	if err := w.Scan([]byte{prefixRecord}, []byte{prefixRecord + 1}, func(_, v []byte) bool {
		recs = append(recs, bytes.Clone(v))
		return true
	}); err != nil {
		return fmt.Errorf("scanning workflows: %w", err)
	}
	for _, raw := range recs {
		var rec Record
		if err := rec.decode(raw); err != nil {
			return fmt.Errorf("decoding a workflow record: %w", err)
		}
		if _, err := x.add(&rec); err != nil {
			return err
		}
	}
	if err := x.flush(); err != nil {
		return err
	}
	return w.Set([]byte(keyIndexLayout), []byte(indexLayout))
}
