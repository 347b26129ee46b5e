package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `<script src="app.js"`},
		{"/app.js", "javascript", "/api/v1/alerts/stream"},
		{"/app.css", "text/css", ".sev-critical"},
		{"/vendor/uPlot.iife.min.js", "javascript", "uPlot"},
		{"/vendor/uPlot.min.css", "text/css", ".uplot"},
		{"/vendor/uPlot.LICENSE", "text/plain", "MIT"},
	} {
		resp, body := get(http.MethodGet, tc.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contains, strings.Contains(body, tc.contains))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
	for _, p := range []string{"/nope", "/index.html", "/vendor/", "/vendor", "/api/v1/whoami", "/../web.go", "/vendor/VERSIONS/x"} {
		if resp, _ := get(http.MethodGet, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := get(http.MethodPost, "/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
	if resp, body := get(http.MethodHead, "/app.js"); resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /app.js: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestNothingFromTheInternet: the UI must work on a closed network, so no
// page or script of ours names another origin to load from.
func TestNothingFromTheInternet(t *testing.T) {
	ext := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|import\s*\(|fetch\(\s*["']https?:|new EventSource\(\s*["']https?:`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "static/vendor/") {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		if m := ext.Find(b); m != nil {
			t.Errorf("%s loads from another origin: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVendoredVersion keeps VERSIONS honest about the file it describes.
func TestVendoredVersion(t *testing.T) {
	versions, err := fs.ReadFile(static, "static/vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^uplot (\d+\.\d+\.\d+) `).FindSubmatch(versions)
	if m == nil {
		t.Fatalf("VERSIONS names no uplot version:\n%s", versions)
	}
	js, err := fs.ReadFile(static, "static/vendor/uPlot.iife.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if banner := "(v" + string(m[1]) + ")"; !strings.Contains(string(js[:min(len(js), 200)]), banner) {
		t.Errorf("uPlot.iife.min.js does not start with the banner of %s named in VERSIONS", banner)
	}
}
