package etcd

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zap core that hands entries at or above a level to a slog
// logger, so etcd's messages land in lotse's one log stream.
type slogCore struct {
	logger *slog.Logger
	level  zapcore.Level
	attrs  []any
	// closing is set by Server.Close. etcd reports its own listeners being
	// closed as errors ("setting up serving from embedded etcd failed"), so
	// from then on errors are passed on at debug level to keep a clean stop
	// quiet.
	closing *atomic.Bool
}

func newSlogCore(logger *slog.Logger, level zapcore.Level, closing *atomic.Bool) zapcore.Core {
	return &slogCore{logger: logger.With("component", "etcd"), level: level, closing: closing}
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.level }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.attrs = append(append([]any(nil), c.attrs...), mapToAttrs(encodeFields(fields))...)
	return &clone
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := encodeFields(fields)
	level := slogLevel(e.Level)
	if c.closing.Load() || knownHarmless(e.Message, enc) {
		level = slog.LevelDebug
	}
	args := append(append([]any(nil), c.attrs...), mapToAttrs(enc)...)
	// zap entries carry no context; Background is the honest stand-in.
	c.logger.Log(context.Background(), level, e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// knownHarmless reports entries etcd logs as errors that its maintainers
// call harmless. etcd 3.6 checks the storage schema version once right
// after a fresh member starts, before the fields it reads are written, and
// logs the failure; the next check a few seconds later succeeds.
func knownHarmless(msg string, fields map[string]any) bool {
	if msg != "failed to update storage version" {
		return false
	}
	errText, _ := fields["error"].(string)
	return strings.Contains(errText, "cannot detect storage schema version")
}

func encodeFields(fields []zapcore.Field) map[string]any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return enc.Fields
}

func mapToAttrs(fields map[string]any) []any {
	keys := slices.Sorted(maps.Keys(fields))
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	return attrs
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l >= zapcore.WarnLevel:
		return slog.LevelWarn
	case l >= zapcore.InfoLevel:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
