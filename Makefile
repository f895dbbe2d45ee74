# ringmq build. Plain `go build ./...` and `go test ./...` work as well;
# giouring comes from the patched copy in third_party/giouring.

GO      ?= go
BIN     := bin/ringmq
PKGS    := ./...

.PHONY: all build run cluster test test-shutdown vet fmt-check fuzz-seeds bench clean partitions-10k chaos chaos-failover

all: build

build:
	$(GO) build -o $(BIN) .

# make run ARGS='--listen 127.0.0.1:9500 --metrics-listen 127.0.0.1:9501 --data-dir /tmp/rq'
# passes ARGS to ringmq serve; CONFIG names another configuration file.
CONFIG  ?= config.toml
ARGS    ?=

run: build
	$(BIN) serve --config $(CONFIG) $(ARGS)

# make cluster: three nodes of one cluster in the foreground, with the
# configs of examples/cluster (clients on 127.0.0.1:9400, 9410, 9420,
# metrics on 9401, 9411, 9421, data under ./data/node1..3). Ctrl-C reaches
# all three, which shut down cleanly; make returns once they have. Killing
# make (SIGTERM) stops them too.
CLUSTER_NODES := 1 2 3

cluster: build
	@mkdir -p $(foreach n,$(CLUSTER_NODES),data/node$(n))
	@pids=""; \
	trap 'kill -TERM $$pids 2>/dev/null; wait' TERM; \
	trap 'wait' INT; \
	for n in $(CLUSTER_NODES); do \
		$(BIN) serve --config examples/cluster/node$$n.toml & pids="$$pids $$!"; \
	done; \
	wait

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# make test: formatting, vet, the race detector on the packages that allow
# it, and the slower end-to-end tests (which build and run the real binary)
# without it.
test: fmt-check vet build
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# 10,000 partitions (2,500 topics × 4) on one server: create time,
# descriptors, mappings, RSS and restart time, logged by the test. Takes
# minutes; make test runs the 1,000-partition check (reactor
# TestDescriptorsPerPartition) instead.
partitions-10k:
	RINGMQ_PARTITION_TOPICS=2500 $(GO) test -count=1 -timeout 60m -run TestManyPartitions -v ./e2e/

# SIGTERM under load, 20 trials (make test runs 3); prints the distribution
# of shutdown times.
test-shutdown:
	RINGMQ_SHUTDOWN_TRIALS=20 $(GO) test -count=1 -v -run TestSigtermUnderLoad ./e2e/

# make chaos: the fault-injection harness (e2e/chaos; DESIGN.md §17.1)
# for CHAOS_DURATION (5 minutes) with every fault kind; CHAOS_SEED=N
# replays a schedule; it ends with one summary line ("chaos: ... acked, 0
# lost, ..."). Needs root and /dev/fuse. make test runs a 40 s version.
CHAOS_DURATION ?= 5m
CHAOS_SEED     ?=

chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -v -timeout 60m -run '^TestChaos$$' ./e2e/chaos/

# make chaos-failover: kill -9 the leader of a 3-replica partition 20
# times under acks=all produce; prints the distribution of the time until
# produce succeeds again.
chaos-failover:
	CHAOS_FAILOVER_KILLS=20 $(GO) test -count=1 -v -timeout 30m -run '^TestFailoverTime$$' ./e2e/chaos/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
