package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/store"
)

// config is everything rigwatch can be told, from (in rising precedence) an
// optional YAML file, RIGWATCH_* environment variables and flags.
type config struct {
	ClickHouse         string        `yaml:"clickhouse"`
	ClickHouseCluster  string        `yaml:"clickhouse_cluster"`
	ClickHouseDB       string        `yaml:"clickhouse_database"`
	ClickHouseUser     string        `yaml:"clickhouse_user"`
	ClickHousePassword string        `yaml:"clickhouse_password"`
	Kafka              string        `yaml:"kafka"`
	KafkaGroup         string        `yaml:"kafka_group"`
	DataDir            string        `yaml:"data_dir"`
	HTTP               string        `yaml:"http"`
	LogLevel           string        `yaml:"log_level"`
	BatchSize          int           `yaml:"batch_size"`
	FlushInterval      time.Duration `yaml:"flush_interval"`
	MaxMessageBytes    int           `yaml:"max_message_bytes"`
	TariffKZTPerKWh    float64       `yaml:"tariff_kzt_per_kwh"`
	APIAdminToken      string        `yaml:"api_admin_token"`
	DetectEvery        time.Duration `yaml:"detect_every"`
	DetectLateness     time.Duration `yaml:"detect_lateness"`
	DetectStall        time.Duration `yaml:"detect_stall"`
	AlertWebhook       string        `yaml:"alert_webhook"`
	AlertmanagerURL    string        `yaml:"alertmanager_url"`
	AlertmanagerResend time.Duration `yaml:"alertmanager_resend"`
	ExternalURL        string        `yaml:"external_url"`

	ClickHouseTLS         bool   `yaml:"clickhouse_tls"`
	ClickHouseTLSCA       string `yaml:"clickhouse_tls_ca"`
	ClickHouseTLSInsecure bool   `yaml:"clickhouse_tls_insecure"`
	KafkaTLS              bool   `yaml:"kafka_tls"`
	KafkaTLSCA            string `yaml:"kafka_tls_ca"`
	KafkaTLSInsecure      bool   `yaml:"kafka_tls_insecure"`
	KafkaSASLMechanism    string `yaml:"kafka_sasl_mechanism"`
	KafkaSASLUser         string `yaml:"kafka_sasl_user"`
	KafkaSASLPassword     string `yaml:"kafka_sasl_password"`
}

func defaults() config {
	return config{
		ClickHouseDB:    "rigwatch",
		KafkaGroup:      "rigwatch",
		DataDir:         "./.rigwatch",
		HTTP:            "127.0.0.1:8080",
		LogLevel:        "", // the command's: see logLevelAnnotation
		BatchSize:       50_000,
		FlushInterval:   time.Second,
		MaxMessageBytes: 1 << 20,
		TariffKZTPerKWh: 25,
		DetectEvery:     5 * time.Second,
		DetectLateness:  15 * time.Minute,
		DetectStall:     5 * time.Minute,

		AlertmanagerResend: time.Minute,
	}
}

// setting ties a config field to its flag and environment variable; parse
// stores a textual value into the field.
type setting struct {
	flag, env, usage string
	def              string
	isBool           bool // takes no value on the command line: --flag means true
	parse            func(c *config, v string) error
}

func strSetting(flag, env, usage string, field func(*config) *string) setting {
	return setting{flag: flag, env: env, usage: usage, def: *field(ptrDefaults()),
		parse: func(c *config, v string) error { *field(c) = v; return nil }}
}

func intSetting(flag, env, usage string, field func(*config) *int) setting {
	return setting{flag: flag, env: env, usage: usage, def: strconv.Itoa(*field(ptrDefaults())),
		parse: func(c *config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*field(c) = n
			return nil
		}}
}

func durSetting(flag, env, usage string, field func(*config) *time.Duration) setting {
	return setting{flag: flag, env: env, usage: usage, def: field(ptrDefaults()).String(),
		parse: func(c *config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a duration like 500ms or 2s", v)
			}
			*field(c) = d
			return nil
		}}
}

