# rigwatch: two commands do all the set-up on a fresh machine:
#   make demo   run the main job on the embedded default
#   make test   the whole suite against a real ClickHouse and the embedded broker
GO      ?= go
BIN     := bin/rigwatch
PKGS    := ./...
# CI's fuzz budget is an execution count, not a duration: with a duration,
# Go's fuzz coordinator (go1.26, golang/go#75804, fixed in go1.27) can end
# a clean run with a bare "context deadline exceeded" when time runs out
# mid-exec. make fuzz runs each target for a set time and tells that race
# from a finding: a finding always writes its input under testdata/fuzz.
FUZZTIME ?= 20000x

.PHONY: soak all build demo test unit fuzz fuzz-short bench bench-national lint clickhouse clickhouse-client chromium alertmanager cluster-tools clean web-vendor

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rigwatch

# clickhouse makes sure a ClickHouse server binary is on PATH, installing
# Debian's package when running as root on a machine without it.
clickhouse:
	@if ! command -v clickhouse-server >/dev/null 2>&1 && ! command -v clickhouse >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing clickhouse-server (Debian package)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null; \
		else \
			echo "rigwatch needs clickhouse-server: apt-get install clickhouse-server (or set RIGWATCH_CLICKHOUSE_ADDR)" >&2; exit 1; \
		fi; \
	fi

# clickhouse-client is the reference loader make bench measures ingest
# against, installed in the same way.
clickhouse-client:
	@if ! command -v clickhouse-client >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing clickhouse-client (Debian package)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-client >/dev/null; \
		else \
			echo "make bench needs clickhouse-client: apt-get install clickhouse-client" >&2; exit 1; \
		fi; \
	fi

# chromium installs Debian's chromium for the browser tests in the same way.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ -z "$$RIGWATCH_CHROMIUM" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (Debian package) for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the browser tests need chromium: apt-get install chromium (or set RIGWATCH_CHROMIUM)" >&2; exit 1; \
		fi; \
	fi

# alertmanager installs Debian's prometheus-alertmanager for the tests of
# rigwatch's Alertmanager client (notify/, cmd/rigwatch), which run it on a
# loopback port of their own.
alertmanager:
	@if ! command -v prometheus-alertmanager >/dev/null 2>&1 && [ -z "$$RIGWATCH_ALERTMANAGER" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing prometheus-alertmanager (Debian package) for the Alertmanager tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; \
		else \
			echo "the Alertmanager tests need prometheus-alertmanager: apt-get install prometheus-alertmanager (or set RIGWATCH_ALERTMANAGER)" >&2; exit 1; \
		fi; \
	fi

# cluster-tools installs what the cluster and deployment tests need beyond
# ClickHouse: Debian's zookeeper (Java; the tests run it standalone on a
# loopback port beside four ClickHouse servers) and docker-compose (to check
# the compose files; no Docker engine is needed). Helm comes through go run.
cluster-tools:
	@missing=""; \
	{ [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; } || missing="$$missing zookeeper"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing (Debian packages) for the cluster and deployment tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "the cluster and deployment tests need:$$missing (apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi

demo: clickhouse build
	./$(BIN) demo

test: clickhouse chromium alertmanager cluster-tools
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz-short

# soak runs the reliability tests at full scale: 1,000,000 readings through
# eight SIGKILLs, the 14-day scenario's alerts through eight more, a 30 s
# ClickHouse outage, and bad input at volume.
soak: clickhouse cluster-tools
	RIGWATCH_SOAK=1 $(GO) test -count=1 -timeout 90m -v -run 'SIGKILL|Killed|Outage|BrokerRestart|SIGTERM|TwoConsumers|BadInput' ./cmd/rigwatch/ ./ingest/

unit:
	$(GO) test -count=1 -short $(PKGS)

# fuzz-short runs every fuzz target briefly (CI, a few seconds each); fuzz
# runs each for two minutes.
FUZZ_TARGETS := \
	./schemas:FuzzDecodeJSON \
	./schemas:FuzzScanReading \
	./schemas:FuzzCSVDecode \
	./schemas:FuzzFastReaders \
	./schemas:FuzzParseInteger \
	./ingest:FuzzSplitCSV \
	./ingest:FuzzReadingLine \
	./api:FuzzParseAlertFilter \
	./api:FuzzParseSince \
	./api:FuzzParseCalcInput
fuzz-short:
	@log=$$(mktemp) && trap 'rm -f "$$log"' EXIT && \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		if $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) >"$$log" 2>&1; then \
			tail -n 1 "$$log"; continue; \
		fi; \
		cat "$$log"; \
		if grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log"; then \
			echo "fuzz $$name: no failing input; the go1.26 -fuzztime deadline race (golang/go#75804), not a finding"; \
		else \
			exit 1; \
		fi; \
	done
fuzz:
	$(MAKE) fuzz-short FUZZTIME=2m

# bench first measures ingest side by side with ClickHouse's own CSV loader
# (three rounds, about four minutes; docs/performance.md), then the
# package benchmarks once each.
bench: clickhouse clickhouse-client
	$(GO) test -run '^$$' -bench SideBySide -benchtime 1x -timeout 30m ./cmd/rigwatch/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./registry/ ./store/ ./ingest/
	$(GO) test -run '^$$' -bench . -benchmem ./schemas/ ./sim/

# bench-national streams a national fleet (415,000 rigs, 1,000,000 meters,
# one day: 96M readings) through the broker, ingest, ClickHouse and live
# detection on this machine and reports its figures (not in CI: it takes
# the machine for the best part of an hour). NATIONAL_FEEDERS=2000 runs a
# tenth of it.
NATIONAL_FEEDERS ?= 20000
bench-national: clickhouse
	RIGWATCH_NATIONAL_FEEDERS=$(NATIONAL_FEEDERS) RIGWATCH_NATIONAL_OUT=$(CURDIR)/bench-national.json \
		$(GO) test -tags national -run '^TestNationalRun$$' -v -count=1 -timeout 4h ./cmd/rigwatch/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

clean:
	rm -rf bin .rigwatch

# web-vendor refreshes the charting library embedded in the web UI from the
# npm registry (build time only: nothing loads from the internet at run
# time). Bump UPLOT_VERSION, run it, look at the UI, commit web/static/vendor.
UPLOT_VERSION ?= 1.6.32
VENDOR_DIR    := web/static/vendor
web-vendor:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null && tar xzf uplot-$(UPLOT_VERSION).tgz) && \
	cp "$$tmp/package/dist/uPlot.iife.min.js" "$$tmp/package/dist/uPlot.min.css" $(VENDOR_DIR)/ && \
	cp "$$tmp/package/LICENSE" $(VENDOR_DIR)/uPlot.LICENSE && \
	sum=$$(sha256sum "$$tmp/uplot-$(UPLOT_VERSION).tgz" | cut -d' ' -f1) && \
	{ echo "# Third-party files vendored into the web UI. Refresh with: make web-vendor"; \
	  echo "# (npm pack of the pinned version; update UPLOT_VERSION in the Makefile)."; \
	  echo "uplot $(UPLOT_VERSION)  npm package uplot  MIT (uPlot.LICENSE)"; \
	  echo "  npm tarball sha256 $$sum"; \
	  echo "  dist/uPlot.iife.min.js -> uPlot.iife.min.js"; \
	  echo "  dist/uPlot.min.css     -> uPlot.min.css"; \
	  echo "  LICENSE                -> uPlot.LICENSE"; } > $(VENDOR_DIR)/VERSIONS && \
	echo "vendored uplot $(UPLOT_VERSION) into $(VENDOR_DIR)"
