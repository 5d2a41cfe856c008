# lotse — make help lists the targets.
GO        ?= go
BIN       := bin/lotse
PKGS      := ./...
# One build cache for the unit and e2e runs, so CI compiles the
# dependency set once.
export GOFLAGS := -buildvcs=false

.PHONY: help build deps test unit e2e lint bench fuzz clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/lotse
	$(GO) build -o $(BIN) ./cmd/lotse

deps: ## install what a node needs (containerd, runc, CNI plugins, busybox-static) from Debian
	./hack/deps.sh

test: unit e2e ## run the whole test suite (what CI runs)

# -p 1: most packages start real control planes; on two cores, running
# them side by side only makes their timing-sensitive waits flaky.
unit: deps ## unit and in-process integration tests
	$(GO) test -p 1 -count=1 -timeout 20m $$($(GO) list ./... | grep -v /test/e2e)

e2e: deps build ## end-to-end tests: the built binary driven by the installed kubectl
	LOTSE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m ./test/e2e/...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l cmd internal test bench)" || (gofmt -l cmd internal test bench; exit 1)
	$(GO) vet ./...

bench: build ## benchmarks with figures for bench/README.md
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

fuzz: ## run each fuzz target for a short while
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./internal/apiserver/
	$(GO) test -run '^$$' -fuzz FuzzPatch -fuzztime 30s ./internal/apiserver/

clean: ## remove build output
	rm -rf bin
