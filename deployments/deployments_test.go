// Package deployments holds no code: its tests check the deployment files
// beside them. Each compose file must pass `docker-compose config` (Debian's
// docker-compose), the Helm chart `helm lint` and `helm template` (helm
// v3.22.0 through go run), their ClickHouse, Keeper, Prometheus and
// Alertmanager files must parse, the parts must name each other
// consistently, and every RIGWATCH_* variable they set must be one rigwatch
// reads.
package deployments

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// composeEnv fills the variables the compose files require.
var composeEnv = []string{"RIGWATCH_CLICKHOUSE_PASSWORD=test-password", "RIGWATCH_API_TOKEN=rwt_test", "GRAFANA_ADMIN_PASSWORD=test"}

func command(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
		}
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		t.Fatalf("%s %s: no answer in %s", name, strings.Join(args, " "), timeout)
	}
	return out.String()
}

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []any             `yaml:"volumes"`
		Command     any               `yaml:"command"`
	} `yaml:"services"`
}

// composeConfig runs docker-compose config on file and returns the result.
func composeConfig(t *testing.T, file string) compose {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose not found: apt-get install docker-compose (make cluster-tools)")
	}
	out := command(t, time.Minute, composeEnv, "docker-compose", "-f", file, "config")
	var c compose
	if err := yaml.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("docker-compose config of %s: %v", file, err)
	}
	return c
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// rigwatch builds the rigwatch binary once per test run.
func rigwatch(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rigwatch-deploy-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rigwatch")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/rigwatch").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("cannot build rigwatch: %v", binErr)
	}
	return binPath
}

// checkConfigFile has rigwatch read a config file: it refuses an unknown
// key or a wrong type in one line naming the file, before anything else.
// The --batch-size 0 makes it stop, with a usage error of its own, right
// after it has read the file.
func checkConfigFile(t *testing.T, file string) {
	t.Helper()
	cmd := exec.Command(rigwatch(t), "migrate", "--config", file, "--batch-size", "0")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "--batch-size must be > 0") {
		t.Errorf("rigwatch does not accept %s: %s", file, out)
	}
}

// knownEnv returns the RIGWATCH_* variables rigwatch serve reads, from its
// help.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	out := command(t, 3*time.Minute, nil, rigwatch(t), "serve", "--help")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`RIGWATCH_[A-Z_]+`).FindAllString(out, -1) {
		known[m] = true
	}
	if !known["RIGWATCH_CLICKHOUSE_CLUSTER"] || !known["RIGWATCH_KAFKA_BROKERS"] {
		t.Fatalf("rigwatch serve --help names no RIGWATCH_CLICKHOUSE_CLUSTER or RIGWATCH_KAFKA_BROKERS:\n%s", out)
	}
	return known
}

func checkEnv(t *testing.T, known map[string]bool, where string, env map[string]string) {
	t.Helper()
	for k := range env {
		if strings.HasPrefix(k, "RIGWATCH_") && !known[k] {
			t.Errorf("%s sets %s, which rigwatch does not read", where, k)
		}
	}
}

func TestComposeFiles(t *testing.T) {
	files, _ := filepath.Glob("docker-compose*.yml")
	if len(files) < 2 {
		t.Fatalf("compose files: %v, want the single-node and the cluster one", files)
	}
	known := knownEnv(t)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			c := composeConfig(t, f)
			for name, s := range c.Services {
				checkEnv(t, known, f+" service "+name, s.Environment)
				for _, v := range s.Volumes {
					// Bind mounts of our files must exist (named volumes
					// have no path).
					src := ""
					switch v := v.(type) {
					case string:
						src, _, _ = strings.Cut(v, ":")
					case map[string]any:
						if v["type"] == "bind" {
							src, _ = v["source"].(string)
						}
					}
					if filepath.IsAbs(src) {
						if _, err := os.Stat(src); err != nil {
							t.Errorf("service %s mounts %s: %v", name, src, err)
						}
					}
				}
			}
		})
	}
}

