package api

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// sample gives each route a concrete path, and a body for POSTs, that its
// role succeeds with.
var sample = map[string]struct{ path, body string }{
	"GET /api/v1/openapi.json":             {path: "/api/v1/openapi.json"},
	"GET /api/v1/whoami":                   {path: "/api/v1/whoami"},
	"GET /api/v1/alerts":                   {path: "/api/v1/alerts?kind=feeder_imbalance&status=open"},
	"GET /api/v1/alerts/stream":            {path: "/api/v1/alerts/stream"},
	"GET /api/v1/alerts/{id}":              {path: "/api/v1/alerts/A1"},
	"POST /api/v1/alerts/{id}/acknowledge": {path: "/api/v1/alerts/A2/acknowledge", body: `{"note":"crew sent"}`},
	"POST /api/v1/alerts/{id}/resolve":     {path: "/api/v1/alerts/A3/resolve", body: `{"note":"false positive"}`},
	"GET /api/v1/alerts/{id}/evidence":     {path: "/api/v1/alerts/A1/evidence"},
	"GET /api/v1/calc":                     {path: "/api/v1/calc?machines=1000&watts=3250&hours=24&days=30&tariff=25"},
	"GET /api/v1/feeders":                  {path: "/api/v1/feeders?top=5&since=30d"},
	"GET /api/v1/feeders/{id}":             {path: "/api/v1/feeders/F1?since=2d"},
	"GET /api/v1/sites/{id}":               {path: "/api/v1/sites/S1"},
	"GET /api/v1/operators/{id}":           {path: "/api/v1/operators/OP1"},
	"GET /api/v1/registry/search":          {path: "/api/v1/registry/search?q=SN-0001"},
	"GET /api/v1/tokens":                   {path: "/api/v1/tokens"},
	"POST /api/v1/tokens":                  {path: "/api/v1/tokens", body: `{"name":"made-by-test","role":"operator"}`},
	"DELETE /api/v1/tokens/{name}":         {path: "/api/v1/tokens/t-operator-spare"},
	"GET /api/v1/audit":                    {path: "/api/v1/audit?limit=10"},
	"GET /api/v1/config":                   {path: "/api/v1/config"},
}

