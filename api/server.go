// Package api serves rigwatch over HTTP: health and readiness probes and
// Prometheus metrics at the root, the JSON API under /api/v1/.
package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// ReadyFunc reports why the service is not ready, or nil when it is.
type ReadyFunc func(ctx context.Context) error

// Config configures the server.
type Config struct {
	Addr  string // listen address; default 127.0.0.1:8080
	Ready ReadyFunc
}

// Server is rigwatch's HTTP server.
type Server struct {
	cfg  Config
	srv  *http.Server
	mux  *http.ServeMux
	log  *zap.Logger
	ln   net.Listener
	done chan error // Serve's error, once it stops
}

// New returns a server; Start listens.
func New(cfg Config, log *zap.Logger) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: log.With(zap.String("component", "http"))}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.Handler())
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Handle registers a handler, for the parts of the API other packages serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Write([]byte("ready\n"))
}

// Start listens on the configured address.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// Run waits until ctx ends, returning nil, or until the server stops
// serving by itself, returning why. It does not stop the server: Shutdown
// does, once the rest of the service has stopped, so that probes answer
// to the end. Start must have been called.
func (s *Server) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.done:
		s.done <- err
		if err == nil {
			err = errors.New("stopped serving")
		}
		return fmt.Errorf("HTTP server on %s: %w", s.Addr(), err)
	}
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server, letting requests in flight finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
