# Everyday commands. `make up` brings up the stack and every service that is
# built; `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BIN := bin
# The long-running services `make up` starts.
SERVICES ?= sequencer fanout history ingest gateway
# Development defaults for `make up`; set your own outside development.
export SEQCHAT_SERVICE_TOKEN ?= dev-service-token-change-me
export SEQCHAT_TOKEN_KEY ?= dev-token-key-change-me-0123456789abcdef
export SEQCHAT_GATEWAY_ID ?= gw-1
export SEQCHAT_DEMO ?= true

.PHONY: all build demo-sdk docs-check env test vet unit fuzz generate bench bench-connections bench-sequencer bench-history bench-delivery chaos chaos-cluster up down stack-up stack-down stack-status stack-clean services-up services-down centrifugo-up centrifugo-down clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

stack-up:
	scripts/stack.sh up

stack-down:
	scripts/stack.sh down

stack-status:
	scripts/stack.sh status

stack-clean:
	scripts/stack.sh clean

## up: the stack, topics and tables, then every built service in the background.
up: stack-up build
	$(BIN)/imctl init -log-format text
	scripts/services.sh up $(SERVICES)
	@scripts/services.sh where

## docs-check: every shell example of README.md and docs/ run as a reader
## pastes it, against the system `make up` starts (CI runs it after make test).
docs-check: up
	scripts/docs-examples.sh

## env: the development settings as shell exports, for the docs' examples:
## eval "$$(make -s env)"
env:
	@echo "export SEQCHAT_SERVICE_TOKEN='$(SEQCHAT_SERVICE_TOKEN)' SEQCHAT_TOKEN_KEY='$(SEQCHAT_TOKEN_KEY)'"

## down: services, then the stack (and Centrifugo, if the bench started it).
down: services-down centrifugo-down stack-down

services-up: build
	scripts/services.sh up $(SERVICES)

services-down:
	scripts/services.sh down

## centrifugo-up: the benchmark's peer (pinned, installed with go install on first use).
centrifugo-up:
	scripts/centrifugo.sh up

centrifugo-down:
	scripts/centrifugo.sh down

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## test: everything, against the real broker and ClickHouse (started if needed).
## chdb (a current ClickHouse, in process) is installed once for the query pack's test.
## NORACE runs without the race detector: killing a cluster's leader broker
## trips a data race inside sarama itself (transactionManager.lastError,
## written under statusLock by a retry goroutine, read without it by
## publishTxnPartitions: github.com/IBM/sarama/issues/2913, unfixed in
## v1.61.1). The same code paths run under -race in the single-broker tests.
NORACE = TestBrokerFaultsOnACluster|TestSequencerPartitionOnACluster|TestGatewayPartitionOnACluster
test: stack-up centrifugo-up vet
	python=$$(scripts/chdb.sh install) && SEQCHAT_TEST_CHDB_PYTHON=$$python scripts/gotest.sh -race -count=1 -tags failover -skip '^($(NORACE))$$' ./...
	SEQCHAT_TEST_LOG=.stack/test-norace.log scripts/gotest.sh -count=1 -tags failover -run '^($(NORACE))$$' ./tools/loadgen/

## unit: the tests that need no server (fast feedback while editing).
unit:
	$(GO) test -race -count=1 -short ./...

## fuzz: each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./schemas/imv1/ -run '^$$' -fuzz FuzzUnmarshal -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/ingest/ -run '^$$' -fuzz FuzzValidate -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/ingest/ -run '^$$' -fuzz FuzzHTTPRequests -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/history/ -run '^$$' -fuzz FuzzParseReadRequest -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/history/ -run '^$$' -fuzz FuzzRowOf -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/gateway/ -run '^$$' -fuzz FuzzDecodeClientFrame -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/gateway/ -run '^$$' -fuzz FuzzFastDecodeAgreesWithSchema -fuzztime $(FUZZTIME)
	$(GO) test ./internal/auth/ -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME)
	$(GO) test ./pipeline/sequencer/ -run '^$$' -fuzz FuzzMachine -fuzztime $(FUZZTIME)

