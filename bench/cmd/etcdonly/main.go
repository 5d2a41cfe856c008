package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/lotse/lotse/internal/etcd"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for the member's data (required)")
	clientURL := flag.String("client-url", "http://127.0.0.1:0", "where clients connect")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcdonly: --data-dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The same settings lotse server gives its member, fsync included.
	member, err := etcd.Start(ctx, etcd.Config{
		DataDir:   filepath.Join(*dataDir, "etcd"),
		ClientURL: *clientURL,
		PeerURL:   "http://127.0.0.1:0",
		Name:      "lotse",
		Logger:    log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdonly:", err)
		os.Exit(1)
	}
	fmt.Printf("etcd ready at %s\n", member.Endpoints()[0])
	<-ctx.Done()
	member.Close()
}
