# conductor — build, test and benchmark.
#   make build   bin/conductor + deno + the sandbox root, ready to run from the checkout
#   make test    the whole suite (sandbox tests need root or delegated user namespaces), with
#                lint (gofmt, go mod tidy, vet, staticcheck) and test-race (the race detector)
#   make run     build, check the host, run an example, then serve MCP over HTTP on loopback
#   make bench   benchmarks: sandboxed vs bare deno
#   make soak    the full soak (serve over stdio and HTTP under hostile load) into docs/soak.md
#   make test-vm the sandbox, engine and cgroups tests in a cgroup v2 Debian VM (root; qemu)
SHELL       := /bin/bash
GO          ?= go
GOFLAGS_TAGS = -tags seccomp
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS      = -X main.version=$(VERSION)
BUILD       := .build
DENO_BIN    := $(BUILD)/deno
export CGO_ENABLED := 1

.PHONY: install install-apparmor apparmor-profile apparmor-parser host-deps host-deps-test build deno typescript rootfs test test-go test-rootless test-vm bench soak run clean vet mcp-tools lint test-race test-soak

build: bin/conductor deno typescript rootfs

# What the host needs (Go, gcc, pkg-config, libseccomp-dev, curl; for the tests also npm and
# Python): checked on every build; installed with apt when root, else the command is printed.
host-deps:
	@scripts/host-deps.sh run
host-deps-test:
	@scripts/host-deps.sh test

