//go:build !linux

package main

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// The file watcher and the /proc scanners are Linux sources; on other
// platforms a configuration that asks for them is refused at start.

func startFileWatcher(ctx context.Context, a *agent, cfg *FilesSource) error {
	return fmt.Errorf("the file watcher source is not supported on %s (Linux only)", runtime.GOOS)
}

func startProcessScanner(ctx context.Context, a *agent, interval time.Duration) error {
	return fmt.Errorf("the /proc process scanner is not supported on %s (Linux only)", runtime.GOOS)
}

func startConnectionScanner(ctx context.Context, a *agent, interval time.Duration) error {
	return fmt.Errorf("the /proc/net connection scanner is not supported on %s (Linux only)", runtime.GOOS)
}
