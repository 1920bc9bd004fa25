# BIC - build, run and test.  `make help` lists the targets.
.DEFAULT_GOAL := all
SHELL := /bin/bash

CC      ?= cc
PKGS    := fcgi libmariadb jansson libjwt libargon2 inih openssl libvirt libcurl libmicrohttpd libxml-2.0 libnl-route-3.0 libqrencode ldap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
BICD_LIBS  := $(shell pkg-config --libs fcgi libmariadb jansson libjwt libargon2 inih openssl libcurl libqrencode ldap 2>/dev/null)
AGENT_LIBS := $(shell pkg-config --libs jansson inih libvirt openssl libcurl libmicrohttpd libxml-2.0 libnl-route-3.0 2>/dev/null)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Ifcgi -DBIC_GIT_REV='"$(GIT_REV)"' -MMD -MP
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

FCGI_SRC  := $(filter-out fcgi/main.c fcgi/consoled.c,$(wildcard fcgi/*.c))
AGENT_SRC := $(filter-out agent/main.c,$(wildcard agent/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)

# Release build in build/, sanitizer build in build/test/.
B := build
T := build/test
FCGI_OBJ   := $(FCGI_SRC:%.c=$(B)/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(B)/%.o)
TFCGI_OBJ  := $(FCGI_SRC:%.c=$(T)/%.o)
TAGENT_OBJ := $(AGENT_SRC:%.c=$(T)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(T)/unit/%)
INTEG_BIN  := $(INTEG_SRC:tests/integration/%.c=$(T)/integration/%)

.PHONY: all deps test test-build unit up down status bench docs fmt clean help

all: $(B)/bicd $(B)/bic-agent $(B)/bic-consoled ## build bicd, bic-consoled and bic-agent (release)

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(T)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+SAN  $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c $< -o $@

$(B)/bicd: $(FCGI_OBJ) $(B)/fcgi/main.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(BICD_LIBS) -lpthread

# the console relay: the frame reader is in FCGI_OBJ (unit-tested there), only its main is apart
$(B)/bic-consoled: $(B)/fcgi/wsrelay.o $(B)/fcgi/consoled.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^

$(T)/bic-consoled: $(T)/fcgi/wsrelay.o $(T)/fcgi/consoled.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^

$(B)/bic-agent: $(AGENT_OBJ) $(B)/agent/main.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(AGENT_LIBS) -lpthread

$(T)/bicd: $(TFCGI_OBJ) $(T)/fcgi/main.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(BICD_LIBS) -lpthread

$(T)/bic-agent: $(TAGENT_OBJ) $(T)/agent/main.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(AGENT_LIBS) -lpthread

$(T)/unit/%: tests/unit/%.c $(TFCGI_OBJ) $(TAGENT_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN) -Iagent -o $@ $< $(TFCGI_OBJ) $(TAGENT_OBJ) $(BICD_LIBS) $(AGENT_LIBS) -lpthread -lcmocka

$(T)/integration/%: tests/integration/%.c $(TFCGI_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $< $(TFCGI_OBJ) $(BICD_LIBS) -lpthread -lcmocka

deps: ## install every Debian and npm package needed to build, run and test
	@bash appliance/deps.sh

test-build: $(T)/bicd $(T)/bic-agent $(T)/bic-consoled $(B)/bicd $(B)/bic-agent $(B)/bic-consoled $(UNIT_BIN) $(INTEG_BIN)

unit: $(UNIT_BIN) ## build and run the C unit tests only
	@for t in $(UNIT_BIN); do $$t || exit 1; done

test: deps ## install what is missing, build with sanitizers, run every test layer
	@$(MAKE) --no-print-directory test-build
	@bash tests/run

up: deps all ## build and start the all-in-one stack under var/, print URLs and credentials
	@bash appliance/bic-stack up

down: ## stop exactly what `make up` started
	@bash appliance/bic-stack down

status: ## show what of the stack is running
	@bash appliance/bic-stack status

bench: deps all ## run the benchmarks; prints a table and writes build/bench/results.md
	@python3 tests/bench/bench.py

docs: all ## regenerate docs/api/openapi.json from the route table
	@python3 docs/api/gen_openapi.py build/bicd > docs/api/openapi.json

fmt: ## format the C sources with the committed .clang-format
	clang-format -i fcgi/*.c fcgi/*.h agent/*.c agent/*.h tests/unit/*.c

clean:
	rm -rf build

help:
	@grep -hE '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 12

-include $(shell find build \( -path build/appliance -o -path build/thin-client \) -prune -o -type f -name '*.d' -print 2>/dev/null)

# ---- fuzzing (issue 12) ----
# libFuzzer targets in tests/fuzz/ (clang): each links the real fcgi/ or agent/ objects,
# built again in build/fuzz/ with -fsanitize=fuzzer-no-link,address,undefined.
# `make fuzz` runs every target for FUZZ_SECONDS (default 60) and fails on a crash;
# `make fuzz FUZZ_TARGETS=fuzz_token` runs one. tests/runner.py's fuzz layer runs a short smoke.
.PHONY: fuzz fuzz-build
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FZ           := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = $(CSTD) $(filter-out -Werror,$(WARN)) -Wno-unknown-warning-option -g -O1 \
                $(PKG_CFLAGS) -Ifcgi -Iagent -DBIC_GIT_REV='"$(GIT_REV)"' -MMD -MP $(FUZZ_SAN)
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FZ_FCGI_OBJ  := $(FCGI_SRC:%.c=$(FZ)/%.o)
FZ_AGENT_OBJ := $(AGENT_SRC:%.c=$(FZ)/%.o)

$(FZ)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC+FUZZ $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# fuzz_agent_*: the agent's objects; every other fuzz_*: bicd's
$(FZ)/bin/fuzz_agent_%: tests/fuzz/fuzz_agent_%.c tests/fuzz/fuzz_common.h $(FZ_AGENT_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD+FUZZ $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FZ_AGENT_OBJ) $(AGENT_LIBS) -lpthread

$(FZ)/bin/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h tests/fuzz/fuzz_bicd.h $(FZ_FCGI_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD+FUZZ $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FZ_FCGI_OBJ) $(BICD_LIBS) -lpthread

fuzz-build: $(FUZZ_TARGETS:%=$(FZ)/bin/%) ## build the libFuzzer targets (clang) into build/fuzz/bin/

fuzz: fuzz-build ## run each fuzz target for FUZZ_SECONDS (default 60); fails on a crash
	@set -o pipefail; for t in $(FUZZ_TARGETS); do echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  bash tests/fuzz/run.sh $$t $(FUZZ_SECONDS) 2>&1 | tail -n 40 || exit 1; done

# ---- faults (issue 12) ----
# Jepsen-style fault tests (tests/fault/, docs/reliability.md): allocation safety while bicd and
# MariaDB are killed and paused, and heartbeats under load. FAULTS_LONG=1 runs the long version.
.PHONY: test-faults

test-faults: test-build ## fault tests: kill -9/SIGSTOP bicd and MariaDB under load (FAULTS_LONG=1: long run)
	@BIC_TEST_LAYERS=fault BIC_FAULTS_LONG=$(if $(FAULTS_LONG),1,$${BIC_FAULTS_LONG:-0}) bash tests/run

# ---- appliance (issue 10) ----
# Debian packages, the installer ISO and its end-to-end test (docs/install.md).
.PHONY: deb iso test-appliance

deb: all ## build the Debian packages bic-ccc and bic-agent into build/deb/
	@bash appliance/deb/build.sh

iso: deb ## build the installer ISO (BIOS+UEFI) into build/appliance/ (root; ~3 min, seconds with a cached base)
	@bash appliance/iso/build.sh

test-appliance: ## build the ISO, install it unattended in a QEMU VM, boot it and check it (~9 min)
	@python3 tests/appliance/test_appliance.py

# ---- thin client (issue 13) ----
# A Debian live image that boots into Chromium (kiosk, under cage) on a CCC's user portal:
# ISO/USB and PXE files in build/thin-client/ (docs/thin-client.md).
.PHONY: thin-client test-thin-client

thin-client: ## build the thin client ISO and PXE files into build/thin-client/ (root; ~8 min, seconds when cached)
	@bash appliance/thin-client/build.sh

test-thin-client: all ## boot the thin client in QEMU against a local stack; screenshots show portal / unreachable
	@python3 tests/thin/test_thin_client.py