// TestClusterCompose checks that the parts of the cluster compose file
// agree: three KRaft voters that are the brokers rigwatch uses, the
// ClickHouse servers of remote_servers with their macros, rigwatch given
// every server and the cluster's name, Prometheus scraping every rigwatch.
func TestClusterCompose(t *testing.T) {
	c := composeConfig(t, "docker-compose.cluster.yml")
	services := func(prefix string) []string {
		var out []string
		for name := range c.Services {
			if strings.HasPrefix(name, prefix) {
				out = append(out, name)
			}
		}
		sort.Strings(out)
		return out
	}
	brokers, chs, keepers, rigwatches := services("kafka-"), services("ch-"), services("keeper-"), services("rigwatch-")
	brokers = slices.DeleteFunc(brokers, func(s string) bool { return s == "kafka-topics" })
	if len(brokers) != 3 || len(chs) != 4 || len(keepers) != 3 || len(rigwatches) < 2 {
		t.Fatalf("brokers %v, ClickHouse %v, Keeper %v, rigwatch %v: want 3, 4, 3, 2+", brokers, chs, keepers, rigwatches)
	}
	for _, s := range []string{"prometheus", "grafana", "alertmanager"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("no %s service", s)
		}
	}
	for _, b := range brokers {
		env := c.Services[b].Environment
		if env["KAFKA_PROCESS_ROLES"] != "broker,controller" || strings.Count(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], "@") != 3 {
			t.Errorf("%s is not one of three KRaft voters: %v", b, env)
		}
	}

	var cfg struct {
		Macros struct {
			Shard struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"shard"`
			Replica struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"replica"`
		} `xml:"macros"`
		ZooKeeper []struct {
			Host string `xml:"host"`
		} `xml:"zookeeper>node"`
		Shards []struct {
			Internal bool `xml:"internal_replication"`
			Replicas []struct {
				Host string `xml:"host"`
				Port int    `xml:"port"`
			} `xml:"replica"`
		} `xml:"remote_servers>rigwatch>shard"`
	}
	readXML(t, "cluster/clickhouse/cluster.xml", &cfg)
	var listed []string
	for _, sh := range cfg.Shards {
		if !sh.Internal {
			t.Error("a shard without internal_replication: a Distributed INSERT would write every replica itself")
		}
		for _, r := range sh.Replicas {
			listed = append(listed, r.Host)
		}
	}
	sort.Strings(listed)
	if fmt.Sprint(listed) != fmt.Sprint(chs) || len(cfg.Shards) != 2 {
		t.Errorf("remote_servers lists %v in %d shards; the compose file runs %v", listed, len(cfg.Shards), chs)
	}
	if len(cfg.ZooKeeper) != len(keepers) {
		t.Errorf("ClickHouse knows %d Keeper nodes, the compose file runs %v", len(cfg.ZooKeeper), keepers)
	}
	macros := map[string]bool{}
	for _, name := range chs {
		env := c.Services[name].Environment
		m := env[cfg.Macros.Shard.FromEnv] + "/" + env[cfg.Macros.Replica.FromEnv]
		if env[cfg.Macros.Shard.FromEnv] == "" || env[cfg.Macros.Replica.FromEnv] == "" || macros[m] {
			t.Errorf("%s: macros %s missing or repeated", name, m)
		}
		macros[m] = true
	}
	var users struct {
		LoadBalancing string `xml:"profiles>rigwatch>load_balancing"`
	}
	readXML(t, "cluster/clickhouse/users.xml", &users)
	if users.LoadBalancing != "in_order" {
		t.Errorf("the rigwatch profile's load_balancing is %q: cluster mode refuses anything but in_order", users.LoadBalancing)
	}
	var keeper struct {
		Servers []struct {
			Host string `xml:"hostname"`
		} `xml:"keeper_server>raft_configuration>server"`
	}
	readXML(t, "cluster/keeper/keeper.xml", &keeper)
	if len(keeper.Servers) != len(keepers) {
		t.Errorf("the Keeper raft configuration names %d servers, the compose file runs %v", len(keeper.Servers), keepers)
	}

	for _, r := range rigwatches {
		env := c.Services[r].Environment
		addrs := strings.Split(env["RIGWATCH_CLICKHOUSE_ADDR"], ",")
		for i := range addrs {
			addrs[i], _, _ = strings.Cut(addrs[i], ":")
		}
		sort.Strings(addrs)
		if fmt.Sprint(addrs) != fmt.Sprint(chs) || env["RIGWATCH_CLICKHOUSE_CLUSTER"] != "rigwatch" {
			t.Errorf("%s: RIGWATCH_CLICKHOUSE_ADDR %q, cluster %q; want every server of %v and the cluster rigwatch", r, env["RIGWATCH_CLICKHOUSE_ADDR"], env["RIGWATCH_CLICKHOUSE_CLUSTER"], chs)
		}
		if n := strings.Count(env["RIGWATCH_KAFKA_BROKERS"], ",") + 1; n != len(brokers) {
			t.Errorf("%s knows %d brokers, want %d", r, n, len(brokers))
		}
		if env["RIGWATCH_ALERTMANAGER_URL"] == "" {
			t.Errorf("%s does not push alerts to Alertmanager", r)
		}
	}

	var prom struct {
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Managers []struct {
				Static []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		Scrapes []struct {
			Job    string `yaml:"job_name"`
			Static []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "cluster/prometheus/prometheus.yml", &prom)
	var targets []string
	for _, s := range prom.Scrapes {
		if s.Job == "rigwatch" {
			for _, st := range s.Static {
				for _, tg := range st.Targets {
					host, _, _ := strings.Cut(tg, ":")
					targets = append(targets, host)
				}
			}
		}
	}
	sort.Strings(targets)
	if fmt.Sprint(targets) != fmt.Sprint(rigwatches) {
		t.Errorf("Prometheus scrapes %v, the compose file runs %v", targets, rigwatches)
	}
	if len(prom.Alerting.Managers) == 0 {
		t.Error("Prometheus sends its alerts nowhere")
	}
	for _, f := range prom.RuleFiles {
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		readYAML(t, filepath.Join("cluster/prometheus", f), &rules)
		if len(rules.Groups) == 0 {
			t.Errorf("rule file %s holds no rules", f)
		}
	}
	var am struct {
		Route struct {
			Receiver string `yaml:"receiver"`
		} `yaml:"route"`
		Receivers []struct {
			Name string `yaml:"name"`
		} `yaml:"receivers"`
	}
	readYAML(t, "cluster/alertmanager/alertmanager.yml", &am)
	if am.Route.Receiver == "" || len(am.Receivers) == 0 {
		t.Errorf("Alertmanager routes to nobody: %+v", am)
	}
	for _, f := range []string{"cluster/grafana/datasources/prometheus.yml", "cluster/grafana/dashboards/rigwatch.yml"} {
		var v map[string]any
		readYAML(t, f, &v)
	}
}

func readXML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed to the end, not only the parts v names.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// helm runs helm v3.22.0 through go run: the first run builds it (a few
// minutes on two cores), later runs take it from the build cache.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	return command(t, 15*time.Minute, nil, "go", append([]string{"run", "helm.sh/helm/v3/cmd/helm@v3.22.0"}, args...)...)
}

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas       int `yaml:"replicas"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Template       struct {
			Spec struct {
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					EnvFrom []struct {
						SecretRef struct {
							Name string `yaml:"name"`
						} `yaml:"secretRef"`
					} `yaml:"envFrom"`
					Readiness struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
					Liveness struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"livenessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	StringData map[string]string `yaml:"stringData"`
}

// TestHelmChart lints the chart and renders it with its default values and
// with the cluster values: a Deployment ready on /readyz and alive on
// /healthz, configured from a ConfigMap and a Secret, a
// PodDisruptionBudget, and in cluster mode every ClickHouse server and the
// cluster's name.
func TestHelmChart(t *testing.T) {
	const chart = "helm/rigwatch"
	known := knownEnv(t)
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"default values", nil},
		{"cluster values", []string{"-f", chart + "/values-cluster.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			helm(t, append([]string{"lint", "--strict", chart}, tc.values...)...)
			out := helm(t, append([]string{"template", "rw", chart, "--set", "secret.clickhousePassword=pw,secret.apiToken=rwt_x"}, tc.values...)...)
			byKind := map[string]manifest{}
			dec := yaml.NewDecoder(strings.NewReader(out))
			for {
				var m manifest
				if err := dec.Decode(&m); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("helm template output: %v\n%s", err, out)
				}
				if m.Kind != "" {
					byKind[m.Kind] = m
				}
			}
			for _, k := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Job"} {
				if _, ok := byKind[k]; !ok {
					t.Errorf("no %s rendered", k)
				}
			}
			d := byKind["Deployment"]
			if len(d.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("deployment containers: %+v", d.Spec.Template.Spec.Containers)
			}
			ct := d.Spec.Template.Spec.Containers[0]
			if ct.Readiness.HTTPGet.Path != "/readyz" || ct.Liveness.HTTPGet.Path != "/healthz" {
				t.Errorf("probes: readiness %q, liveness %q; want /readyz and /healthz", ct.Readiness.HTTPGet.Path, ct.Liveness.HTTPGet.Path)
			}
			if len(ct.EnvFrom) != 1 || ct.EnvFrom[0].SecretRef.Name != byKind["Secret"].Metadata.Name {
				t.Errorf("the container does not take its secrets from the Secret: %+v", ct.EnvFrom)
			}
			if !slices.Contains(ct.Args, "--config") {
				t.Errorf("the container does not read the ConfigMap's file: %v", ct.Args)
			}
			env := map[string]string{}
			for _, e := range ct.Env {
				env[e.Name] = e.Value
			}
			for k := range byKind["Secret"].StringData {
				env[k] = "secret"
			}
			checkEnv(t, known, "the chart", env)
			// The runtime's soft limit sits under the container's.
			if lim, err := memBytes(env["GOMEMLIMIT"]); err != nil || lim <= 0 || lim >= 4<<30 {
				t.Errorf("the chart sets GOMEMLIMIT %q (%v): want one under the container's 4Gi", env["GOMEMLIMIT"], err)
			}
			file := filepath.Join(t.TempDir(), "rigwatch.yaml")
			if err := os.WriteFile(file, []byte(byKind["ConfigMap"].Data["rigwatch.yaml"]), 0o644); err != nil {
				t.Fatal(err)
			}
			checkConfigFile(t, file)
			var cfg map[string]any
			readYAML(t, file, &cfg)
			for _, k := range []string{"kafka", "clickhouse"} {
				if cfg[k] == nil {
					t.Errorf("rigwatch.yaml has no %s", k)
				}
			}
			if tc.values != nil {
				if cfg["clickhouse_cluster"] != "rigwatch" || strings.Count(fmt.Sprint(cfg["clickhouse"]), ",") != 3 || d.Spec.Replicas < 2 {
					t.Errorf("cluster values: clickhouse %v, cluster %v, %d replicas", cfg["clickhouse"], cfg["clickhouse_cluster"], d.Spec.Replicas)
				}
			}
		})
	}
}

// TestExampleConfig has rigwatch read the example configuration file.
func TestExampleConfig(t *testing.T) {
	checkConfigFile(t, "rigwatch.example.yaml")
}

// memBytes reads a GOMEMLIMIT value: a number of bytes with an optional
// B, KiB, MiB, GiB or TiB suffix.
func memBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err
}
