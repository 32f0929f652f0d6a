package graft

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/eleven-am/graft/internal/wf"
)

// Bounds of ListWorkflows and CountWorkflows.
const (
	// DefaultListLimit is the page size of a ListOptions with Limit 0.
	DefaultListLimit = 100
	// MaxListLimit is the largest ListOptions.Limit.
	MaxListLimit = wf.MaxListLimit
	// MaxListMetadataPairs is the most pairs a metadata filter may hold.
	MaxListMetadataPairs = 8
	// MaxListFilterLen bounds each metadata key and value and the node
	// name of a filter, in bytes.
	MaxListFilterLen = 1024
)

// ListFilter selects workflows for ListWorkflows and CountWorkflows. A
// zero field does not filter; the fields that are set must all match.
type ListFilter struct {
	// Status is the workflow's status as GetWorkflowStatus reports it:
	// running, paused, blocked (running, but every pending node refused by
	// CanStart; not counted as running), completed, failed or stopped.
	Status WorkflowState
	// Metadata pairs must all be in the workflow's metadata (at most
	// MaxListMetadataPairs pairs, keys and values of at most
	// MaxListFilterLen bytes, keys not empty).
	Metadata map[string]string
	// NodeName selects the workflows waiting on a node and those that
	// failed in it: a running, paused or blocked workflow with a pending
	// or executing step of that node ("what is stuck on node X"), or a
	// failed workflow whose failed node it is ("what failed in node X").
	// Completed and stopped workflows never match.
	NodeName string
	// StartedAfter and StartedBefore bound the workflow's start time,
	// both exclusive; zero means unbounded.
	StartedAfter, StartedBefore time.Time
}

// ListOptions are a ListFilter with paging.
type ListOptions struct {
	// Status, Metadata, NodeName, StartedAfter and StartedBefore are the
	// ListFilter's.
	Status                      WorkflowState
	Metadata                    map[string]string
	NodeName                    string
	StartedAfter, StartedBefore time.Time
	// Limit is the most workflows in the page: 0 means DefaultListLimit
	// (100), at most MaxListLimit (1000).
	Limit int
	// PageToken continues a listing: the NextPageToken of the previous
	// page, listed with the same filters (a token is refused with other
	// filters); empty for the first page.
	PageToken string
}

// Filter returns the options' filter.
func (o ListOptions) Filter() ListFilter {
	return ListFilter{Status: o.Status, Metadata: o.Metadata, NodeName: o.NodeName,
		StartedAfter: o.StartedAfter, StartedBefore: o.StartedBefore}
}

// WorkflowSummary is one workflow in a list: its record without state or
// history (GetWorkflowStatus has those).
type WorkflowSummary struct {
	WorkflowID string
	Status     WorkflowState
	Metadata   map[string]string
	StartedAt  time.Time
	// UpdatedAt is when its record last changed.
	UpdatedAt time.Time
	// CompletedAt is when it reached a terminal status; nil before.
	CompletedAt *time.Time
	// PendingNodes and ExecutingNodes are the node names of its pending
	// and executing steps.
	PendingNodes, ExecutingNodes []string
	// FailedNode is the node whose error failed it, if any; LastError the
	// error that failed it (at most 512 bytes).
	FailedNode, LastError string
	// Steps counts its finished step runs.
	Steps int
	// StartedBy is the member that started it.
	StartedBy string
}

// WorkflowPage is one page of ListWorkflows.
type WorkflowPage struct {
	// Workflows are newest first (by start time), ties by ascending
	// workflow ID.
	Workflows []WorkflowSummary
	// NextPageToken continues the listing (ListOptions.PageToken); empty
	// on the last page. A page may hold fewer than Limit workflows, even
	// none, while NextPageToken is set: keep paging until it is empty.
	NextPageToken string
}

// WorkflowCounts are the counts of CountWorkflows.
type WorkflowCounts struct {
	// ByStatus counts the retained workflows by status; statuses with
	// none are left out.
	ByStatus map[WorkflowState]int
	// Total is the sum of ByStatus.
	Total int
	// Complete is false when a filtered count stopped early (after
	// 100,000 index entries of a shard): the counts are then lower bounds.
	Complete bool
}