func TestEveryRouteAuth(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.st.CreateToken(context.Background(), "t-operator-spare", store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	for _, rt := range Routes() {
		key := rt.Method + " " + rt.Path
		s, ok := sample[key]
		if !ok {
			t.Errorf("route %s has no sample request in this test", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			if rt.Role == "" {
				if code, body := f.do(t, rt.Method, s.path, "", s.body); code != 200 {
					t.Fatalf("public route: %d %s", code, body)
				}
				return
			}
			if code, _ := f.do(t, rt.Method, s.path, "", s.body); code != 401 {
				t.Errorf("no token: %d, want 401", code)
			}
			if code, _ := f.do(t, rt.Method, s.path, "rwt_"+strings.Repeat("0", 64), s.body); code != 401 {
				t.Errorf("unknown token: %d, want 401", code)
			}
			for _, role := range store.Roles {
				if store.RoleRank(role) >= store.RoleRank(rt.Role) {
					continue
				}
				if code, body := f.do(t, rt.Method, s.path, f.tokens[role], s.body); code != 403 {
					t.Errorf("role %s: %d %s, want 403", role, code, body)
				}
			}
			code, body := f.do(t, rt.Method, s.path, f.tokens[rt.Role], s.body)
			if code < 200 || code > 299 {
				t.Errorf("role %s: %d %s, want 2xx", rt.Role, code, body)
			}
		})
	}
	// The bootstrap admin token reaches admin routes; a revoked token
	// nothing.
	if code, body := f.do(t, "GET", "/api/v1/tokens", f.admin, ""); code != 200 {
		t.Errorf("bootstrap admin: %d %s", code, body)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/tokens/t-investigator", f.admin, ""); code != 200 {
		t.Errorf("revoke: %d", code)
	}
	if code, _ := f.do(t, "GET", "/api/v1/feeders", f.tokens["investigator"], ""); code != 401 {
		t.Errorf("revoked token: %d, want 401", code)
	}
	// Audit rows were written for the investigator queries, with who.
	code, body := f.do(t, "GET", "/api/v1/audit?action="+url.QueryEscape("rank feeders"), f.tokens["admin"], "")
	if code != 200 || !strings.Contains(body, `"who": "t-investigator"`) || !strings.Contains(body, `\"top\":\"5\"`) {
		t.Errorf("audit: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/audit?action="+url.QueryEscape("rank feeders")+"&who=t-operator", f.tokens["admin"], "")
	if code != 200 || !strings.Contains(body, `"status": 403`) {
		t.Errorf("a denied attempt is audited too: %d %s", code, body)
	}
}

var injections = []string{
	`' OR 1=1 --`,
	`x'; DROP TABLE alerts; --`,
	`"`,
	`\`,
	`'`,
	`1; DROP DATABASE x`,
	`Қазақстан 🇰🇿 ✓`,
	"\x00nul",
	"\xff\xfe invalid utf8",
	strings.Repeat("A", 5000),
	`%27%20OR%201%3D1`,
	`') UNION ALL SELECT name, token_sha256 FROM api_tokens --`,
}

// params lists each GET route's query parameters.
var params = map[string][]string{
	"GET /api/v1/alerts":               {"kind", "severity", "oblast", "status", "entity_id", "since", "limit", "offset", "order"},
	"GET /api/v1/alerts/stream":        {"kind", "severity", "oblast", "status", "since"},
	"GET /api/v1/calc":                 {"machines", "watts", "model", "hours", "days", "tariff", "revenue"},
	"GET /api/v1/feeders":              {"top", "since", "until", "oblast"},
	"GET /api/v1/feeders/{id}":         {"since", "until"},
	"GET /api/v1/sites/{id}":           {"since", "until"},
	"GET /api/v1/operators/{id}":       {"since", "until"},
	"GET /api/v1/registry/search":      {"q", "at"},
	"GET /api/v1/audit":                {"who", "action", "since", "limit", "offset"},
	"GET /api/v1/alerts/{id}/evidence": {"format"},
}

func tableCounts(t *testing.T, st *store.Store) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, tb := range []string{"licenses", "rigs", "meters", "readings", "purchases", "alerts", "api_tokens", "alert_events"} {
		n, err := st.CountRows(context.Background(), tb)
		if err != nil {
			t.Fatalf("table %s: %v", tb, err)
		}
		out[tb] = n
	}
	return out
}

func TestInjectionChangesNothing(t *testing.T) {
	f := newFixture(t)
	before := tableCounts(t, f.st)
	tries := 0
	check := func(method, path, body string) {
		t.Helper()
		tries++
		code, resp := f.do(t, method, path, f.tokens["admin"], body)
		if code != 400 && code != 404 && code != 409 && (code < 200 || code > 299) {
			t.Errorf("%s %s: %d %s (want 400, 404 or an empty 2xx)", method, path, code, resp)
		}
		if code == 200 && strings.HasPrefix(path, "/api/v1/alerts?") && !strings.Contains(resp, `"alerts": []`) {
			t.Errorf("%s: injection string matched alerts: %s", path, resp)
		}
		for _, tok := range f.tokens {
			if strings.Contains(resp, store.HashToken(tok)) || strings.Contains(resp, tok) {
				t.Errorf("%s %s leaked a token or its hash", method, path)
			}
		}
	}
	for _, rt := range Routes() {
		key := rt.Method + " " + rt.Path
		s := sample[key]
		base, _ := url.Parse(s.path)
		for _, inj := range injections {
			// Every query parameter.
			for _, p := range params[key] {
				q := base.Query()
				q.Set(p, inj)
				check(rt.Method, base.Path+"?"+q.Encode(), s.body)
			}
			// An unknown parameter.
			check(rt.Method, base.Path+"?"+url.Values{inj: {"1"}}.Encode(), s.body)
			// Every path value.
			if strings.Contains(rt.Path, "{") {
				p := rt.Path
				for _, v := range []string{"{id}", "{name}"} {
					p = strings.ReplaceAll(p, v, url.PathEscape(inj))
				}
				if rt.Method != "DELETE" && !strings.HasSuffix(rt.Path, "/acknowledge") && !strings.HasSuffix(rt.Path, "/resolve") {
					check(rt.Method, p, "")
				} else {
					check(rt.Method, p, s.body)
				}
			}
		}
	}
	// Bodies: token names and roles.
	for _, inj := range injections {
		b, _ := json.Marshal(map[string]string{"name": inj, "role": "admin"})
		check("POST", "/api/v1/tokens", string(b))
		b, _ = json.Marshal(map[string]string{"name": "x", "role": inj})
		check("POST", "/api/v1/tokens", string(b))
	}
	after := tableCounts(t, f.st)
	for tb, n := range before {
		if after[tb] != n {
			t.Errorf("table %s: %d rows before, %d after", tb, n, after[tb])
		}
	}
	t.Logf("%d injection requests, tables unchanged: %v", tries, after)

	// A note is data: stored and read back verbatim.
	for i, inj := range injections[:7] {
		id := []string{"A1", "A2", "A3"}[i%3]
		b, _ := json.Marshal(map[string]string{"note": inj})
		path := "/api/v1/alerts/" + id + "/acknowledge"
		if i >= 3 {
			path = "/api/v1/alerts/" + id + "/resolve"
		}
		code, resp := f.do(t, "POST", path, f.tokens["operator"], string(b))
		if code == 200 {
			var a schemas.Alert
			_ = json.Unmarshal([]byte(resp), &a)
			got, _ := f.st.GetAlert(context.Background(), id)
			if got.Note != inj {
				t.Errorf("note %q stored as %q", inj, got.Note)
			}
		}
	}
	if n, _ := f.st.CountAlerts(context.Background()); n != 3 {
		t.Errorf("%d alerts after notes, want 3", n)
	}
}

func TestTokensStoredHashed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code, body := f.do(t, "POST", "/api/v1/tokens", f.admin, `{"name":"crew-7","role":"investigator"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var nt struct {
		Token string `json:"token"`
		Role  string `json:"role"`
	}
	if err := json.Unmarshal([]byte(body), &nt); err != nil || !strings.HasPrefix(nt.Token, store.TokenPrefix) || len(nt.Token) != len(store.TokenPrefix)+64 {
		t.Fatalf("token %q: %v", nt.Token, err)
	}
	secrets := []string{nt.Token}
	for _, s := range f.tokens {
		secrets = append(secrets, s)
	}
	for _, s := range secrets {
		var n uint64
		if err := f.st.Conn().QueryRow(ctx, "SELECT count() FROM "+f.st.Database()+".api_tokens WHERE position(concat(name, '|', token_sha256, '|', role), ?) > 0", s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("a plaintext token is in api_tokens")
		}
		var m uint64
		if err := f.st.Conn().QueryRow(ctx, "SELECT count() FROM "+f.st.Database()+".api_tokens WHERE token_sha256 = ?", store.HashToken(s)).Scan(&m); err != nil || m == 0 {
			t.Errorf("the token's hash is not stored: %v", err)
		}
	}
	// The listing never shows a token or hash.
	_, list := f.do(t, "GET", "/api/v1/tokens", f.admin, "")
	for _, s := range secrets {
		if strings.Contains(list, s) || strings.Contains(list, store.HashToken(s)) {
			t.Errorf("token list shows a secret")
		}
	}
	if code, _ := f.do(t, "GET", "/api/v1/feeders", nt.Token, ""); code != 200 {
		t.Errorf("new token: %d", code)
	}
	if code, _ := f.do(t, "POST", "/api/v1/tokens", f.admin, `{"name":"crew-7","role":"admin"}`); code != 409 {
		t.Errorf("a live name again: %d, want 409", code)
	}
}

func TestAcknowledgeSurvivesUpsert(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ch, cancel := f.b.Subscribe()
	defer cancel()
	code, body := f.do(t, "POST", "/api/v1/alerts/A1/acknowledge", f.tokens["operator"], `{"note":"crew 7 sent"}`)
	if code != 200 || !strings.Contains(body, `"status": "acknowledged"`) {
		t.Fatalf("acknowledge: %d %s", code, body)
	}
	select {
	case a := <-ch:
		if a.AlertID != "A1" || a.Status != schemas.StatusAcknowledged {
			t.Errorf("published %s %s", a.AlertID, a.Status)
		}
	case <-time.After(5 * time.Second):
		t.Error("acknowledgement not published")
	}
	if code, _ := f.do(t, "POST", "/api/v1/alerts/A1/acknowledge", f.tokens["operator"], ""); code != 409 {
		t.Errorf("acknowledge twice: %d, want 409", code)
	}
	// The detector's next evaluation: the finding goes on.
	as := fixtureAlerts()
	as[0].WindowEnd = t1.Add(time.Hour)
	as[0].ExcessKWh = f64(520)
	as[0].Status = schemas.StatusOpen
	newA := as[0]
	newA.AlertID = "A4"
	res, err := f.st.UpsertAlertsDetail(ctx, append(as, newA))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Opened) != 1 || res.Opened[0].AlertID != "A4" || len(res.Updated) != 1 || res.Unchanged != 2 {
		t.Errorf("upsert: opened %d updated %d unchanged %d", len(res.Opened), len(res.Updated), res.Unchanged)
	}
	a, err := f.st.GetAlert(ctx, "A1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != schemas.StatusAcknowledged || a.Note != "crew 7 sent" || !a.WindowEnd.Equal(t1.Add(time.Hour)) || *a.ExcessKWh != 520 {
		t.Errorf("after upsert: status %s note %q window_end %s excess %v", a.Status, a.Note, a.WindowEnd, *a.ExcessKWh)
	}
	code, body = f.do(t, "GET", "/api/v1/alerts?status=acknowledged", f.tokens["operator"], "")
	if code != 200 || !strings.Contains(body, `"alert_id": "A1"`) || strings.Contains(body, `"alert_id": "A2"`) {
		t.Errorf("list acknowledged: %d %s", code, body)
	}
	code, body = f.do(t, "POST", "/api/v1/alerts/A1/resolve", f.tokens["operator"], `{"note":"meter sealed"}`)
	if code != 200 {
		t.Fatalf("resolve: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/alerts/A1", f.tokens["operator"], "")
	if code != 200 || !strings.Contains(body, `"to_status": "resolved"`) || !strings.Contains(body, `"who": "t-operator"`) {
		t.Errorf("detail with events: %d %s", code, body)
	}
	if code, _ := f.do(t, "POST", "/api/v1/alerts/nope/acknowledge", f.tokens["operator"], ""); code != 404 {
		t.Errorf("unknown alert: %d, want 404", code)
	}
}

func TestFeederPages(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "GET", "/api/v1/feeders?top=10&since=30d", f.tokens["investigator"], "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var rank investigate.FeederRanking
	if err := json.Unmarshal([]byte(body), &rank); err != nil {
		t.Fatal(err)
	}
	// 192 intervals x 5 kWh taken on F1; F2 loses 0.02 kWh an interval.
	if len(rank.Top) != 2 || rank.Top[0].FeederID != "F1" || rank.Top[0].UnaccountedKWh != 960 || rank.Top[1].UnaccountedKWh != 3.84 {
		t.Errorf("ranking: %+v", rank.Top)
	}
	code, body = f.do(t, "GET", "/api/v1/feeders/F1?since=2d", f.tokens["investigator"], "")
	var fd investigate.FeederDetail
	if code != 200 || json.Unmarshal([]byte(body), &fd) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if len(fd.Hourly) != 48 || fd.Hourly[0].ResidualKWh != 20 || len(fd.Meters) != 4 || len(fd.Alerts) == 0 {
		t.Errorf("feeder: %d hours, first %+v, %d meters, %d alerts", len(fd.Hourly), fd.Hourly[0], len(fd.Meters), len(fd.Alerts))
	}
	code, body = f.do(t, "GET", "/api/v1/sites/S1?since=2d", f.tokens["investigator"], "")
	var sd investigate.SiteDetail
	if code != 200 || json.Unmarshal([]byte(body), &sd) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if len(sd.Hourly) != 48 || sd.Hourly[0].MeteredKW != 6.8 || sd.Hourly[0].RegisteredKW != 6.5 || len(sd.Rigs) != 2 || len(sd.Licences) != 1 || len(sd.Daily) == 0 {
		t.Errorf("site: %+v", sd)
	}
	code, body = f.do(t, "GET", "/api/v1/operators/OP1?since=2d", f.tokens["investigator"], "")
	if code != 200 || !strings.Contains(body, `"site_id": "S1"`) {
		t.Errorf("operator: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/registry/search?q=SN-0002", f.tokens["investigator"], "")
	if code != 200 || !strings.Contains(body, `"id": "R2"`) {
		t.Errorf("search: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/api/v1/calc?machines=1000&watts=3250&hours=24&days=30&tariff=25", f.tokens["operator"], "")
	if code != 200 || !strings.Contains(body, `"total_power_kw": 3250`) || !strings.Contains(body, `"monthly_mwh": 2340`) || !strings.Contains(body, `"marketplace_transactions": 2340`) {
		t.Errorf("calc: %d %s", code, body)
	}
	if code, _ := f.do(t, "GET", "/api/v1/feeders/F404", f.tokens["investigator"], ""); code != 404 {
		t.Errorf("unknown feeder: %d", code)
	}
}

func TestEvidenceBundle(t *testing.T) {
	f := newFixture(t)
	for _, format := range []string{"zip", "tar.gz"} {
		code, _ := f.do(t, "GET", "/api/v1/alerts/A2/evidence?format="+format, f.tokens["investigator"], "")
		if code != 200 {
			t.Errorf("%s: %d", format, code)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/alerts/A2/evidence", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens["investigator"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		p := filepath.Join(dir, filepath.FromSlash(zf.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	bdir := filepath.Join(dir, "evidence-A2")
	for _, name := range []string{"alert.json", "readings.csv", "registry.json", "computation.json", "report.md", "manifest.sha256", "purchases.csv"} {
		if _, err := os.Stat(filepath.Join(bdir, name)); err != nil {
			t.Errorf("bundle lacks %s", name)
		}
	}
	if err := investigate.VerifyDir(bdir); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha, "-c", "--quiet", investigate.ManifestName)
		cmd.Dir = bdir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v %s", err, out)
		}
	}
	// readings.csv holds the site meter over the window plus the margin.
	rc, _ := os.ReadFile(filepath.Join(bdir, "readings.csv"))
	if n := bytes.Count(rc, []byte("\nMS,")); n != 192 {
		t.Errorf("readings.csv has %d MS rows, want 192", n)
	}
	reg, _ := os.ReadFile(filepath.Join(bdir, "registry.json"))
	if !bytes.Contains(reg, []byte(`"rig_id": "R1"`)) || !bytes.Contains(reg, []byte(`"license_id": "L1"`)) {
		t.Errorf("registry.json: %s", reg)
	}
	// One byte changed: verify names the file.
	p := filepath.Join(bdir, "readings.csv")
	rc[len(rc)/2] ^= 1
	os.WriteFile(p, rc, 0o644)
	err = investigate.VerifyDir(bdir)
	var ve *investigate.VerifyError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.HasPrefix(ve.Problems[0], "readings.csv:") {
		t.Fatalf("after a one-byte change: %v", err)
	}
	t.Logf("tampered bundle: %v", err)
	// Audit has the export.
	_, body := f.do(t, "GET", "/api/v1/audit?action="+url.QueryEscape("export evidence"), f.admin, "")
	if !strings.Contains(body, `\"id\":\"A2\"`) {
		t.Errorf("export not audited: %s", body)
	}
}

func TestAlertStream(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/v1/alerts/stream?severity=critical&access_token="+f.tokens["operator"], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for f.b.Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	as := fixtureAlerts()
	f.b.Publish(as) // one critical (A1), two not
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got = append(got, sc.Text())
			break
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], `"alert_id":"A1"`) {
		t.Errorf("stream: %v", got)
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("api/openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := 0
	for _, rt := range Routes() {
		ops, ok := doc.Paths[rt.Path]
		if !ok {
			t.Errorf("path %s is not in api/openapi.json", rt.Path)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.Method)]; !ok {
			t.Errorf("%s %s is not in api/openapi.json", rt.Method, rt.Path)
			continue
		}
		documented++
	}
	// And nothing documented that is not served.
	served := map[string]bool{}
	for _, rt := range Routes() {
		served[strings.ToLower(rt.Method)+" "+rt.Path] = true
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" && !served[m+" "+p] {
				t.Errorf("api/openapi.json documents %s %s, which is not served", m, p)
			}
		}
	}
	t.Logf("%d routes documented", documented)
}
