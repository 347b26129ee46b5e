// Package browsertest starts the headless Chromium that the UI's browser
// tests drive: Debian's chromium package, flags fit for this closed
// network. A test without it fails, naming the package: it never skips.
package browsertest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is Debian's chromium unless RIGWATCH_CHROMIUM names another.
func Path(t testing.TB) string {
	t.Helper()
	p := os.Getenv("RIGWATCH_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		t.Fatalf("the browser tests need headless Chromium at %s: install Debian's chromium package (apt-get install -y chromium) or set RIGWATCH_CHROMIUM", p)
	}
	return p
}

// Start starts headless Chromium for the test and returns its context,
// closed at cleanup.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these Chromium keeps dialling out, and this machine's
		// closed network refuses every attempt.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start Chromium: %v", err)
	}
	return ctx
}
