# rigwatch: two commands do all the set-up on a fresh machine:
#   make demo   run the main job on the embedded default
#   make test   the whole suite against a real ClickHouse and the embedded broker
GO      ?= go
BIN     := bin/rigwatch
PKGS    := ./...
FUZZTIME ?= 5s

.PHONY: all build demo test unit fuzz fuzz-short bench lint clickhouse clean

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

demo: clickhouse build
	./$(BIN) demo

test: clickhouse
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz-short

unit:
	$(GO) test -count=1 -short $(PKGS)

# fuzz-short runs every fuzz target briefly (CI); fuzz runs them longer.
FUZZ_TARGETS := \
	./schemas:FuzzDecodeJSON \
	./schemas:FuzzCSVDecode \
	./ingest:FuzzSplitCSV \
	./api:FuzzParseAlertFilter \
	./api:FuzzParseSince \
	./api:FuzzParseCalcInput
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) || exit 1; \
	done
fuzz:
	$(MAKE) fuzz-short FUZZTIME=2m

bench: clickhouse
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./registry/ ./store/
	$(GO) test -run '^$$' -bench . -benchmem ./schemas/ ./ingest/ ./sim/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

clean:
	rm -rf bin .rigwatch
