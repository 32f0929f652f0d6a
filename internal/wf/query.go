package wf

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/eleven-am/graft/shards"
)

// Query kinds.
const (
	QueryStatus   = "status"   // one workflow with its state and history
	QueryActive   = "active"   // every active workflow with its state
	QueryCounters = "counters" // the shard's totals and gauges
)

// Query is a read-only request to a shard.
type Query struct {
	Op string `json:"o"`
	WF string `json:"w,omitempty"`
	// List is the selection of QueryList and QueryCount.
	List *ListQuery `json:"l,omitempty"`
}

// StatusAnswer answers QueryStatus.
type StatusAnswer struct {
	Found   bool           `json:"found"`
	View    View           `json:"view"`
	History []HistoryEntry `json:"history,omitempty"`
}

// CountersAnswer answers QueryCounters.
type CountersAnswer struct {
	Counters
	Active    int `json:"active"`
	Pending   int `json:"pending"`
	Executing int `json:"executing"`
	Paused    int `json:"paused"`
	Blocked   int `json:"blocked"`
}

// EncodeQuery serialises a query.
func EncodeQuery(q Query) []byte {
	b, _ := json.Marshal(q)
	return b
}

// Lookup answers a query against committed state.
func (l *Logic) Lookup(r shards.Reader, raw []byte) ([]byte, error) {
	var q Query
	if err := json.Unmarshal(raw, &q); err != nil {
		return nil, fmt.Errorf("decoding query: %w", err)
	}
	switch q.Op {
	case QueryStatus:
		a, err := l.status(r, q.WF)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	case QueryActive:
		return json.Marshal(l.Active())
	case QueryCounters:
		return json.Marshal(l.Counters())
	case QueryList, QueryCount:
		if q.List == nil {
			return nil, fmt.Errorf("%s query without a selection", q.Op)
		}
		if q.Op == QueryCount {
			a, err := count(r, q.List)
			if err != nil {
				return nil, err
			}
			return json.Marshal(a)
		}
		a, err := list(r, q.List)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	default:
		return nil, fmt.Errorf("unknown query %q", q.Op)
	}
}

// Active returns a view of every active workflow, sorted by ID.
func (l *Logic) Active() []View {
	l.mu.RLock()
	out := make([]View, 0, len(l.active))
	for _, e := range l.active {
		out = append(out, View{Record: e.rec.view().Record, State: e.state})
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Counters returns the shard's totals and current gauges.
func (l *Logic) Counters() CountersAnswer {
	l.mu.RLock()
	defer l.mu.RUnlock()
	a := CountersAnswer{Counters: l.counters, Active: len(l.active)}
	for _, e := range l.active {
		a.Pending += len(e.rec.Pending)
		a.Executing += len(e.rec.Executing)
		if e.rec.Status == StatusPaused {
			a.Paused++
		}
		if e.rec.BlockedSince != 0 {
			a.Blocked++
		}
	}
	return a
}

// status reads workflow id, its state and its history from r alone, never
// from the in-memory records: those run ahead of r while a batch is being
// applied (a record changes in memory at once, its history entry and the
// record itself reach storage when the batch commits), so mixing the two
// showed a record ahead of its history, and a workflow that ended in the
// batch as it was before (its record leaves memory before storage has the
// final one). r is one consistent view (shards reads from a snapshot).
func (l *Logic) status(r shards.Reader, id string) (StatusAnswer, error) {
	var a StatusAnswer
	raw, found, err := r.Get(recordKey(id))
	if err != nil {
		return a, fmt.Errorf("reading workflow %q: %w", id, err)
	}
	if !found {
		return a, nil
	}
	a.Found = true
	if err := a.View.Record.decode(raw); err != nil {
		return a, fmt.Errorf("decoding workflow %q: %w", id, err)
	}
	a.View.DoneKeys = nil
	st, _, err := r.Get(stateKey(id))
	if err != nil {
		return a, fmt.Errorf("reading state of workflow %q: %w", id, err)
	}
	a.View.State = st
	p := historyPrefix(id)
	var decodeErr error
	err = r.Scan(p, prefixEnd(p), func(_, v []byte) bool {
		var h HistoryEntry
		if err := h.decode(v); err != nil {
			decodeErr = err
			return false
		}
		a.History = append(a.History, h)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return a, fmt.Errorf("reading history of workflow %q: %w", id, err)
	}
	return a, nil
}
