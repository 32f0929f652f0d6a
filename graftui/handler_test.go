package graftui_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/graftui"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// get fetches path from h and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// post sends a control form to h with the given extra headers.
func post(t *testing.T, h http.Handler, path string, form url.Values, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wfPath(id string) string { return "/workflow?" + url.Values{"id": {id}}.Encode() }

// listed returns the status of each workflow row of a list page, by ID.
func listed(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, part := range strings.Split(body, `<tr data-id="`)[1:] {
		id, rest, ok := strings.Cut(part, `" data-status="`)
		require.True(t, ok, "a row without status: %.80s", part)
		status, _, _ := strings.Cut(rest, `"`)
		require.NotContains(t, out, id, "workflow %s listed twice", id)
		out[id] = status
	}
	return out
}

// nextPage returns the list page's next-page link, or "".
func nextPage(body string) string {
	end := strings.Index(body, `" id="next-page"`)
	if end < 0 {
		return ""
	}
	start := strings.LastIndex(body[:end], `href="`) + len(`href="`)
	return strings.ReplaceAll(body[start:end], "&amp;", "&")
}

func TestHandler(t *testing.T) {
	f := newFixture(t)
	logger := testlog.Logger(t, "graftui: ", slog.LevelInfo)
	ro := graftui.Handler(f.m, graftui.Options{Logger: logger})
	rw := graftui.Handler(f.m, graftui.Options{Logger: logger, AllowControl: true})

	t.Run("pages", func(t *testing.T) {
		code, body := get(t, ro, "/")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `id="members"`)
		require.Contains(t, body, "<b>n1</b>")
		require.Contains(t, body, `id="shards"`)
		require.Contains(t, body, `id="health-checks"`)
		require.NotContains(t, body, `id="replicas"`, "replica details are opt-in")

		code, body = get(t, ro, "/?replicas=1")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `id="replicas"`)

		code, body = get(t, ro, "/workflows")
		require.Equal(t, http.StatusOK, code, body)
		for _, id := range append(append(append(f.completed, f.failed...), f.held...), f.blocked...) {
			require.Contains(t, body, `data-id="`+id+`"`)
		}
		require.Contains(t, body, `failed <b>2</b>`)
		require.Contains(t, body, `completed <b>3</b>`)
		require.Contains(t, body, `blocked <b>1</b>`)

		code, body = get(t, ro, wfPath(f.completed[0]))
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `id="timeline"`)
		require.Contains(t, body, "<b>Quick</b>")
		require.Contains(t, body, "<b>Finish</b>")
		require.NotContains(t, body, `id="controls"`, "no buttons unless control is allowed")
	})

	t.Run("filters", func(t *testing.T) {
		code, body := get(t, ro, "/workflows?status=failed")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, map[string]string{f.failed[0]: "failed", f.failed[1]: "failed"}, listed(t, body))

		code, body = get(t, ro, "/workflows?meta=team%3Dred")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `data-id="fail-0"`)
		require.NotContains(t, body, `data-id="held-0"`)

		code, body = get(t, ro, "/workflows?node=Hold")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `data-id="held-0"`)
		require.NotContains(t, body, `data-id="done-0"`)

		code, body = get(t, ro, "/workflows?before=1h")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "No workflows on this page.")

		code, body = get(t, ro, "/workflows?since=1h")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `data-id="done-0"`)
	})

	t.Run("paging", func(t *testing.T) {
		seen := map[string]bool{}
		path := "/workflows?limit=3"
		for pages := 0; path != ""; pages++ {
			require.Less(t, pages, 20, "paging never ended")
			code, body := get(t, ro, path)
			require.Equal(t, http.StatusOK, code, body)
			rows := listed(t, body)
			require.LessOrEqual(t, len(rows), 3)
			for id := range rows {
				require.False(t, seen[id], "workflow %s on two pages", id)
				seen[id] = true
			}
			path = nextPage(body)
		}
		require.Len(t, seen, 8)
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, tc := range []struct{ path, param string }{
			{"/workflows?status=bogus", "status"},
			{"/workflows?status=failed&status=running", "status"},
			{"/workflows?limit=0", "limit"},
			{"/workflows?limit=100000", "limit"},
			{"/workflows?limit=ten", "limit"},
			{"/workflows?since=yesterday", "since"},
			{"/workflows?before=-5m", "before"},
			{"/workflows?since=2026-12-07T10:00:00Z&before=2026-12-07T09:00:00Z", "before"},
			{"/workflows?meta=novalue", "meta"},
			{"/workflows?meta=%3Dv", "meta"},
			{"/workflows?node=" + strings.Repeat("x", graft.MaxListFilterLen+1), "node"},
			{"/workflows?page=not-a-token", "page"},
			{"/workflows?page=AQAAAAAAAAAAAAAAAAAAAAB4", "page"},
			{"/workflow", "id"},
			{"/workflow?id=a&id=b", "id"},
			{"/workflow?id=done-0&done=explode", "done"},
			{"/?replicas=maybe", "replicas"},
		} {
			t.Run(tc.path, func(t *testing.T) {
				code, body := get(t, ro, tc.path)
				require.Equal(t, http.StatusBadRequest, code, body)
				require.Contains(t, body, `<code id="error-param">`+tc.param+`</code>`)
				require.Contains(t, body, `bad parameter &#34;`+tc.param+`&#34;`)
			})
		}
	})

	t.Run("not found", func(t *testing.T) {
		code, body := get(t, ro, wfPath("no-such-workflow"))
		require.Equal(t, http.StatusNotFound, code, body)
		require.Contains(t, body, "no-such-workflow")
		code, _ = get(t, ro, "/nope")
		require.Equal(t, http.StatusNotFound, code)
		code, _ = get(t, ro, "/static/")
		require.Equal(t, http.StatusNotFound, code)
		rec := post(t, ro, "/workflows", nil, nil)
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	})

	t.Run("escaping", func(t *testing.T) {
		code, body := get(t, ro, wfPath(f.failed[0]))
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `id="last-error"`)
		require.Contains(t, body, "card declined: &lt;b&gt;insufficient funds&lt;/b&gt;")
		require.NotContains(t, body, "<b>insufficient funds</b>")
		require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "the state is shown as text")
		require.NotContains(t, body, "<script>alert")
		code, body = get(t, ro, wfPath("<img src=x onerror=alert(1)>"))
		require.Equal(t, http.StatusNotFound, code)
		require.NotContains(t, body, "<img src=x")
	})

	t.Run("headers and static files", func(t *testing.T) {
		rec := httptest.NewRecorder()
		ro.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/workflows", nil))
		require.Contains(t, rec.Header().Get("Content-Security-Policy"), "script-src 'self'")
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		for path, ctype := range map[string]string{"/static/style.css": "text/css", "/static/live.js": "javascript"} {
			rec := httptest.NewRecorder()
			ro.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, http.StatusOK, rec.Code, path)
			require.Contains(t, rec.Header().Get("Content-Type"), ctype, path)
			require.NotEmpty(t, rec.Body.String())
		}
	})

	t.Run("control off refuses POST", func(t *testing.T) {
		id := f.held[1]
		rec := post(t, ro, wfPath(id), url.Values{"action": {"pause"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
		require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), "control is disabled")
		s, err := f.m.GetWorkflowStatus(id)
		require.NoError(t, err)
		require.Equal(t, graft.WorkflowStateRunning, s.Status)
	})

	t.Run("cross-origin POST refused", func(t *testing.T) {
		id := f.held[1]
		for name, headers := range map[string]map[string]string{
			"sec-fetch-site": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			"origin only":    {"Origin": "https://evil.example"},
		} {
			rec := post(t, rw, wfPath(id), url.Values{"action": {"stop"}}, headers)
			require.Equal(t, http.StatusForbidden, rec.Code, "%s: %s", name, rec.Body.String())
			require.Contains(t, rec.Body.String(), "another origin")
		}
		s, err := f.m.GetWorkflowStatus(id)
		require.NoError(t, err)
		require.Equal(t, graft.WorkflowStateRunning, s.Status)
	})

	t.Run("control", func(t *testing.T) {
		id := f.held[1]
		same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}
		code, body := get(t, rw, wfPath(id))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `id="pause"`)
		require.Contains(t, body, `id="stop"`)
		require.NotContains(t, body, `id="resume"`)

		rec := post(t, rw, wfPath(id), url.Values{"action": {"explode"}}, same)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Contains(t, rec.Body.String(), `<code id="error-param">action</code>`)

		rec = post(t, rw, wfPath(id), url.Values{"action": {"pause"}}, same)
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Equal(t, "/workflow?done=pause&id="+id, rec.Header().Get("Location"))
		f.waitStatus(t, id, graft.WorkflowStatePaused)
		code, body = get(t, rw, rec.Header().Get("Location"))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `id="flash"`)
		require.Contains(t, body, `id="resume"`)
		require.NotContains(t, body, `id="pause"`)

		rec = post(t, rw, wfPath(id), url.Values{"action": {"resume"}}, nil) // no browser headers: not a CSRF
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		f.waitStatus(t, id, graft.WorkflowStateRunning)

		rec = post(t, rw, wfPath("no-such-workflow"), url.Values{"action": {"pause"}}, same)
		require.Equal(t, http.StatusNotFound, rec.Code)
		rec = post(t, rw, wfPath(f.completed[0]), url.Values{"action": {"stop"}}, same)
		require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())

		rec = post(t, rw, wfPath(id), url.Values{"action": {strings.Repeat("x", 10<<10)}}, same)
		require.Equal(t, http.StatusBadRequest, rec.Code, "an oversized form is refused")

		code, body = get(t, rw, wfPath(id))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<td><b>Hold</b></td><td>1</td><td>n1</td>`, "the executing step is listed")
		rec = post(t, rw, wfPath(id), url.Values{"action": {"stop"}}, same)
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		f.waitStatus(t, id, graft.WorkflowStateStopped)
		code, body = get(t, rw, wfPath(id))
		require.Equal(t, http.StatusOK, code)
		require.NotContains(t, body, `id="controls"`, "no buttons on an ended workflow")
	})

	t.Run("prefix", func(t *testing.T) {
		h := graftui.Handler(f.m, graftui.Options{Prefix: "/ops/", Logger: logger})
		mux := http.NewServeMux()
		mux.Handle("/ops/", http.StripPrefix("/ops", h))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL + "/ops/workflows?status=failed")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Contains(t, string(body), `href="/ops/workflow?id=fail-0"`)
		require.Contains(t, string(body), `href="/ops/static/style.css"`)
		resp, err = srv.Client().Get(srv.URL + "/ops/static/style.css")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts graftui.Options
		want string
	}{
		{"zero", graftui.Options{}, ""},
		{"prefix", graftui.Options{Prefix: "graft/"}, ""},
		{"bad prefix", graftui.Options{Prefix: "/a?b"}, "Prefix"},
		{"refresh too fast", graftui.Options{RefreshInterval: time.Millisecond}, "RefreshInterval"},
		{"refresh off", graftui.Options{RefreshInterval: -1}, ""},
		{"page size", graftui.Options{PageSize: graft.MaxListLimit + 1}, "PageSize"},
		{"timeout", graftui.Options{Timeout: -time.Second}, "Timeout"},
		{"origin", graftui.Options{TrustedOrigins: []string{"not an origin"}}, "TrustedOrigins"},
		{"good origin", graftui.Options{TrustedOrigins: []string{"https://ops.example.com"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestInvalidOptionsAnswer500: a handler built from invalid options says
// so on every request instead of serving a half-configured page.
func TestInvalidOptionsAnswer500(t *testing.T) {
	m := graft.New("n1", "127.0.0.1:0", t.TempDir(), slog.New(slog.DiscardHandler))
	h := graftui.Handler(m, graftui.Options{PageSize: -1, Logger: slog.New(slog.DiscardHandler)})
	code, body := get(t, h, "/")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, "PageSize")
}

// TestMemberNotRunning: before Start the pages say the member is not
// running (503) instead of failing or hanging.
func TestMemberNotRunning(t *testing.T) {
	m := graft.New("n1", "127.0.0.1:0", t.TempDir(), slog.New(slog.DiscardHandler))
	h := graftui.Handler(m, graftui.Options{Logger: slog.New(slog.DiscardHandler)})
	code, body := get(t, h, "/")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "<b>n1</b>")
	for _, path := range []string{"/workflows", wfPath("x")} {
		code, body = get(t, h, path)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s: %s", path, body)
	}
}
