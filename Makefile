# ringmq build. giouring links against syscall internals through
# //go:linkname, which Go >= 1.23 rejects unless -checklinkname=0 is passed
# to the linker; every -ldflags used here must keep it.
export GOFLAGS := -ldflags=-checklinkname=0

GO      ?= go
BIN     := bin/ringmq
PKGS    := ./...

.PHONY: all build run test vet fmt-check fuzz-seeds bench clean partitions-10k

all: build

build:
	$(GO) build -o $(BIN) .

run: build
	$(BIN) serve --config config.toml

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
