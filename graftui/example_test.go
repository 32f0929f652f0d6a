package graftui_test

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/graftui"
)

// The page mounted under /graft/ of an application's own server, beside
// the member's probes. Put your authentication in front of it; with
// AllowControl it can pause, resume and stop workflows.
func ExampleHandler() {
	manager := graft.New("node-1", "127.0.0.1:7000", "./data", slog.Default())
	// ... RegisterNode, Start ...

	mux := http.NewServeMux()
	mux.Handle("/graft/", http.StripPrefix("/graft", graftui.Handler(manager, graftui.Options{
		Prefix:          "/graft",
		RefreshInterval: 5 * time.Second,
		AllowControl:    false,
	})))
	mux.Handle("/healthz", manager.LivezHandler())
	mux.Handle("/readyz", manager.ReadyzHandler())
	_ = http.ListenAndServe("127.0.0.1:8090", mux)
}
