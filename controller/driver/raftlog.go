package driver

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.etcd.io/raft/v3"
)

// slogRaft writes Raft's log lines to a slog.Logger: Raft's info lines
// (elections, term changes) at debug level, its warnings and errors as
// such.
type slogRaft struct{ l *slog.Logger }

var _ raft.Logger = slogRaft{}

func (s slogRaft) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, "raft: "+msg, "component", "controller")
}

func (s slogRaft) Debug(v ...any)              { s.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (s slogRaft) Debugf(f string, v ...any)   { s.log(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (s slogRaft) Info(v ...any)               { s.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (s slogRaft) Infof(f string, v ...any)    { s.log(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (s slogRaft) Warning(v ...any)            { s.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (s slogRaft) Warningf(f string, v ...any) { s.log(slog.LevelWarn, fmt.Sprintf(f, v...)) }
func (s slogRaft) Error(v ...any)              { s.log(slog.LevelError, fmt.Sprint(v...)) }
func (s slogRaft) Errorf(f string, v ...any)   { s.log(slog.LevelError, fmt.Sprintf(f, v...)) }
func (s slogRaft) Fatal(v ...any)              { s.fatal(fmt.Sprint(v...)) }
func (s slogRaft) Fatalf(f string, v ...any)   { s.fatal(fmt.Sprintf(f, v...)) }
func (s slogRaft) Panic(v ...any)              { s.panic(fmt.Sprint(v...)) }
func (s slogRaft) Panicf(f string, v ...any)   { s.panic(fmt.Sprintf(f, v...)) }
func (s slogRaft) fatal(msg string)            { s.log(slog.LevelError, msg); os.Exit(1) }
func (s slogRaft) panic(msg string)            { s.log(slog.LevelError, msg); panic("raft: " + msg) }
