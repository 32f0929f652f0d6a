package shards

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/eleven-am/graft/internal/logkeys"
	dblogger "github.com/lni/dragonboat/v4/logger"
)

// Log attribute keys.
const (
	attrComponent = logkeys.Component
	attrNode      = logkeys.Member
	attrShard     = logkeys.Shard
	attrReplica   = "graft.replica.id"
	attrPackage   = "dragonboat.pkg"
)

// Dragonboat's logger factory is process-global and may be installed only
// once, so the adapter installed here forwards to whichever Host was created
// most recently. This is the package's one unavoidable process-global.
var (
	installLoggerOnce sync.Once
	dragonboatTarget  atomic.Pointer[slog.Logger]
)

// routeDragonboatLogs points Dragonboat's logs at l, installing the adapter on
// first use.
func routeDragonboatLogs(l *slog.Logger) {
	dragonboatTarget.Store(l)
	installLoggerOnce.Do(func() {
		defer func() {
			// Someone else in the process installed a factory first; keep theirs.
			if r := recover(); r != nil {
				l.Warn("dragonboat logger factory already installed; dragonboat logs are not routed to slog", "panic", r)
			}
		}()
		dblogger.SetLoggerFactory(func(pkg string) dblogger.ILogger {
			return &dragonboatLogger{pkg: pkg, level: int32(dblogger.DEBUG)}
		})
	})
}

// dragonboatLogger adapts Dragonboat's ILogger to slog.
type dragonboatLogger struct {
	pkg   string
	level int32 // dblogger.LogLevel set by Dragonboat; slog filters the rest
}

var _ dblogger.ILogger = (*dragonboatLogger)(nil)

func (d *dragonboatLogger) SetLevel(l dblogger.LogLevel) { atomic.StoreInt32(&d.level, int32(l)) }

func (d *dragonboatLogger) log(l dblogger.LogLevel, sl slog.Level, format string, args []any) {
	if int32(l) > atomic.LoadInt32(&d.level) {
		return
	}
	target := dragonboatTarget.Load()
	if target == nil {
		target = slog.Default()
	}
	if !target.Enabled(context.Background(), sl) {
		return
	}
	target.Log(context.Background(), sl, fmt.Sprintf(format, args...), attrPackage, d.pkg)
}

func (d *dragonboatLogger) Debugf(format string, args ...any) {
	d.log(dblogger.DEBUG, slog.LevelDebug, format, args)
}

func (d *dragonboatLogger) Infof(format string, args ...any) {
	d.log(dblogger.INFO, slog.LevelInfo, format, args)
}

func (d *dragonboatLogger) Warningf(format string, args ...any) {
	d.log(dblogger.WARNING, slog.LevelWarn, format, args)
}

func (d *dragonboatLogger) Errorf(format string, args ...any) {
	d.log(dblogger.ERROR, slog.LevelError, format, args)
}

// Panicf logs and panics, as Dragonboat expects. (Its node registry's
// panics on invalid or conflicting targets cannot happen: Graft installs
// its own registry, see registry.go.)
func (d *dragonboatLogger) Panicf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.log(dblogger.CRITICAL, slog.LevelError, "%s", []any{msg})
	panic(msg)
}

// pebbleLogger routes the state database's Pebble logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("graft: shards: pebble: " + msg)
}
