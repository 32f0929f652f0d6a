package graftui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eleven-am/graft"
)

// statuses are the workflow statuses in the order the pages show them.
var statuses = []graft.WorkflowState{
	graft.WorkflowStateRunning, graft.WorkflowStateBlocked, graft.WorkflowStatePaused,
	graft.WorkflowStateCompleted, graft.WorkflowStateFailed, graft.WorkflowStateStopped,
}

// listForm is the workflows page's query as the user wrote it, to fill the
// filter form back in.
type listForm struct {
	Status, Node, Since, Before, Limit string
	Meta                               []string
}

// statusChip is one status with its count, linking to the list of it.
type statusChip struct {
	Status graft.WorkflowState
	Count  int
	URL    string
	On     bool
}

// listData is the workflows page's data.
type listData struct {
	Form      listForm
	Statuses  []statusChip
	AllURL    string
	AllOn     bool
	Total     int
	Complete  bool
	Workflows []graft.WorkflowSummary
	// NextURL is the next page's link ("" on the last page), FirstURL the
	// first page's (set on later pages).
	NextURL, FirstURL string
	Limit             int
	Filtered          bool
}

// paramError is a query parameter the handler cannot use.
type paramError struct {
	Param string
	Msg   string
}

func (e *paramError) Error() string { return fmt.Sprintf("bad parameter %q: %s", e.Param, e.Msg) }

func badParamf(param, format string, args ...any) error {
	return &paramError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// parseList reads the workflows page's query parameters into list
// options, checking each against the limits of graft.ListOptions so that
// an error names the parameter at fault.
func parseList(q url.Values, now time.Time, pageSize int) (graft.ListOptions, listForm, error) {
	var opts graft.ListOptions
	form := listForm{Status: q.Get("status"), Node: q.Get("node"), Since: q.Get("since"), Before: q.Get("before"), Limit: q.Get("limit")}
	for _, name := range []string{"status", "node", "since", "before", "limit", "page"} {
		if len(q[name]) > 1 {
			return opts, form, badParamf(name, "given %d times, at most once", len(q[name]))
		}
	}
	if s := q.Get("status"); s != "" {
		st := graft.WorkflowState(s)
		if stateClass(st) == "st-unknown" {
			return opts, form, badParamf("status", "unknown status %q (want running, blocked, paused, completed, failed or stopped)", s)
		}
		opts.Status = st
	}
	for _, kv := range q["meta"] {
		if kv == "" {
			continue
		}
		form.Meta = append(form.Meta, kv)
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return opts, form, badParamf("meta", "%.60q is not key=value", kv)
		case len(k) > graft.MaxListFilterLen || len(v) > graft.MaxListFilterLen:
			return opts, form, badParamf("meta", "%.60q: key or value over %d bytes", kv, graft.MaxListFilterLen)
		case !utf8.ValidString(kv):
			return opts, form, badParamf("meta", "%.60q is not valid UTF-8", kv)
		}
		if opts.Metadata == nil {
			opts.Metadata = map[string]string{}
		}
		if old, dup := opts.Metadata[k]; dup && old != v {
			return opts, form, badParamf("meta", "key %.60q given twice with different values", k)
		}
		opts.Metadata[k] = v
	}
	if len(opts.Metadata) > graft.MaxListMetadataPairs {
		return opts, form, badParamf("meta", "%d pairs, at most %d", len(opts.Metadata), graft.MaxListMetadataPairs)
	}
	if n := q.Get("node"); n != "" {
		if len(n) > graft.MaxListFilterLen || !utf8.ValidString(n) {
			return opts, form, badParamf("node", "not valid UTF-8 of at most %d bytes", graft.MaxListFilterLen)
		}
		opts.NodeName = n
	}
	var err error
	if opts.StartedAfter, err = parseInstant("since", q.Get("since"), now); err != nil {
		return opts, form, err
	}
	if opts.StartedBefore, err = parseInstant("before", q.Get("before"), now); err != nil {
		return opts, form, err
	}
	if !opts.StartedAfter.IsZero() && !opts.StartedBefore.IsZero() && !opts.StartedAfter.Before(opts.StartedBefore.Add(-1)) {
		return opts, form, badParamf("before", "%s is not after since (%s)", formatTime(opts.StartedBefore), formatTime(opts.StartedAfter))
	}
	opts.Limit = pageSize
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > graft.MaxListLimit {
			return opts, form, badParamf("limit", "%.20q is not a number from 1 to %d", l, graft.MaxListLimit)
		}
		opts.Limit = n
	}
	opts.PageToken = q.Get("page")
	return opts, form, nil
}

// instantLayouts are the absolute forms parseInstant accepts; those
// without a zone are UTC.
var instantLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseInstant reads a time parameter: an RFC 3339 time, a date or time
// without zone (UTC), or a duration meaning that long before now. ""
// gives the zero time.
func parseInstant(param, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range instantLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badParamf(param, "%.40q is not a time: want RFC 3339 (2026-12-07T10:00:00Z), a UTC date or time (2026-12-07, 2026-12-07T10:00) or a duration before now (90m)", s)
}

// workflows serves the list of workflows.
func (h *handler) workflows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts, form, err := parseList(q, h.now(), h.opts.PageSize)
	if err != nil {
		if pe := (*paramError)(nil); errors.As(err, &pe) {
			h.badParam(w, r, pe.Param, "%s", pe.Msg)
		} else {
			h.fail(w, r, http.StatusBadRequest, "", err.Error())
		}
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	counted := opts.Filter()
	counted.Status = ""
	counts, err := h.m.CountWorkflows(ctx, counted)
	if errors.Is(err, graft.ErrInvalidListOptions) {
		h.fail(w, r, http.StatusBadRequest, "", err.Error())
		return
	}
	if err != nil {
		h.failErr(w, r, "counting workflows", err)
		return
	}
	list, err := h.m.ListWorkflows(ctx, opts)
	if errors.Is(err, graft.ErrInvalidListOptions) && opts.PageToken != "" {
		h.badParam(w, r, "page", "%v", err)
		return
	}
	if err != nil {
		h.failErr(w, r, "listing workflows", err)
		return
	}
	// base is the query without status and page: the status chips add
	// their status, the next page its token.
	base := url.Values{}
	for _, k := range []string{"node", "since", "before", "limit"} {
		if v := q.Get(k); v != "" {
			base.Set(k, v)
		}
	}
	for _, kv := range form.Meta {
		base.Add("meta", kv)
	}
	d := listData{Form: form, Total: counts.Total, Complete: counts.Complete, Workflows: list.Workflows, Limit: opts.Limit,
		AllURL: h.url("/workflows", base), AllOn: opts.Status == "",
		Filtered: len(base) > 0 || opts.Status != ""}
	for _, s := range statuses {
		sq := cloneValues(base)
		sq.Set("status", string(s))
		d.Statuses = append(d.Statuses, statusChip{Status: s, Count: counts.ByStatus[s], URL: h.url("/workflows", sq), On: opts.Status == s})
	}
	cur := cloneValues(base)
	if opts.Status != "" {
		cur.Set("status", string(opts.Status))
	}
	if list.NextPageToken != "" {
		nq := cloneValues(cur)
		nq.Set("page", list.NextPageToken)
		d.NextURL = h.url("/workflows", nq)
	}
	if opts.PageToken != "" {
		d.FirstURL = h.url("/workflows", cur)
	}
	h.render(w, r, http.StatusOK, "workflows", "Workflows", "workflows", d)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