func floatSetting(flag, env, usage string, field func(*config) *float64) setting {
	return setting{flag: flag, env: env, usage: usage, def: strconv.FormatFloat(*field(ptrDefaults()), 'g', -1, 64),
		parse: func(c *config, v string) error {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%q is not a number", v)
			}
			*field(c) = x
			return nil
		}}
}

func boolSetting(flag, env, usage string, field func(*config) *bool) setting {
	return setting{flag: flag, env: env, usage: usage, def: strconv.FormatBool(*field(ptrDefaults())), isBool: true,
		parse: func(c *config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*field(c) = b
			return nil
		}}
}

func ptrDefaults() *config { d := defaults(); return &d }

type globalFlags struct {
	configFile string
	verbose    int    // -v: info, -vv: debug
	cmdLevel   string // the running command's default log level; empty: warn
	settings   []setting
	flags      *pflag.FlagSet
}

// logLevelAnnotation names, on a command, the log level it runs at when
// none is asked for. Long-running commands (serve, demo) log at info;
// every other command is a tool a person runs for its output and shows
// only warnings and errors unless told -v or --log-level.
const logLevelAnnotation = "rigwatch/log-level"

func (g *globalFlags) register(root *cobra.Command) {
	g.settings = []setting{
		strSetting("clickhouse", "RIGWATCH_CLICKHOUSE_ADDR", "ClickHouse native address HOST:PORT, or several comma-separated with --clickhouse-cluster (unset: start a private server under the data dir)", func(c *config) *string { return &c.ClickHouse }),
		strSetting("clickhouse-cluster", "RIGWATCH_CLICKHOUSE_CLUSTER", "ClickHouse cluster (from the servers' remote_servers): Distributed tables over replicated shards, created ON CLUSTER", func(c *config) *string { return &c.ClickHouseCluster }),
		strSetting("clickhouse-database", "RIGWATCH_CLICKHOUSE_DATABASE", "ClickHouse database", func(c *config) *string { return &c.ClickHouseDB }),
		strSetting("clickhouse-user", "RIGWATCH_CLICKHOUSE_USER", "ClickHouse user", func(c *config) *string { return &c.ClickHouseUser }),
		strSetting("clickhouse-password", "RIGWATCH_CLICKHOUSE_PASSWORD", "ClickHouse password (prefer the environment variable)", func(c *config) *string { return &c.ClickHousePassword }),
		strSetting("kafka", "RIGWATCH_KAFKA_BROKERS", "Kafka brokers, comma-separated (unset: the embedded broker)", func(c *config) *string { return &c.Kafka }),
		strSetting("kafka-group", "RIGWATCH_KAFKA_GROUP", "consumer group prefix; each input topic gets PREFIX.STREAM", func(c *config) *string { return &c.KafkaGroup }),
		strSetting("data-dir", "RIGWATCH_DATA_DIR", "directory for the embedded broker and private ClickHouse", func(c *config) *string { return &c.DataDir }),
		strSetting("log-level", "RIGWATCH_LOG_LEVEL", "debug, info, warn or error (default: info for serve and demo, warn for the rest)", func(c *config) *string { return &c.LogLevel }),
		intSetting("batch-size", "RIGWATCH_BATCH_SIZE", "records per ClickHouse insert", func(c *config) *int { return &c.BatchSize }),
		durSetting("flush-interval", "RIGWATCH_FLUSH_INTERVAL", "flush a partial batch this often", func(c *config) *time.Duration { return &c.FlushInterval }),
		intSetting("max-message-bytes", "RIGWATCH_MAX_MESSAGE_BYTES", "largest accepted message or replay line", func(c *config) *int { return &c.MaxMessageBytes }),
		strSetting("api-token", "RIGWATCH_API_TOKEN", "static admin API token, to bootstrap real tokens (prefer the environment variable)", func(c *config) *string { return &c.APIAdminToken }),
		floatSetting("tariff-kzt-per-kwh", "RIGWATCH_TARIFF_KZT_PER_KWH", "KZT per kWh to value stolen or excess energy", func(c *config) *float64 { return &c.TariffKZTPerKWh }),
		durSetting("detect-every", "RIGWATCH_DETECT_EVERY", "how often serve evaluates the rules", func(c *config) *time.Duration { return &c.DetectEvery }),
		durSetting("detect-lateness", "RIGWATCH_DETECT_LATENESS", "how long to wait for late readings before evaluating an hour", func(c *config) *time.Duration { return &c.DetectLateness }),
		durSetting("detect-stall", "RIGWATCH_DETECT_STALL", "/readyz fails once live detection has failed, or made no progress, for this long", func(c *config) *time.Duration { return &c.DetectStall }),
		strSetting("alert-webhook", "RIGWATCH_ALERT_WEBHOOK", "webhook URL posted new critical alerts in Alertmanager's receiver format (unset: none)", func(c *config) *string { return &c.AlertWebhook }),
		strSetting("alertmanager", "RIGWATCH_ALERTMANAGER_URL", "Alertmanager base URL, or several comma-separated (an HA group), pushed every alert at /api/v2/alerts by serve and demo (unset: none)", func(c *config) *string { return &c.AlertmanagerURL }),
		durSetting("alertmanager-resend", "RIGWATCH_ALERTMANAGER_RESEND", "how often firing alerts are re-sent to Alertmanager", func(c *config) *time.Duration { return &c.AlertmanagerResend }),
		strSetting("external-url", "RIGWATCH_EXTERNAL_URL", "the web UI's URL as people reach it, for the links in notifications (default: http:// and the HTTP address)", func(c *config) *string { return &c.ExternalURL }),
		boolSetting("clickhouse-tls", "RIGWATCH_CLICKHOUSE_TLS", "connect to ClickHouse over TLS", func(c *config) *bool { return &c.ClickHouseTLS }),
		strSetting("clickhouse-tls-ca", "RIGWATCH_CLICKHOUSE_TLS_CA", "PEM file of the CA to trust for ClickHouse", func(c *config) *string { return &c.ClickHouseTLSCA }),
		boolSetting("clickhouse-tls-insecure", "RIGWATCH_CLICKHOUSE_TLS_INSECURE", "skip ClickHouse certificate verification (testing only)", func(c *config) *bool { return &c.ClickHouseTLSInsecure }),
		boolSetting("kafka-tls", "RIGWATCH_KAFKA_TLS", "connect to Kafka over TLS", func(c *config) *bool { return &c.KafkaTLS }),
		strSetting("kafka-tls-ca", "RIGWATCH_KAFKA_TLS_CA", "PEM file of the CA to trust for Kafka", func(c *config) *string { return &c.KafkaTLSCA }),
		boolSetting("kafka-tls-insecure", "RIGWATCH_KAFKA_TLS_INSECURE", "skip Kafka certificate verification (testing only)", func(c *config) *bool { return &c.KafkaTLSInsecure }),
		strSetting("kafka-sasl-mechanism", "RIGWATCH_KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", func(c *config) *string { return &c.KafkaSASLMechanism }),
		strSetting("kafka-sasl-user", "RIGWATCH_KAFKA_SASL_USER", "Kafka SASL user", func(c *config) *string { return &c.KafkaSASLUser }),
		strSetting("kafka-sasl-password", "RIGWATCH_KAFKA_SASL_PASSWORD", "Kafka SASL password (prefer the environment variable)", func(c *config) *string { return &c.KafkaSASLPassword }),
	}
	f := root.PersistentFlags()
	f.StringVar(&g.configFile, "config", "", "YAML config file (env RIGWATCH_CONFIG)")
	f.CountVarP(&g.verbose, "verbose", "v", "log more: -v info, -vv debug (the same as --log-level info or debug)")
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		g.cmdLevel = cmd.Annotations[logLevelAnnotation]
	}
	for _, s := range g.settings {
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		if s.isBool {
			def, _ := strconv.ParseBool(s.def)
			f.Bool(s.flag, def, usage)
			continue
		}
		f.String(s.flag, s.def, usage)
	}
	g.flags = f
}

