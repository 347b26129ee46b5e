package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	rpprof "runtime/pprof"

	"go.uber.org/zap"
)

// startProfiling serves Go's profiles (/debug/pprof/) on addr, a listener
// apart from the API and its tokens: set RIGWATCH_PPROF_ADDR to a loopback
// address to see where a process's memory and time go. Empty: off.
func startProfiling(addr string, log *zap.Logger) {
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("cannot serve profiles", zap.String("addr", addr), zap.Error(err))
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("serving profiles", zap.String("addr", ln.Addr().String()))
	go func() { _ = http.Serve(ln, mux) }()
}

// startCPUProfile writes a CPU profile of the whole command to path
// (RIGWATCH_CPUPROFILE), for commands that end by themselves, such as
// replay; the returned function ends it. Empty: off.
func startCPUProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = rpprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rigwatch: no CPU profile:", err)
		return func() {}
	}
	return func() {
		rpprof.StopCPUProfile()
		_ = f.Close()
	}
}
