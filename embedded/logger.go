package embedded

import (
	"context"
	"fmt"
	"log/slog"
)

// logger is the server's logger: it passes the server's lines to an
// slog.Logger, if there is one, and hands the first fatal one to Start.
type logger struct {
	out   *slog.Logger
	fatal chan string // buffered, one message
}

func (l *logger) log(level slog.Level, format string, v ...any) {
	if l.out == nil {
		return
	}
	ctx := context.Background()
	if l.out.Enabled(ctx, level) {
		l.out.Log(ctx, level, fmt.Sprintf(format, v...), "component", "nats-server")
	}
}

func (l *logger) Noticef(format string, v ...any) { l.log(slog.LevelInfo, format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v...) }
func (l *logger) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v...) }
func (l *logger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v...) }
func (l *logger) Tracef(format string, v ...any)  { l.log(slog.LevelDebug, format, v...) }

// Fatalf reports what stopped the server from working (a port it could
// not listen on); nats-server goes on running, so Start is told.
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log(slog.LevelError, "%s", msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
