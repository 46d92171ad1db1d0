# buildguard — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/buildguard
FUZZTIME ?= 10s
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/buildguard
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/buildguard

.PHONY: test
test: lint unit e2e fuzz-short ## everything CI runs: gofmt, vet, golangci-lint, unit tests, end-to-end tests, a short fuzz run

.PHONY: unit
unit: ## unit tests
	$(GO) test -count=1 ./...

.PHONY: e2e
e2e: ## end-to-end tests against the real registry, Rekor and OCI runtime (see .ci/run for the tools)
	$(GO) test -count=1 -timeout 70m -tags e2e ./e2e/...

.PHONY: fuzz-short
fuzz-short: ## every fuzz target for FUZZTIME (default 10s)
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

.PHONY: fuzz
fuzz: ## every fuzz target for 2 minutes
	FUZZTIME=2m scripts/fuzz.sh

.PHONY: vet
vet: ## go vet, with and without the e2e tag
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

.PHONY: check-fmt
check-fmt: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

.PHONY: lint
lint: check-fmt vet ## gofmt, go vet, golangci-lint (errcheck, errorlint, gosec) and actionlint
	@if command -v golangci-lint >/dev/null; then golangci-lint run --build-tags e2e ./...; \
	elif [ "$$CI" = true ]; then echo "golangci-lint is not installed (go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0)"; exit 1; \
	else echo "golangci-lint is not installed: skipped (install: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0)"; fi
	@if command -v actionlint >/dev/null; then actionlint examples/ci/github-workflow.yml examples/ci/rebuilders-workflow.yml; \
	elif [ "$$CI" = true ]; then echo "actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)"; exit 1; \
	else echo "actionlint is not installed: skipped (install: go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)"; fi
	@echo "govulncheck: skipped: its vulnerability database cannot be reached from this machine (no internet)"

.PHONY: bench
bench: ## the benchmark script: buildguard against its peers, as ratios (see docs/performance.md)
	scripts/bench.sh

.PHONY: demo
demo: build ## the guarded build of examples/hello with clean and compromised builders (as root; see docs/demo.md)
	@[ "$$(id -u)" != 0 ] || scripts/subids.sh root
	$(GO) run ./internal/cmd/demo --buildguard $(BIN)

DDC_OUT ?= ddc-evidence

.PHONY: demo-ddc
demo-ddc: build ## diverse double-compiling: Go bootstrapped from gccgo-12 in 4 guarded builds (cached), compared with the official go1.26.8, then the demo with it as the independent builder (as root, or a user with a subordinate id range; see docs/demo.md)
	@[ "$$(id -u)" != 0 ] || scripts/subids.sh root
	@# The demo runs whenever the chain was built; a comparison that differs still fails the target.
	nice -n 19 $(GO) run ./internal/cmd/ddc --buildguard $(BIN) --out $(DDC_OUT); st=$$?; [ -e $(DDC_OUT)/go ] || exit $$st; \
	$(GO) run ./internal/cmd/demo --buildguard $(BIN) --independent-goroot $(DDC_OUT)/go --independent-lineage $(DDC_OUT) && exit $$st

# The release (docs/release.md): RELEASE_FLAGS adds flags of
# internal/cmd/release, such as --allow-dirty; RELEASE_SMALL is the small
# main package that release-small builds on the same path.
RELEASE_FLAGS ?=
RELEASE_SMALL ?= ./internal/cmd/benchdiff

.PHONY: release
release: build ## buildguard's own release, guarded by buildguard: dist/buildguard, its sha256 and evidence (as root; see docs/release.md)
	$(GO) run ./internal/cmd/release --buildguard $(BIN) --dist dist $(RELEASE_FLAGS)

.PHONY: release-check
release-check: build ## the release twice from fresh copies of HEAD: pass both times, byte-identical binaries (dist/, dist/second/)
	$(GO) run ./internal/cmd/release --buildguard $(BIN) --dist dist --twice $(RELEASE_FLAGS)

.PHONY: release-small
release-small: build ## release-check's path on a small package (RELEASE_SMALL) into dist/small: a few minutes
	$(GO) run ./internal/cmd/release --buildguard $(BIN) --dist dist/small --target $(RELEASE_SMALL) --twice $(RELEASE_FLAGS)

.PHONY: clean
clean: ## remove build output
	rm -rf bin .buildguard dist