// ListWorkflows returns a page of the workflows retained in the cluster
// that match opts, from any member. Every shard answers from the secondary
// indexes its state machine keeps (through its leader, like
// GetWorkflowStatus, so a page is linearizable per shard), in parallel;
// the answers are merged newest first. A page costs O(Limit × shards)
// index and record reads: the shards scan the index of one filter (node;
// else status, when there is no metadata filter or the status is rare
// enough to examine whole; else a metadata pair; else start time) and
// check the others on each record, examining at most 20 × Limit (at least
// 1,000) entries per shard; a sparse combination of filters can therefore
// return short or empty pages with a NextPageToken. The token encodes the
// position of the last workflow covered, so pages neither repeat nor skip
// a workflow whose start time and filters did not change between them;
// workflows started after the first page (newer) are not in later pages,
// and one whose status changed between pages shows where its new status
// puts it. Errors: ErrInvalidListOptions for refused options, or the
// error of a shard that could not be read.
func (m *Manager) ListWorkflows(ctx context.Context, opts ListOptions) (WorkflowPage, error) {
	if err := m.member.Running(); err != nil {
		return WorkflowPage{}, err
	}
	q, err := listQuery(opts.Filter())
	if err != nil {
		return WorkflowPage{}, err
	}
	switch {
	case opts.Limit < 0 || opts.Limit > MaxListLimit:
		return WorkflowPage{}, fmt.Errorf("%w: Limit %d is outside 0..%d", ErrInvalidListOptions, opts.Limit, MaxListLimit)
	case opts.Limit == 0:
		q.Limit = DefaultListLimit
	default:
		q.Limit = opts.Limit
	}
	fp := filterFingerprint(&q)
	if opts.PageToken != "" {
		from, err := decodePageToken(opts.PageToken, fp)
		if err != nil {
			return WorkflowPage{}, err
		}
		q.From = &from
	}
	items, next, err := m.member.List(ctx, q)
	if err != nil {
		return WorkflowPage{}, fmt.Errorf("listing workflows: %w", err)
	}
	page := WorkflowPage{Workflows: make([]WorkflowSummary, 0, len(items))}
	for i := range items {
		page.Workflows = append(page.Workflows, summaryOf(&items[i]))
	}
	if next != nil {
		page.NextPageToken = encodePageToken(*next, fp)
	}
	return page, nil
}

// CountWorkflows counts the retained workflows that match f, by status,
// across every shard. Without filters, or with Status alone, it reads
// counters each shard's state machine keeps: O(shards). With StartedAfter
// or StartedBefore (and at most Status) it counts status index entries in
// the range; with Metadata or NodeName it scans the index of the most
// selective filter and reads each workflow's record. Those scans stop
// after 100,000 entries per shard (Complete is then false).
func (m *Manager) CountWorkflows(ctx context.Context, f ListFilter) (WorkflowCounts, error) {
	if err := m.member.Running(); err != nil {
		return WorkflowCounts{}, err
	}
	q, err := listQuery(f)
	if err != nil {
		return WorkflowCounts{}, err
	}
	counts, complete, err := m.member.Count(ctx, q)
	if err != nil {
		return WorkflowCounts{}, fmt.Errorf("counting workflows: %w", err)
	}
	out := WorkflowCounts{ByStatus: map[WorkflowState]int{}, Complete: complete}
	for s, n := range counts {
		if n > 0 {
			out.ByStatus[listState(wf.Status(s))] = int(n)
			out.Total += int(n)
		}
	}
	return out, nil
}

// listStatuses maps the public statuses to list statuses.
var listStatuses = map[WorkflowState]wf.Status{
	WorkflowStateRunning: wf.StatusRunning, WorkflowStatePaused: wf.StatusPaused, WorkflowStateBlocked: wf.ListBlocked,
	WorkflowStateCompleted: wf.StatusCompleted, WorkflowStateFailed: wf.StatusFailed, WorkflowStateStopped: wf.StatusStopped,
}

// listState is the public status of a list status.
func listState(s wf.Status) WorkflowState { return WorkflowState(s.String()) }

