// Package graftui is an operations web page for a Graft member, to mount in
// your own HTTP server: the cluster (members with their status, load, node
// types and counters; shards with their replicas and leaders; this member's
// health), the workflows (filtered by status, metadata, node and start
// time, paged, with counts by status) and each workflow (its state, a
// timeline of its steps with start times, durations, attempts and errors,
// its pending and executing steps).
//
//	mux.Handle("/graft/", http.StripPrefix("/graft", graftui.Handler(manager, graftui.Options{Prefix: "/graft"})))
//
// Pages are rendered on the server with html/template from embedded files:
// nothing is fetched from elsewhere, and a small embedded script refreshes
// the live part of each page every Options.RefreshInterval.
//
// The handler has no authentication of its own: mount it behind yours. It
// only reads, unless Options.AllowControl is set; then a workflow's page
// has pause, resume and stop buttons, which POST to the handler, and POSTs
// from another origin are refused (http.CrossOriginProtection).
package graftui
