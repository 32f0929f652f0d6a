package graftui

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/eleven-am/graft"
)

// Defaults of Options.
const (
	// DefaultRefreshInterval is how often a page refreshes its live part
	// when Options.RefreshInterval is 0.
	DefaultRefreshInterval = 5 * time.Second
	// DefaultPageSize is the workflows listed per page when
	// Options.PageSize is 0.
	DefaultPageSize = 50
	// DefaultTimeout bounds the Manager calls of a request when
	// Options.Timeout is 0.
	DefaultTimeout = 10 * time.Second
)

// maxFormBytes bounds the body of a control POST.
const maxFormBytes = 4 << 10

// Options configure Handler. The zero value is a read-only page mounted at
// the root, refreshed every DefaultRefreshInterval.
type Options struct {
	// Prefix is the path the handler is mounted under, such as "/graft";
	// "" (the default) mounts it at the root. Links and forms on the pages
	// start with it, and the handler expects it stripped from the requests
	// it gets (http.StripPrefix(prefix, handler)). A trailing slash is
	// dropped and a missing leading one added.
	Prefix string
	// AllowControl adds pause, resume and stop buttons to a workflow's
	// page and accepts the POSTs they send. Default false: the handler
	// only reads and refuses every POST with 403. The handler has no
	// authentication of its own, so enable this only behind yours. POSTs
	// from another origin than the page's are refused with 403
	// (http.CrossOriginProtection: the browser's Sec-Fetch-Site header,
	// else Origin compared with Host).
	AllowControl bool
	// TrustedOrigins are origins ("https://ops.example.com") whose
	// cross-origin POSTs are accepted anyway, for a proxy that changes the
	// Host header. Empty by default.
	TrustedOrigins []string
	// RefreshInterval is how often a page refreshes its live part (a
	// fetch of the same URL every interval while the tab is visible).
	// 0 means DefaultRefreshInterval (5s); negative turns refreshing
	// off; at least 200ms otherwise.
	RefreshInterval time.Duration
	// PageSize is how many workflows a list page shows unless its limit
	// parameter says otherwise: 0 means DefaultPageSize (50), at most
	// graft.MaxListLimit.
	PageSize int
	// Timeout bounds the Manager calls one request makes (it is also
	// bounded by the request's context): 0 means DefaultTimeout (10s).
	Timeout time.Duration
	// Logger receives the control actions taken (info) and the errors met
	// (warn); nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports the first option that Handler cannot use. Handler calls
// it; a handler built from invalid options answers every request with 500
// and the error.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.Prefix != "" {
		u, err := url.Parse(o.Prefix)
		if err != nil || u.Path != o.Prefix || u.RawQuery != "" || u.Fragment != "" || u.Host != "" {
			return fmt.Errorf("graftui: Prefix %q is not a URL path", o.Prefix)
		}
	}
	if o.RefreshInterval > 0 && o.RefreshInterval < 200*time.Millisecond {
		return fmt.Errorf("graftui: RefreshInterval (%s) must be at least 200ms, or negative to turn refreshing off", o.RefreshInterval)
	}
	if o.PageSize < 0 || o.PageSize > graft.MaxListLimit {
		return fmt.Errorf("graftui: PageSize (%d) must be between 0 and %d", o.PageSize, graft.MaxListLimit)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("graftui: Timeout (%s) must not be negative", o.Timeout)
	}
	cop := http.NewCrossOriginProtection()
	for _, origin := range o.TrustedOrigins {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			return fmt.Errorf("graftui: TrustedOrigins: %w", err)
		}
	}
	return nil
}

