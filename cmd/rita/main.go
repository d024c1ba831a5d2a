// Command rita looks inside, repairs and moves rita event stores on NATS
// JetStream: the stores on a connection, their events decoded, one entity's
// history, durable consumers and their parked events, rebuilds, snapshots,
// and export and import as JSON lines. It connects like the nats command
// (the same flags, environment variables and saved contexts) and leaves the
// work to the rita library: it parses, calls and prints.
//
// Run rita --help, or see README.md beside this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
)

// Exit codes, for scripts.
const (
	exitOK        = 0 // done
	exitFailed    = 1 // failed for another reason
	exitUsage     = 2 // bad command line
	exitNotFound  = 3 // no such store, consumer, parked event or snapshot
	exitConflict  = 4 // refused: the store holds other events, a process runs the consumer, a duplicate
	exitNoConnect = 5 // could not connect to NATS
	exitBadData   = 6 // a line to import, or an event, that cannot be read
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a := newApp(stdin, stdout, stderr)
	if len(args) == 0 {
		a.app.UsageWriter(stderr)
		a.app.Usage(nil)
		return exitUsage
	}
	cmd, err, exited := a.parse(args)
	if exited >= 0 {
		return exited // --help, --version or a completion: printed
	}
	if err != nil {
		fmt.Fprintf(stderr, "rita: %v (rita --help shows the commands and flags)\n", err)
		return exitUsage
	}
	action, ok := a.actions[cmd]
	if !ok {
		fmt.Fprintf(stderr, "rita: %q needs a subcommand (rita help %s)\n", cmd, cmd)
		return exitUsage
	}
	if err := action(ctx); err != nil {
		fmt.Fprintf(stderr, "rita: %v\n", err)
		return exitCode(err)
	}
	return exitOK
}

// cli is the command line: its flags, its commands, and where they write.
type cli struct {
	app     *kingpin.Application
	actions map[string]func(context.Context) error

	stdin          io.Reader
	stdout, stderr io.Writer

	conn connFlags
	json bool
	args args
}

// newApp declares every command and flag.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli {
	a := &cli{
		app:     kingpin.New("rita", "Look inside, repair and move rita event stores on NATS JetStream."),
		actions: map[string]func(context.Context) error{},
		stdin:   stdin,
		stdout:  stdout,
		stderr:  stderr,
	}
	a.app.Writer(stdout)
	a.app.ErrorWriter(stderr)
	a.app.Terminate(func(code int) { panic(terminated(code)) })
	a.app.UsageWriter(stdout)
	a.app.HelpFlag.Short('h')
	a.app.Version("rita command, rita library " + libraryVersion())
	a.conn.declare(a.app)
	a.app.Flag("json", "Print JSON, one object per line, instead of tables").BoolVar(&a.json)

	a.storeCommands()
	a.eventCommands()
	a.consumerCommands()
	a.snapshotCommands()
	a.transferCommands()
	a.permissionCommands()
	a.completionCommand()
	return a
}

// command declares a command with its action.
func (a *cli) command(parent interface {
	Command(name, help string) *kingpin.CmdClause
}, name, help string, action func(context.Context) error) *kingpin.CmdClause {
	cmd := parent.Command(name, help)
	a.actions[cmd.FullCommand()] = action
	return cmd
}

// terminated is how kingpin ends the command after printing help, the
// version or completions.
type terminated int

// parse parses args; exited is the exit code when kingpin has done what was
// asked already (printed help), -1 otherwise.
func (a *cli) parse(args []string) (cmd string, err error, exited int) {
	defer func() {
		if p := recover(); p != nil {
			code, ok := p.(terminated)
			if !ok {
				panic(p)
			}
			exited = int(code)
		}
	}()
	cmd, err = a.app.Parse(args)
	return cmd, err, -1
}

// exitCode maps an error to the exit code scripts see.
func exitCode(err error) int {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return classify(err)
}

// codedError is an error with the exit code it ends the command with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode makes err end the command with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}
