package graftui_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/graftui"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

// chromium finds the browser: $GRAFT_CHROMIUM, else chromium,
// chromium-browser or google-chrome on the PATH. Without one the test is
// skipped, or fails when GRAFT_REQUIRE_BROWSER=1 (as CI sets it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GRAFT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium: install it (Debian: apt-get install chromium) or set GRAFT_CHROMIUM to its path"
	if os.Getenv("GRAFT_REQUIRE_BROWSER") == "1" {
		t.Fatal(why + " (GRAFT_REQUIRE_BROWSER=1)")
	}
	t.Skip(why + "; GRAFT_REQUIRE_BROWSER=1 turns this skip into a failure")
	return ""
}

// screenshotDir is where the browser test saves its screenshots:
// $GRAFT_UI_SCREENSHOTS, else a temporary directory of the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GRAFT_UI_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser starts a headless Chromium with a fresh profile and returns a
// context for one tab; the browser ends with the test.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "graftui-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Chromium's helper processes may still write in the profile for
		// a moment after the browser ended.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	_, err = chromedp.Run(ctx, chromedp.Evaluate[int]("1"))
	require.NoError(t, err, "starting Chromium at %s", path)
	return ctx
}

// TestBrowser drives the operations page in headless Chromium over a live
// member: every page loads, the status filter keeps only failed workflows,
// a failed workflow shows its error, the pause and resume buttons change a
// running workflow's status, and the live refresh shows a change made
// elsewhere without a reload. Screenshots go to screenshotDir.
//
// The pages refresh their live part every 300ms, which replaces the
// elements the test reads and clicks: it reads with one JavaScript
// evaluation at a time, waits by polling such reads (through navigations),
// and retries a click whose element was replaced under it.
func TestBrowser(t *testing.T) {
	path := chromium(t)
	f := newFixture(t)
	shots := screenshotDir(t)
	h := graftui.Handler(f.m, graftui.Options{Prefix: "/ops", AllowControl: true, RefreshInterval: 300 * time.Millisecond,
		Logger: testlog.Logger(t, "graftui: ", slog.LevelInfo)})
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx := browser(t, path)
	page := func(p string) string { return srv.URL + "/ops" + p }

	// eval evaluates a JavaScript expression in the page once.
	eval := func(expr string, out any) error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[json.RawMessage](expr))
		if err != nil {
			return err
		}
		return json.Unmarshal(v, out)
	}
	// waitJS waits until expr is true in the page shown, for up to 20s;
	// errors (a navigation under way) count as false.
	waitJS := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var lastErr error
		for time.Now().Before(deadline) {
			var ok bool
			if lastErr = eval("!!("+expr+")", &ok); lastErr == nil && ok {
				return
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
		}
		t.Fatalf("waiting for %s (%s): last error %v", what, expr, lastErr)
	}
	// text returns the text of the element sel selects, once it is there.
	text := func(sel string) string {
		t.Helper()
		q := "document.querySelector(" + strconv.Quote(sel) + ")"
		waitJS(sel, q)
		var s string
		require.NoError(t, eval(q+".textContent", &s), "text of %s", sel)
		return s
	}
	// click presses the element sel selects with the mouse, again if the
	// page replaced it in the middle.
	click := func(sel string) {
		t.Helper()
		waitJS(sel, "document.querySelector("+strconv.Quote(sel)+")")
		var err error
		for range 5 {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = chromedp.Do(sctx, chromedp.Click(chromedp.CSS(sel)))
			cancel()
			if err == nil {
				return
			}
		}
		t.Fatalf("clicking %s: %v", sel, err)
	}
	navigate := func(p string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(sctx, chromedp.Navigate(page(p))), "navigating to %s", p)
	}
	shot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// A page still laying out after a navigation has no width yet
		// ("Cannot take screenshot with 0 width"): try again shortly.
		var png []byte
		var err error
		for range 50 {
			if png, err = chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil || !strings.Contains(err.Error(), "0 width") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, err, "screenshot %s", name)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), png, 0o644))
	}
	// rows lists the workflow rows of the list page shown: ID and status.
	rows := func() [][2]string {
		t.Helper()
		var out [][2]string
		require.NoError(t, eval(`Array.from(document.querySelectorAll('#workflow-list tr[data-id]')).map(r => [r.dataset.id, r.dataset.status])`, &out))
		return out
	}
	// waitStatus waits until the page's workflow status badge reads want.
	waitStatus := func(want graft.WorkflowState) {
		t.Helper()
		waitJS("status "+string(want), `(document.getElementById('workflow-status') || {}).textContent === `+strconv.Quote(string(want)))
	}
	location := func() *url.URL {
		t.Helper()
		var loc string
		require.NoError(t, eval("window.location.href", &loc))
		u, err := url.Parse(loc)
		require.NoError(t, err)
		return u
	}

	// The cluster page.
	navigate("/")
	require.Contains(t, text("#members"), "n1")
	require.Contains(t, text("#shards"), "n1")
	require.Equal(t, "ready", text("#health"))
	shot("cluster.png")

	// The list: every workflow, with its status.
	navigate("/workflows")
	waitJS("the list", `document.querySelector('#workflow-list')`)
	all := rows()
	require.Len(t, all, len(f.completed)+len(f.failed)+len(f.held)+len(f.blocked), "%v", all)
	require.Contains(t, all, [2]string{f.blocked[0], "blocked"})
	require.Contains(t, all, [2]string{f.held[0], "running"})
	shot("workflows.png")

	// Filter by status with the form: only failed workflows remain.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	require.NoError(t, chromedp.Do(sctx, chromedp.SetValue(chromedp.CSS(`#filters select[name="status"]`), "failed")))
	cancel()
	click(`#filters button[type="submit"]`)
	waitJS("the failed filter", `document.querySelector('#status-counts a.on[data-status="failed"]')`)
	require.Equal(t, "failed", location().Query().Get("status"))
	failed := rows()
	require.Len(t, failed, len(f.failed), "%v", failed)
	for _, r := range failed {
		require.Equal(t, "failed", r[1], "%v", failed)
		require.True(t, slices.Contains(f.failed, r[0]), "%v", failed)
	}
	shot("workflows-failed.png")

	// Open a failed workflow from the list: its error shows, as text.
	click(`#workflow-list tr[data-id] a`)
	require.Contains(t, text("#last-error"), cardError)
	require.Equal(t, "failed", text("#workflow-status"))
	require.Contains(t, text("#timeline"), "Charge")
	require.Contains(t, text("#state"), "<script>alert(1)</script>")
	shot("workflow-failed.png")

	// Pause a running workflow with its button, then resume it.
	held := f.held[0]
	navigate("/workflow?id=" + url.QueryEscape(held))
	require.Equal(t, "running", text("#workflow-status"))
	require.Contains(t, text("#timeline"), "executing")
	require.Contains(t, text("#executing"), "Hold")
	click("#pause")
	waitStatus(graft.WorkflowStatePaused)
	require.Contains(t, text("#flash"), "Paused")
	// The page's script drops done= from the address once it has run,
	// which may be just after the status shows.
	require.Eventually(t, func() bool { return !strings.Contains(location().RawQuery, "done=") }, 10*time.Second, 50*time.Millisecond,
		"the action's message is not repeated by a reload")
	f.waitStatus(t, held, graft.WorkflowStatePaused)
	text("#resume")
	shot("workflow-paused.png")
	click("#resume")
	waitStatus(graft.WorkflowStateRunning)
	f.waitStatus(t, held, graft.WorkflowStateRunning)

	// Live refresh: a pause made elsewhere shows without a reload.
	navigate("/workflow?id=" + url.QueryEscape(held))
	text("#pause")
	var ok bool
	require.NoError(t, eval(`window.graftMark = true`, &ok))
	// While text is selected in the live part, it is left alone.
	require.NoError(t, eval(`(() => { const r = document.createRange(); r.selectNodeContents(document.getElementById('state'));
		const s = window.getSelection(); s.removeAllRanges(); s.addRange(r); return !s.isCollapsed })()`, &ok))
	require.True(t, ok, "text selected")
	require.NoError(t, f.m.PauseWorkflow(context.Background(), held))
	f.waitStatus(t, held, graft.WorkflowStatePaused)
	time.Sleep(1500 * time.Millisecond) // five refresh intervals, in which the page must not change
	require.Equal(t, "running", text("#workflow-status"), "the page refreshed under a selection")
	require.NoError(t, eval(`(() => { window.getSelection().removeAllRanges(); return true })()`, &ok))
	waitStatus(graft.WorkflowStatePaused)
	var mark bool
	require.NoError(t, eval(`window.graftMark === true`, &mark))
	require.True(t, mark, "the page was reloaded, not refreshed in place")
	require.Contains(t, text("#live-status"), "live")
	require.NoError(t, f.m.ResumeWorkflow(context.Background(), held))
	waitStatus(graft.WorkflowStateRunning)
}