// withDefaults returns a copy of o with its defaults filled in.
func (o Options) withDefaults() Options {
	o.Prefix = strings.TrimRight(o.Prefix, "/")
	if o.Prefix != "" && !strings.HasPrefix(o.Prefix, "/") {
		o.Prefix = "/" + o.Prefix
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	o.PageSize = cmp.Or(o.PageSize, DefaultPageSize)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// handler serves the pages of one Manager.
type handler struct {
	m     *graft.Manager
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	cop   *http.CrossOriginProtection
	// nodeID is the member's node ID, shown on every page.
	nodeID string
	now    func() time.Time
}

// Handler returns the operations page of m as an http.Handler. Its paths,
// relative to Options.Prefix:
//
//	GET  /                  the cluster: members, shards, health
//	GET  /workflows         workflows; query parameters status, meta (k=v,
//	                        repeatable), node, since, before, limit, page
//	GET  /workflow?id=ID    one workflow
//	POST /workflow?id=ID    action=pause|resume|stop (Options.AllowControl)
//	GET  /static/...        the style sheet and the refresh script
//
// A bad query parameter gives a 400 page naming it, an unknown workflow a
// 404 page, a Manager that is not running a 503 page. The handler keeps no
// state between requests and starts no goroutines.
func Handler(m *graft.Manager, opts Options) http.Handler {
	if err := opts.Validate(); err != nil {
		log := cmp.Or(opts.Logger, slog.Default())
		log.Error("graftui: invalid options", "error", err)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	opts = opts.withDefaults()
	h := &handler{m: m, opts: opts, log: opts.Logger.With("component", "graftui"), now: time.Now,
		cop: http.NewCrossOriginProtection(), nodeID: m.GetClusterInfo().NodeID}
	for _, origin := range opts.TrustedOrigins {
		_ = h.cop.AddTrustedOrigin(origin) // checked by Validate
	}
	h.pages = h.parseTemplates()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.cluster)
	mux.HandleFunc("GET /workflows", h.workflows)
	mux.HandleFunc("GET /workflow", h.workflow)
	mux.HandleFunc("POST /workflow", h.control)
	mux.Handle("GET /static/{file}", http.FileServerFS(staticFS))
	mux.HandleFunc("/", h.notFound)
	h.mux = mux
	return h
}

// ServeHTTP sets the security headers every answer carries and routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// parseTemplates parses each page with the layout. The templates are
// embedded, so an error is a bug in this package: it panics.
func (h *handler) parseTemplates() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"cluster", "workflows", "workflow", "error"} {
		t := template.New(name).Funcs(h.funcs())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// page is what every template gets: the layout's fields and the page's
// own data.
type page struct {
	Title   string
	Nav     string
	Prefix  string
	NodeID  string
	Refresh int64 // milliseconds; 0 means off
	Now     time.Time
	Data    any
}

// render executes the named page into a buffer, then writes it with
// status; a template error becomes a plain 500.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	p := page{Title: title, Nav: nav, Prefix: h.opts.Prefix, NodeID: h.nodeID, Now: h.now(), Data: data}
	if h.opts.RefreshInterval > 0 && status == http.StatusOK {
		p.Refresh = h.opts.RefreshInterval.Milliseconds()
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Warn("rendering page", "page", name, "path", r.URL.Path, "error", err)
		http.Error(w, "graftui: rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorData is the error page's data.
type errorData struct {
	Status  int
	Text    string
	Message string
	Param   string
}

// fail renders the error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, param, msg string) {
	h.render(w, r, status, "error", http.StatusText(status), "", errorData{Status: status, Text: http.StatusText(status), Message: msg, Param: param})
}

// badParam renders a 400 page naming the query parameter at fault.
func (h *handler) badParam(w http.ResponseWriter, r *http.Request, param, format string, args ...any) {
	h.fail(w, r, http.StatusBadRequest, param, fmt.Sprintf("bad parameter %q: %s", param, fmt.Sprintf(format, args...)))
}

// failErr renders the error page for an error of a Manager call: 404 for
// an unknown workflow, 409 for a refused transition, 503 when the member
// is not running or the call timed out, 500 otherwise.
func (h *handler) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, graft.ErrWorkflowNotFound):
		status = http.StatusNotFound
	case errors.Is(err, graft.ErrInvalidTransition):
		status = http.StatusConflict
	case errors.Is(err, graft.ErrNotStarted), errors.Is(err, graft.ErrClosed), errors.Is(err, graft.ErrNotReady),
		errors.Is(err, graft.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status >= 500 {
		h.log.Warn(what, "path", r.URL.Path, "error", err)
	}
	h.fail(w, r, status, "", fmt.Sprintf("%s: %v", what, err))
}

// notFound answers paths the handler does not serve.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	h.fail(w, r, http.StatusNotFound, "", fmt.Sprintf("no page at %s", r.URL.Path))
}

// ctx bounds a request's Manager calls by Options.Timeout.
func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.opts.Timeout)
}

// url returns the page path with the prefix and query q.
func (h *handler) url(path string, q url.Values) string {
	u := h.opts.Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// workflowURL is the page of workflow id.
func (h *handler) workflowURL(id string) string {
	return h.url("/workflow", url.Values{"id": {id}})
}
