package main

import (
	"context"
	"log/slog"
)

// dragonboatPkgKey is the attribute Graft's shards package adds to every log
// record it forwards from Dragonboat.
const dragonboatPkgKey = "dragonboat.pkg"

// quietDragonboat is a slog.Handler that drops Dragonboat records below
// Error: Dragonboat logs routine elections (one burst per shard and
// scenario) at Warn, which would bury the benchmark's progress.
type quietDragonboat struct{ slog.Handler }

// Handle passes r on unless it is a Dragonboat record below Error.
func (h quietDragonboat) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		fromDragonboat := false
		r.Attrs(func(a slog.Attr) bool {
			fromDragonboat = a.Key == dragonboatPkgKey
			return !fromDragonboat
		})
		if fromDragonboat {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the filter on derived handlers.
func (h quietDragonboat) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietDragonboat{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the filter on derived handlers.
func (h quietDragonboat) WithGroup(name string) slog.Handler {
	return quietDragonboat{h.Handler.WithGroup(name)}
}