// listQuery validates a filter and returns its query (without paging).
func listQuery(f ListFilter) (wf.ListQuery, error) {
	invalid := func(format string, args ...any) (wf.ListQuery, error) {
		return wf.ListQuery{}, fmt.Errorf("%w: %s", ErrInvalidListOptions, fmt.Sprintf(format, args...))
	}
	var q wf.ListQuery
	if f.Status != "" {
		s, ok := listStatuses[f.Status]
		if !ok {
			return invalid("unknown Status %q (want running, paused, blocked, completed, failed or stopped)", f.Status)
		}
		q.Status = s
	}
	if len(f.Metadata) > MaxListMetadataPairs {
		return invalid("Metadata filter has %d pairs, over the limit of %d", len(f.Metadata), MaxListMetadataPairs)
	}
	for k, v := range f.Metadata {
		switch {
		case k == "":
			return invalid("Metadata filter has an empty key")
		case len(k) > MaxListFilterLen || len(v) > MaxListFilterLen:
			return invalid("Metadata filter %.40q: key or value over %d bytes", k, MaxListFilterLen)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return invalid("Metadata filter %.40q: key or value is not valid UTF-8", k)
		}
	}
	if len(f.Metadata) > 0 {
		q.Meta = f.Metadata
	}
	if len(f.NodeName) > MaxListFilterLen {
		return invalid("NodeName is %d bytes, over the limit of %d", len(f.NodeName), MaxListFilterLen)
	}
	q.Node = f.NodeName
	if !f.StartedAfter.IsZero() {
		q.After = f.StartedAfter.UnixNano()
	}
	if !f.StartedBefore.IsZero() {
		q.Before = f.StartedBefore.UnixNano()
	}
	if q.After != 0 && q.Before != 0 && q.Before-q.After < 2 {
		return invalid("StartedAfter (%s) must be before StartedBefore (%s), and both are exclusive",
			f.StartedAfter.Format(time.RFC3339Nano), f.StartedBefore.Format(time.RFC3339Nano))
	}
	return q, nil
}

// Page tokens: base64url (no padding) of
//
//	version (1) | filter fingerprint (8, BE) | start time (8, BE, unix nanos) | workflow ID
//
// The position is the last workflow (or index entry) the previous page
// covered; the next page starts strictly after it. The fingerprint hashes
// the filters, so a token used with other filters is refused rather than
// silently skipping workflows.
const pageTokenVersion = 1

// filterFingerprint hashes a query's filters (not its limit or position).
func filterFingerprint(q *wf.ListQuery) uint64 {
	h := fnv.New64a()
	var b []byte
	b = append(b, byte(q.Status))
	b = binary.BigEndian.AppendUint64(b, uint64(q.After))
	b = binary.BigEndian.AppendUint64(b, uint64(q.Before))
	b = binary.AppendUvarint(b, uint64(len(q.Node)))
	b = append(b, q.Node...)
	keys := make([]string, 0, len(q.Meta))
	for k := range q.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(q.Meta[k])))
		b = append(b, q.Meta[k]...)
	}
	_, _ = h.Write(b)
	return h.Sum64()
}

func encodePageToken(p wf.Position, fp uint64) string {
	b := []byte{pageTokenVersion}
	b = binary.BigEndian.AppendUint64(b, fp)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Created))
	b = append(b, p.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(tok string, fp uint64) (wf.Position, error) {
	bad := func(why string) (wf.Position, error) {
		return wf.Position{}, fmt.Errorf("%w: PageToken %.40q %s", ErrInvalidListOptions, tok, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	switch {
	case err != nil:
		return bad("is not a page token (not base64url)")
	case len(b) < 17 || b[0] != pageTokenVersion:
		return bad("is not a page token (wrong length or version)")
	case binary.BigEndian.Uint64(b[1:]) != fp:
		return bad("was made for other filters (Status, Metadata, NodeName, StartedAfter, StartedBefore)")
	case len(b)-17 > MaxWorkflowIDLength || !utf8.Valid(b[17:]):
		return bad("names an invalid workflow ID")
	}
	return wf.Position{Created: int64(binary.BigEndian.Uint64(b[9:])), ID: string(b[17:])}, nil
}

func summaryOf(s *wf.Summary) WorkflowSummary {
	out := WorkflowSummary{
		WorkflowID: s.ID, Status: listState(s.Status), Metadata: s.Metadata,
		StartedAt: unixTime(s.Created), UpdatedAt: unixTime(s.Updated),
		PendingNodes: s.Pending, ExecutingNodes: s.Executing, FailedNode: s.FailedNode, LastError: s.LastError,
		Steps: int(s.Steps), StartedBy: s.Starter,
	}
	if s.Ended != 0 {
		t := unixTime(s.Ended)
		out.CompletedAt = &t
	}
	return out
}