## demo-sdk: the SDK compiled for the demo page the gateway embeds
## (pipeline/gateway/demo/sdk, committed; a test checks it is current).
demo-sdk:
	cd sdk/js && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && rm -rf ../../pipeline/gateway/demo/sdk && npx tsc -p tsconfig.demo.json

## generate: Go code from schemas/imv1/*.proto (protoc from Debian, protoc-gen-go pinned in go.mod).
generate:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --go_out=. --go_opt=paths=source_relative schemas/imv1/*.proto

clean:
	rm -rf $(BIN)

## bench: raw broker, sequencer alone, the pipeline at several loads and the
## peer (Centrifugo) in one run; writes its section of docs/benchmarks.md.
## Restarts `make up`'s services so that they run the code just built.
## Tune with BENCH_FLAGS, e.g. BENCH_FLAGS='-rates 500,1000 -duration 10s'.
BENCH_FLAGS ?=
bench: services-down up centrifugo-up
	$(BIN)/bench $(BENCH_FLAGS)

## bench-connections: idle connections on one gateway in steps up to the
## open-file limit (memory, goroutines, fds, idle CPU, hellos/s, a broadcast
## to a 1,000-member group), a resume burst of 10,000 devices with nothing
## new, then a reconnect storm of 10,000 devices from a killed gateway to
## another. CONNBENCH_FLAGS tunes it (cmd/connbench -h).
bench-connections: services-down up
	set -o pipefail; $(BIN)/connbench $(CONNBENCH_FLAGS) | tee .stack/connbench.md

## bench-sequencer: raw produce rate vs sequenced rate, same records, same run.
bench-sequencer: stack-up
	$(GO) run ./cmd/seqbench -records 100000 -partitions 1,8 -batch-max-records 1000,5000

## bench-history: sink rows/s into ClickHouse; read API p50/p99 on 1M rows.
bench-history: stack-up
	$(GO) test -run '^$$' -bench BenchmarkSink -benchtime=1x -v -timeout 20m ./pipeline/history/ -history.sink-rows=1000000
	$(GO) test -run '^$$' -bench BenchmarkReadAPI -benchtime=1x -v -timeout 20m ./pipeline/history/

## bench-delivery: send -> receive latency and deliveries/s through the whole pipeline.
bench-delivery: stack-up
	$(GO) test -tags failover -run '^$$' -bench BenchmarkDelivery -benchtime 1x ./pipeline/gateway/

## chaos: steady load while every service is killed (SIGKILL) and restarted
## 20 times and the broker restarted once; then every message is checked at
## every client and in ClickHouse. Stops `make up`'s services first (same
## consumer groups). Tune with CHAOS_FLAGS, e.g. CHAOS_FLAGS='-kills 5 -messages 10000'.
CHAOS_FLAGS ?=
chaos: stack-up build services-down
	$(BIN)/imctl init -log-format text
	$(BIN)/chaos $(CHAOS_FLAGS)

## chaos-cluster: make chaos on a 3-node Kafka cluster (its own stack in
## .stack-cluster; replication factor 3), with the busiest broker and the active
## controller killed, a broker paused, and a sequencer and a gateway cut off
## the network for 20 s (each in a network namespace on the bridge
## CLUSTER_BRIDGE, which holds the brokers' address CLUSTER_HOST; root, iproute2);
## 250 sends/s: three brokers on the 2-core reference machine keep up with less.
CLUSTER_HOST ?= 10.213.1.1
CLUSTER_BRIDGE ?= sc-chaos
chaos-cluster:
	$(MAKE) down
	SEQCHAT_STACK_DIR=$(CURDIR)/.stack-cluster SEQCHAT_KAFKA_NODES=3 SEQCHAT_REPLICATION_FACTOR=3 \
	SEQCHAT_KAFKA_HOST=$(CLUSTER_HOST) SEQCHAT_KAFKA_BRIDGE=$(CLUSTER_BRIDGE) \
	SEQCHAT_KAFKA_BROKERS=$(CLUSTER_HOST):9092,$(CLUSTER_HOST):9094,$(CLUSTER_HOST):9096 \
	$(MAKE) chaos CHAOS_FLAGS="-log-dir .stack-cluster/chaos -rate 250 -bridge $(CLUSTER_BRIDGE) $(CHAOS_FLAGS)"
