// Package web is rigwatch's web UI: static HTML, CSS and JavaScript embedded
// in the binary and served at the root. The UI talks to the JSON API under
// /api/v1/ only; it holds no data of its own. Its one third-party asset, the
// uPlot charting library, is vendored under static/vendor (see VERSIONS there
// and `make web-vendor`), so nothing is fetched from the internet at run time.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy keeps the page to its own origin: scripts and
// connections only to this server. Styles allow inline attributes because
// the chart library sizes its elements with style attributes.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; " +
	"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the UI: index.html at "/" and its assets beside it. Routing
// inside the UI is by URL fragment (#/alerts, #/feeder/F1), so the server
// only ever serves these files; any other path is 404, which keeps mistyped
// API paths from answering HTML. It is safe for concurrent use.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if p != "/" {
			name := strings.TrimPrefix(p, "/")
			if name == "index.html" || strings.HasPrefix(name, ".") {
				http.NotFound(w, r)
				return
			}
			if st, err := fs.Stat(root, name); err != nil || st.IsDir() {
				http.NotFound(w, r)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change only with the binary; revalidation is cheap and
		// an upgraded server never runs with a stale script.
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		files.ServeHTTP(w, r2)
	})
}