# Every non-test source file of the module is a prerequisite, with the files
# it embeds (the bootstrap, the launcher's modules, Python's pre-started interpreter).
bin/conductor: $(shell find . \( -path ./.build -o -name testdata \) -prune -o \( -name '*.go' ! -name '*_test.go' -o -name '*.js' -o -name '*.ts' -o -name '*.py' \) -print) go.mod go.sum | host-deps
	$(GO) build $(GOFLAGS_TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/conductor

# deno comes from the npm registry's tarball over HTTPS (version in DENO_VERSION, its sha512
# pinned in DENO_SHA512), or from DENO=/path/to/deno.
deno:
ifdef DENO
	@mkdir -p $(BUILD)
	@"$(DENO)" --version | head -1 | grep -q '^deno 2\.' || { echo "DENO=$(DENO) is not deno 2.x" >&2; exit 1; }
	@[ "$$(realpath "$(DENO)")" = "$$(realpath -m $(DENO_BIN))" ] || install -m 0755 "$(DENO)" $(DENO_BIN)
else
	@scripts/fetch-deno.sh $(DENO_BIN)
endif

# TypeScript's compiler and lib files from the npm registry's tarball (version in
# TYPESCRIPT_VERSION, its sha512 pinned in TYPESCRIPT_SHA512) and deno's own declarations
# (`deno types`): what the type checker's sandbox mounts (MCP_CONDUCTOR_TYPECHECK).
typescript: deno
	@DENO_BIN=$(DENO_BIN) scripts/fetch-typescript.sh $(BUILD)/typescript

rootfs: bin/conductor deno
	@bin/conductor rootfs build >/dev/null

vet:
	$(GO) vet $(GOFLAGS_TAGS) ./...

# staticcheck at a pinned release, built from the Go module proxy by `go run` (cached after
# the first run; not a dependency of the module).
STATICCHECK_VERSION := v0.8.2

# Formatting (gofmt -l lists nothing), go.mod and go.sum tidy, go vet, staticcheck.
lint: vet
	@unformatted=$$(find . \( -path ./.build -o -path ./bin \) -prune -o -name '*.go' -print | xargs gofmt -l); \
	  if [ -n "$$unformatted" ]; then echo "gofmt: not formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(GOFLAGS_TAGS) ./...
	$(GO) vet -tags seccomp,soak ./soak/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags seccomp,soak ./soak/

# The packages whose tests need no sandbox of their own run with the race detector, and only
# there (test-go leaves them out); typecheck's tests boot a few checker sandboxes.
RACE_PKGS = ./cgroups ./config ./deps ./egress ./internal/... ./mcp/toolsearch ./mcp/typegen ./mcp/upstream \
  ./playbook ./program ./quota ./rootfs ./runtimes ./seccomp ./tools ./typecheck \
  ./audit ./metrics ./event ./identity ./allowance ./fairq ./deploy/... ./outputs ./artifacts
TEST_ENV  = CONDUCTOR_BIN=$(CURDIR)/bin/conductor CONDUCTOR_DENO=$(CURDIR)/$(DENO_BIN)

# The race detector: RACE_PKGS, a sandbox smoke set (the host-call channel, runs, cancels, the
# engine's queue and shutdown, the pool), and the server itself built with -race
# (.build/conductor-race) under stdio end-to-end tests, which fail on its exit status 66 when
# it found a race.
test-race: build mcp-tools
	$(TEST_ENV) $(GO) test -race $(GOFLAGS_TAGS) -count=1 -timeout 20m $(RACE_PKGS)
	$(TEST_ENV) $(GO) test -race $(GOFLAGS_TAGS) -count=1 -timeout 10m -run '^(TestCalls|TestHostileChannel|TestRunOutcomes|TestCancel)$$' \
	  -skip '^TestCalls$$/^(list_servers|load_needs|servers:|reply_size|request_size|in-flight_bytes|a_global_named|no_handler|an_uncaught)' ./sandbox
	$(TEST_ENV) $(GO) test -race $(GOFLAGS_TAGS) -count=1 -timeout 10m \
	  -run '^(TestBusyAndShutdown|TestShutdownWaitsForTeardown|TestOutputObserver|TestPendingTimerDoesNotHoldTheSlot|TestOnIdle|TestTakesPrestarted|TestRefillsOnceTheRunHasExited|TestSlotQueue|TestOnIdleTiming|TestFillBackoff|TestShrinkWhenIdleTiming)$$' ./engine ./pool
	$(GO) build -race $(GOFLAGS_TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(BUILD)/conductor-race ./cmd/conductor
	CONDUCTOR_BIN=$(CURDIR)/$(BUILD)/conductor-race CONDUCTOR_DENO=$(CURDIR)/$(DENO_BIN) $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 10m \
	  -run '^(TestE2EStdio|TestE2ECancel|TestE2EStdioSigterm)$$' ./mcp

# The whole suite: lint, the race detector, every other package as root, then the rootless
# tests as an unprivileged user (only when run as root; CI always is).
test: host-deps-test build lint test-race test-go test-rootless

# The official MCP inspector and conformance suite (npm, pinned) that the
# end-to-end tests in mcp/ and cmd/conductor/ drive the server with.
mcp-tools:
	@scripts/mcp-tools.sh $(BUILD)/mcp-tools

test-go: mcp-tools apparmor-parser
	$(TEST_ENV) $(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 20m \
	  $$($(GO) list $(GOFLAGS_TAGS) ./... | grep -vxF "$$($(GO) list $(GOFLAGS_TAGS) $(RACE_PKGS))")

# AppArmor 4.1's parser (trixie's .debs, sha256 pinned; cached in .build/apparmor/) for the test
# that packaging/apparmor/conductor parses as Ubuntu >= 23.10's parser reads it.
apparmor-parser:
	@scripts/fetch-apparmor.sh $(BUILD)/apparmor

test-rootless:
	@scripts/test-rootless.sh

# Every Go fuzz target (found by `go test -list '^Fuzz'`) for FUZZTIME each, one at a time;
# `make test` runs them for TEST_FUZZTIME each (docs/fuzz.md: the targets and the time).
FUZZTIME      ?= 10s
TEST_FUZZTIME ?= 5s
.PHONY: fuzz test-fuzz
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
test-fuzz:
	@GO=$(GO) FUZZTIME=$(TEST_FUZZTIME) scripts/fuzz.sh
test: test-fuzz

# A real cgroup v2 host: a Debian 12 VM under qemu (image built once, cached in
# .build/vm/), three phases: root Delegate=yes service, root with
# MCP_CONDUCTOR_CGROUP_PARENT, rootless in a user's Delegate=yes scope.
test-vm: build
	@GO=$(GO) scripts/test-vm.sh

bench: build
	CONDUCTOR_BIN=$(CURDIR)/bin/conductor CONDUCTOR_DENO=$(CURDIR)/$(DENO_BIN) \
	  $(GO) test $(GOFLAGS_TAGS) -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./bench/

# The soak (soak/): `conductor serve` over stdio and streamable HTTP driven at concurrency 8
# through every hostile phase, >= 1000 executions per transport, leftovers counted after each;
# the tables go to docs/soak.md. Its files carry the build tag soak; `make test` runs the short
# soak (test-soak: the same phases over both transports, 8 calls each, about a minute).
test-soak: build mcp-tools
	CONDUCTOR_BIN=$(CURDIR)/bin/conductor CONDUCTOR_DENO=$(CURDIR)/$(DENO_BIN) \
	  $(GO) test -tags seccomp,soak -count=1 -timeout 15m -run '^TestSoak$$' ./soak/
test: test-soak

soak: build mcp-tools
	CONDUCTOR_SOAK=full CONDUCTOR_SOAK_REPORT=$(CURDIR)/docs/soak.md \
	  CONDUCTOR_BIN=$(CURDIR)/bin/conductor CONDUCTOR_DENO=$(CURDIR)/$(DENO_BIN) \
	  $(GO) test -tags seccomp,soak -count=1 -timeout 90m -run '^TestSoak$$' -v ./soak/

# The main job: check this host, then serve MCP over streamable HTTP on
# loopback until Ctrl-C (stdio clients start `bin/conductor serve` themselves).
# HTTP needs a bearer token: MCP_CONDUCTOR_HTTP_TOKEN, else a generated one
# whose file the server's log names (README: Connect a client).
RUN_ADDR ?= 127.0.0.1:8080
run: build
	bin/conductor doctor
	@echo 'return [1, 2, 3, 4].reduce((a, b) => a + b, 0)' | bin/conductor exec --json - | grep -E '"(status|returnValue)"'
	bin/conductor serve --http $(RUN_ADDR)

# Install for use without the checkout: the binary in $(BINDIR); deno and the sandbox root in
# $(DATADIR) (what conductor uses when MCP_CONDUCTOR_DATA_DIR is unset and it does not run from a
# checkout); the systemd unit, with these paths, in $(UNITDIR); the AppArmor profile (below). DESTDIR stages it elsewhere
# (packaging; the tests). The root is built for this host's programs; a changed setting
# (MCP_CONDUCTOR_TOOLS, PYTHON, GO) rebuilds it at the service's start.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= /var/lib/conductor
SYSCONFDIR ?= /etc
UNITDIR    ?= /etc/systemd/system
install: build install-apparmor
	install -D -m 0755 bin/conductor $(DESTDIR)$(BINDIR)/conductor
	install -D -m 0755 $(DENO_BIN) $(DESTDIR)$(DATADIR)/deno
	rm -rf $(DESTDIR)$(DATADIR)/typescript && cp -a $(BUILD)/typescript $(DESTDIR)$(DATADIR)/typescript
	@# Go's standard-library build cache, seeded by `make build` (minutes to seed again).
	[ ! -d $(BUILD)/gocache ] || cp -a $(BUILD)/gocache $(DESTDIR)$(DATADIR)/
	MCP_CONDUCTOR_DATA_DIR=$(DESTDIR)$(DATADIR) $(DESTDIR)$(BINDIR)/conductor rootfs build >/dev/null
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/conductor $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  packaging/conductor.service > $(DESTDIR)$(UNITDIR)/conductor.service

# The AppArmor profile (packaging/apparmor/conductor: `userns,` for $(BINDIR)/conductor, which
# Ubuntu >= 23.10 needs for rootless sandboxes) in $(APPARMORDIR), when this host has AppArmor
# (APPARMOR=auto: $(APPARMOR_SYSFS) or $(APPARMOR_PARSER) on PATH; yes or no decide instead);
# loaded with `$(APPARMOR_PARSER) -r` when not staging (no DESTDIR) and the kernel has AppArmor.
# `make apparmor-profile` prints the profile with these paths.
APPARMOR        ?= auto
APPARMORDIR     ?= $(SYSCONFDIR)/apparmor.d
APPARMOR_SYSFS  ?= /sys/kernel/security/apparmor
APPARMOR_PARSER ?= apparmor_parser
apparmor-profile:
	@sed -e 's|@BINDIR@|$(BINDIR)|g' packaging/apparmor/conductor
install-apparmor:
	@case "$(APPARMOR)" in \
	  no) echo "AppArmor profile: skipped (APPARMOR=no)"; exit 0 ;; \
	  yes) ;; \
	  auto) if [ ! -d "$(APPARMOR_SYSFS)" ] && ! command -v "$(APPARMOR_PARSER)" >/dev/null; then \
	      echo "AppArmor profile: skipped (this host has no AppArmor: no $(APPARMOR_SYSFS), no $(APPARMOR_PARSER) on PATH)"; exit 0; fi ;; \
	  *) echo "APPARMOR=$(APPARMOR): want auto, yes or no" >&2; exit 1 ;; \
	esac; \
	install -d -m 0755 "$(DESTDIR)$(APPARMORDIR)" && \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' packaging/apparmor/conductor > "$(DESTDIR)$(APPARMORDIR)/conductor" || exit 1; \
	if [ -n "$(DESTDIR)" ]; then \
	  echo "AppArmor profile: installed $(DESTDIR)$(APPARMORDIR)/conductor, not loaded (staged in DESTDIR)"; \
	elif [ ! -d "$(APPARMOR_SYSFS)" ]; then \
	  echo "AppArmor profile: installed $(APPARMORDIR)/conductor, not loaded (the kernel has no AppArmor: no $(APPARMOR_SYSFS))"; \
	elif ! command -v "$(APPARMOR_PARSER)" >/dev/null; then \
	  echo "AppArmor profile: installed $(APPARMORDIR)/conductor, NOT loaded: no $(APPARMOR_PARSER) on PATH (install apparmor, then run $(APPARMOR_PARSER) -r $(APPARMORDIR)/conductor)"; \
	else \
	  "$(APPARMOR_PARSER)" -r "$(APPARMORDIR)/conductor" && echo "AppArmor profile: installed and loaded $(APPARMORDIR)/conductor"; \
	fi

clean:
	rm -rf bin $(BUILD)/rootfs