// resolve builds the config: defaults, then the YAML file, then the
// environment, then the flags the user set.
func (g *globalFlags) resolve() (config, error) {
	cfg := defaults()
	path := g.configFile
	if path == "" {
		path = os.Getenv("RIGWATCH_CONFIG")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, usagef("cannot read config file: %v", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, usagef("config file %s: %s", path, firstLine(err.Error()))
		}
	}
	for _, s := range g.settings {
		if v, ok := os.LookupEnv(s.env); ok {
			if err := s.parse(&cfg, v); err != nil {
				return cfg, usagef("%s: %v", s.env, err)
			}
		}
	}
	for _, s := range g.settings {
		if f := g.flags.Lookup(s.flag); f != nil && f.Changed {
			if err := s.parse(&cfg, f.Value.String()); err != nil {
				return cfg, usagef("--%s: %v", s.flag, err)
			}
		}
	}
	if g.verbose > 0 {
		if f := g.flags.Lookup("log-level"); f != nil && f.Changed {
			return cfg, usagef("-v and --log-level both set the log level: give one")
		}
		cfg.LogLevel = "info"
		if g.verbose > 1 {
			cfg.LogLevel = "debug"
		}
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = g.cmdLevel
		if cfg.LogLevel == "" {
			cfg.LogLevel = "warn"
		}
	}
	if cfg.BatchSize <= 0 {
		return cfg, usagef("--batch-size must be > 0")
	}
	if cfg.MaxMessageBytes <= 0 {
		return cfg, usagef("--max-message-bytes must be > 0")
	}
	if cfg.TariffKZTPerKWh < 0 {
		return cfg, usagef("--tariff-kzt-per-kwh must be >= 0")
	}
	if cfg.DetectEvery <= 0 || cfg.DetectLateness < 0 || cfg.DetectStall <= 0 {
		return cfg, usagef("--detect-every and --detect-stall must be > 0 and --detect-lateness >= 0")
	}
	if cfg.FlushInterval <= 0 {
		return cfg, usagef("--flush-interval must be > 0")
	}
	if cfg.AlertmanagerResend <= 0 {
		return cfg, usagef("--alertmanager-resend must be > 0")
	}
	if cfg.AlertmanagerURL != "" {
		if _, err := notify.ParseAlertmanagerURLs(cfg.AlertmanagerURL); err != nil {
			return cfg, usagef("--alertmanager: %v", err)
		}
	}
	if err := checkClickHouse(cfg); err != nil {
		return cfg, err
	}
	if _, err := zapcore.ParseLevel(cfg.LogLevel); err != nil {
		return cfg, usagef("--log-level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	return cfg, nil
}

// checkClickHouse checks the ClickHouse address list and cluster name.
func checkClickHouse(cfg config) error {
	if cfg.ClickHouseCluster != "" && cfg.ClickHouse == "" {
		return usagef("--clickhouse-cluster %s needs the cluster's servers in --clickhouse", cfg.ClickHouseCluster)
	}
	sc := store.Config{Addr: cfg.ClickHouse, Cluster: cfg.ClickHouseCluster, Database: cfg.ClickHouseDB}
	if cfg.ClickHouse == "" {
		return nil
	}
	if err := sc.Validate(); err != nil {
		return usagef("--clickhouse: %v", err)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// newLogger logs to stderr: readable on a terminal, JSON otherwise.
func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	zc.DisableStacktrace = true
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	if term.IsTerminal(int(os.Stderr.Fd())) {
		zc.Encoding = "console"
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	return zc.Build()
}
