package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/synadia-labs/rita"
)

// connFlags are the connection flags of the nats command, with its
// environment variables; a saved context of the nats command (--context, or
// the one selected with nats context select) supplies what they leave out.
type connFlags struct {
	server, context        string
	user, password, token  string
	creds, nkey            string
	tlsCert, tlsKey, tlsCA string
	tlsFirst               bool
	timeout                time.Duration
	contextFound           string
}

func (f *connFlags) declare(app *kingpin.Application) {
	app.Flag("server", "NATS server URLs, comma separated").Short('s').Envar("NATS_URL").PlaceHolder("URL").StringVar(&f.server)
	app.Flag("context", "A saved context of the nats command to connect with (default: the selected one)").Envar("NATS_CONTEXT").StringVar(&f.context)
	app.Flag("user", "User name or token").Envar("NATS_USER").StringVar(&f.user)
	app.Flag("password", "Password").Envar("NATS_PASSWORD").StringVar(&f.password)
	app.Flag("token", "Authentication token").Envar("NATS_TOKEN").StringVar(&f.token)
	app.Flag("creds", "User credentials file (JWT and seed)").Envar("NATS_CREDS").PlaceHolder("FILE").StringVar(&f.creds)
	app.Flag("nkey", "User NKEY seed file").Envar("NATS_NKEY").PlaceHolder("FILE").StringVar(&f.nkey)
	app.Flag("tlscert", "TLS client certificate file").Envar("NATS_CERT").PlaceHolder("FILE").StringVar(&f.tlsCert)
	app.Flag("tlskey", "TLS client private key file").Envar("NATS_KEY").PlaceHolder("FILE").StringVar(&f.tlsKey)
	app.Flag("tlsca", "TLS certificate authority chain file").Envar("NATS_CA").PlaceHolder("FILE").StringVar(&f.tlsCA)
	app.Flag("tlsfirst", "Perform the TLS handshake first").Envar("NATS_TLSFIRST").BoolVar(&f.tlsFirst)
	app.Flag("timeout", "How long to wait for the server to answer one request").Default("10s").Envar("NATS_TIMEOUT").DurationVar(&f.timeout)
}

// options merges the flags into the nats command's context, and returns the
// URL to connect to and the connection options.
func (f *connFlags) options() (string, []nats.Option, error) {
	var over []natscontext.Option
	add := func(v string, opt func(string) natscontext.Option) {
		if v != "" {
			over = append(over, opt(v))
		}
	}
	add(f.server, natscontext.WithServerURL)
	add(f.user, natscontext.WithUser)
	add(f.password, natscontext.WithPassword)
	add(f.token, natscontext.WithToken)
	add(f.creds, natscontext.WithCreds)
	add(f.nkey, natscontext.WithNKey)
	add(f.tlsCert, natscontext.WithCertificate)
	add(f.tlsKey, natscontext.WithKey)
	add(f.tlsCA, natscontext.WithCA)
	if f.tlsFirst {
		over = append(over, natscontext.WithTLSHandshakeFirst())
	}
	nctx, err := natscontext.New(f.context, true, over...)
	if err != nil {
		if f.context != "" {
			return "", nil, withCode(exitUsage, fmt.Errorf("context %q of the nats command: %w (nats context ls lists them)", f.context, err))
		}
		return "", nil, withCode(exitUsage, fmt.Errorf("the selected context of the nats command: %w", err))
	}
	f.contextFound = nctx.Name
	url := nctx.ServerURL()
	if url == "" {
		url = nats.DefaultURL
	}
	opts, err := nctx.NATSOptions(nats.Name("rita"), nats.Timeout(f.timeout))
	if err != nil {
		return "", nil, withCode(exitUsage, fmt.Errorf("connection settings: %w", err))
	}
	return url, opts, nil
}

// connect connects and makes a Manager (without a type registry: the
// command reads events as stored).
func (a *cli) connect() (*nats.Conn, *rita.Manager, error) {
	url, opts, err := a.conn.options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		where := url
		if a.conn.contextFound != "" {
			where += " (from context " + a.conn.contextFound + ")"
		}
		return nil, nil, withCode(exitNoConnect, fmt.Errorf("not connected to NATS at %s: %w (give the server with --server or NATS_URL, or a context with --context)", where, err))
	}
	m, err := rita.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, m, nil
}

// session is an open connection for one command.
type session struct {
	nc *nats.Conn
	m  *rita.Manager
}

// open connects for one command; close it when done.
func (a *cli) open() (*session, error) {
	nc, m, err := a.connect()
	if err != nil {
		return nil, err
	}
	return &session{nc: nc, m: m}, nil
}

func (s *session) close() { s.nc.Close() }

// openStore connects and opens the store the command names (its store
// argument); the caller closes the session.
func (a *cli) openStore(ctx context.Context) (*session, *rita.EventStore, error) {
	s, err := a.open()
	if err != nil {
		return nil, nil, err
	}
	st, err := s.store(ctx, a.args.store)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, st, nil
}

// store opens the store name; a missing one fails with the names of those
// that exist.
func (s *session) store(ctx context.Context, name string) (*rita.EventStore, error) {
	st, err := s.m.GetEventStore(ctx, name)
	if err == nil {
		return st, nil
	}
	if errors.Is(err, rita.ErrEventStoreNameInvalid) || errors.Is(err, rita.ErrEventStoreNameRequired) {
		return nil, withCode(exitUsage, err)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	var names []string
	for info, err := range s.m.EventStores(ctx) {
		if err != nil {
			break
		}
		names = append(names, info.Config.Name)
	}
	have := "there are no event stores on this connection"
	if len(names) > 0 {
		have = "the stores are: " + strings.Join(sorted(names), ", ")
	}
	return nil, withCode(exitNotFound, fmt.Errorf("no event store %q: %s", name, have))
}

// classify maps an error of the library to an exit code.
func classify(err error) int {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrConsumerNotFound),
		errors.Is(err, rita.ErrParkedNotFound), errors.Is(err, jetstream.ErrKeyNotFound):
		return exitNotFound
	case errors.Is(err, rita.ErrSequenceConflict), errors.Is(err, rita.ErrDurableActive), errors.Is(err, rita.ErrDuplicateEvent):
		return exitConflict
	case errors.Is(err, rita.ErrEventDecode):
		return exitBadData
	case errors.Is(err, rita.ErrInvalidOption), errors.Is(err, rita.ErrFilterInvalid), errors.Is(err, rita.ErrSubjectTooManyTokens),
		errors.Is(err, rita.ErrEventEntityInvalid), errors.Is(err, rita.ErrEventStoreNameInvalid):
		return exitUsage
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrConnectionClosed):
		return exitNoConnect
	}
	return exitFailed
}

// withTimeout bounds one request-like step of a command.
func (a *cli) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*a.conn.timeout)
}
