package graftui

import (
	"net/http"
	"net/url"
	"time"

	"github.com/eleven-am/graft"
)

// actions are the control actions, by form value, with what the page says
// once one was taken.
var actions = map[string]string{
	"pause":  "Paused: no new steps start; steps already running finish.",
	"resume": "Resumed.",
	"stop":   "Stopped: pending steps never run, running ones were cancelled.",
}

// timelineRow is one step run on a workflow's timeline: finished (in
// ExecutedNodes) or still executing.
type timelineRow struct {
	NodeName, ExecutionID, MemberID string
	Attempt                         int
	StartedAt                       time.Time
	// Offset is how long after the workflow's start the run started.
	Offset   time.Duration
	Duration time.Duration
	Error    string
	Next     []string
	Running  bool
	// X and W place the run's bar on a 0..1000 scale spanning the
	// workflow's life so far.
	X, W float64
}

// workflowData is a workflow page's data.
type workflowData struct {
	S         *graft.WorkflowStatus
	StateJSON string
	Timeline  []timelineRow
	// Span is the time the timeline covers.
	Span      time.Duration
	LastError string
	// Control is set when the buttons are shown; CanPause, CanResume and
	// CanStop say which.
	Control                      bool
	CanPause, CanResume, CanStop bool
	ActionURL                    string
	// Done is the message of the action just taken, if any.
	Done string
}

// workflow serves a workflow's page.
func (h *handler) workflow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, ok := h.workflowID(w, r, q)
	if !ok {
		return
	}
	done := q.Get("done")
	if _, known := actions[done]; done != "" && !known {
		h.badParam(w, r, "done", "%.20q is not pause, resume or stop", done)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	s, err := h.m.GetWorkflowStatusContext(ctx, id)
	if err != nil {
		h.failErr(w, r, "reading workflow", err)
		return
	}
	d := workflowData{S: s, StateJSON: indentJSON(s.CurrentStateJSON), LastError: s.LastErrorText(), Done: actions[done],
		ActionURL: h.workflowURL(id)}
	d.Timeline, d.Span = timeline(s, h.now())
	if h.opts.AllowControl && !s.Status.Terminal() {
		d.Control = true
		d.CanPause = s.Status != graft.WorkflowStatePaused
		d.CanResume = s.Status == graft.WorkflowStatePaused
		d.CanStop = true
	}
	h.render(w, r, http.StatusOK, "workflow", s.WorkflowID, "workflows", d)
}

// workflowID reads the id parameter, answering 400 when it is missing or
// repeated.
func (h *handler) workflowID(w http.ResponseWriter, r *http.Request, q url.Values) (string, bool) {
	switch ids := q["id"]; {
	case len(ids) == 0 || ids[0] == "":
		h.badParam(w, r, "id", "missing: which workflow?")
		return "", false
	case len(ids) > 1:
		h.badParam(w, r, "id", "given %d times, at most once", len(ids))
		return "", false
	default:
		return ids[0], true
	}
}

// control takes a pause, resume or stop action, then sends the browser
// back to the workflow's page.
func (h *handler) control(w http.ResponseWriter, r *http.Request) {
	if !h.opts.AllowControl {
		h.fail(w, r, http.StatusForbidden, "", "control is disabled: this page only reads (graftui.Options.AllowControl)")
		return
	}
	if err := h.cop.Check(r); err != nil {
		h.log.Warn("refused a cross-origin control request", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		h.fail(w, r, http.StatusForbidden, "", "refused: the request came from another origin than this page's")
		return
	}
	q := r.URL.Query()
	id, ok := h.workflowID(w, r, q)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "", "reading the form: "+err.Error())
		return
	}
	action := r.PostForm.Get("action")
	ctx, cancel := h.ctx(r)
	defer cancel()
	var err error
	switch action {
	case "pause":
		err = h.m.PauseWorkflow(ctx, id)
	case "resume":
		err = h.m.ResumeWorkflow(ctx, id)
	case "stop":
		err = h.m.StopWorkflow(ctx, id)
	default:
		h.badParam(w, r, "action", "%.20q is not pause, resume or stop", action)
		return
	}
	if err != nil {
		h.failErr(w, r, action+" workflow", err)
		return
	}
	h.log.Info("workflow control", "action", action, "graft.workflow.id", id, "remote", r.RemoteAddr)
	http.Redirect(w, r, h.url("/workflow", url.Values{"id": {id}, "done": {action}}), http.StatusSeeOther)
}

// timeline lists a workflow's finished step runs, then its executing ones,
// placed on a scale from its start to its end (now while it runs).
func timeline(s *graft.WorkflowStatus, now time.Time) ([]timelineRow, time.Duration) {
	start := s.StartedAt
	end := now
	if s.CompletedAt != nil {
		end = *s.CompletedAt
	}
	rows := make([]timelineRow, 0, len(s.ExecutedNodes)+len(s.ExecutingNodes))
	for _, e := range s.ExecutedNodes {
		rows = append(rows, timelineRow{NodeName: e.NodeName, ExecutionID: e.ExecutionID, MemberID: e.MemberID, Attempt: e.Attempt,
			StartedAt: e.StartedAt, Duration: e.Duration, Error: e.Error, Next: e.NextNodes})
		if t := e.StartedAt.Add(e.Duration); t.After(end) {
			end = t
		}
	}
	for _, e := range s.ExecutingNodes {
		d := max(now.Sub(e.StartedAt), 0)
		rows = append(rows, timelineRow{NodeName: e.NodeName, ExecutionID: e.ExecutionID, MemberID: e.MemberID, Attempt: e.Attempt,
			StartedAt: e.StartedAt, Duration: d, Running: true})
		if t := e.StartedAt.Add(d); t.After(end) {
			end = t
		}
	}
	span := end.Sub(start)
	for i := range rows {
		rows[i].Offset = rows[i].StartedAt.Sub(start)
		if span <= 0 {
			rows[i].W = 1000
			continue
		}
		rows[i].X = min(max(float64(rows[i].Offset)/float64(span)*1000, 0), 998)
		rows[i].W = min(max(float64(rows[i].Duration)/float64(span)*1000, 2), 1000-rows[i].X)
	}
	return rows, span
}
