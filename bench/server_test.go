package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

const (
	// envServer set to "process" runs the suite's nats-server in a process
	// of its own (this binary again, serving), so that what the benchmarks
	// measure of memory is the client's alone: BenchmarkBacklog's
	// live-heap-MB, say. By default the server runs in the benchmark's
	// process.
	envServer = "RITA_BENCH_SERVER"

	// envServe makes this binary a server only: it serves the suite's
	// store directory, prints its URL and runs until its stdin closes.
	envServe = "RITA_BENCH_SERVE"
)

// startServer starts the suite's server on dir, in this process or, with
// RITA_BENCH_SERVER=process, in a child process; stop shuts it down.
func startServer(dir string) (url string, stop func(), err error) {
	if os.Getenv(envServer) != "process" {
		srv, err := newServer(dir)
		if err != nil {
			return "", nil, err
		}
		return srv.ClientURL(), func() { srv.Shutdown(); srv.WaitForShutdown() }, nil
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envServe+"=1", envDir+"="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		in.Close()
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "url=")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("server process: no URL (%q): %v", line, err)
	}
	return url, stop, nil
}

// serve is the server process: it serves dir until its stdin closes.
func serve(dir string) error {
	srv, err := newServer(dir)
	if err != nil {
		return err
	}
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	fmt.Printf("url=%s\n", srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// newServer starts a JetStream server on dir on a free loopback port.
func newServer(dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "rita-bench",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   dir,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(time.Minute) {
		srv.Shutdown()
		return nil, errors.New("server not ready")
	}
	return srv, nil
}
