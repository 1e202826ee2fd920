# SPDX-License-Identifier: MIT
# pyleak: `make` builds, `make run` shows a leak, `make test` runs every test.
OUTPUT := .output
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc
PYTHON ?= /usr/bin/python3
ARCH := x86

# Debian packages the build, the demo and the tests need (installed by `make deps`).
APT_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libjansson-dev \
	libcapstone-dev libsystemd-dev libcmocka-dev python3-pytest pkg-config make gcc procps

VERSION := 0.1.0
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -DPYLEAK_VERSION='"$(VERSION)"' \
	-I$(OUTPUT) -Ibpf -iquote daemon -I/usr/include/capstone
SANITIZE ?=
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
DAEMON_LIBS := -lbpf -lelf -lz -ljansson -lcapstone -lsystemd -lm
CLI_LIBS := -ljansson

DAEMON_SRCS := $(wildcard daemon/*.c)
DAEMON_OBJS := $(patsubst daemon/%.c,$(OUTPUT)/daemon/%.o,$(DAEMON_SRCS))
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(patsubst cli/%.c,$(OUTPUT)/cli/%.o,$(CLI_SRCS))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(wildcard tests/unit/test_*.c))

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all clean deps run test unit integration fuzz bench install
all: pyleakd pyleakctl

$(OUTPUT) $(OUTPUT)/daemon $(OUTPUT)/cli $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OUTPUT)/pyleak.bpf.o: bpf/pyleak.bpf.c bpf/pyleak.h $(OUTPUT)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUTPUT) -Ibpf \
		-I/usr/include/x86_64-linux-gnu -c $< -o $@
	$(Q)llvm-strip -g $@

$(OUTPUT)/pyleak.skel.h: $(OUTPUT)/pyleak.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(DAEMON_OBJS): $(OUTPUT)/pyleak.skel.h $(wildcard daemon/*.h) bpf/pyleak.h | $(OUTPUT)/daemon
$(OUTPUT)/daemon/%.o: daemon/%.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(CLI_OBJS): $(wildcard cli/*.h) | $(OUTPUT)/cli
$(OUTPUT)/cli/%.o: cli/%.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

pyleakd: $(DAEMON_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(DAEMON_LIBS) -o $@

pyleakctl: $(CLI_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(CLI_LIBS) -o $@

# Each unit test links the daemon modules it names (all but main.o).
$(OUTPUT)/tests/%: tests/unit/%.c $(filter-out $(OUTPUT)/daemon/main.o,$(DAEMON_OBJS)) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(DAEMON_LIBS) -lcmocka -o $@

# Installs only what is missing; needs root (CI and `make run` on a fresh machine are root).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "  APT      $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./tests/demo.sh

unit: $(UNIT_TESTS)
	$(Q)set -e; for t in $(UNIT_TESTS); do echo "  UNIT     $$t"; $$t; done

integration: all
	$(Q)$(PYTHON) -m pytest -q tests

test: deps
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)$(PYTHON) -m pytest -q -rs tests

# libFuzzer on the census pool validator (it parses memory copied from targets).
FUZZ_SECONDS ?= 60
$(OUTPUT)/fuzz_census_pool: tests/fuzz/fuzz_census_pool.c daemon/census.c daemon/procmem.c | $(OUTPUT)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -iquote daemon $^ -o $@

fuzz: $(OUTPUT)/fuzz_census_pool
	$(Q)mkdir -p $(OUTPUT)/fuzz-corpus
	$(Q)$< -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(OUTPUT)/fuzz-corpus

# Overhead ratios on Debian's python3.11 and every pyenv 3.8-3.13 present (needs root).
BENCH_PYTHONS ?= /usr/bin/python3.11 $(wildcard $(HOME)/.pyenv/versions/3.1[0-3].*/bin/python3.1[0-3]) \
	$(wildcard $(HOME)/.pyenv/versions/3.[89].*/bin/python3.[89])
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(PYTHON) bench/overhead.py --json bench/results/overhead.json $(BENCH_PYTHONS)

PREFIX ?= /usr/local
install: all
	install -D -m 0755 pyleakd $(DESTDIR)$(PREFIX)/sbin/pyleakd
	install -D -m 0755 pyleakctl $(DESTDIR)$(PREFIX)/bin/pyleakctl
	install -D -m 0644 deploy/pyleakd.service $(DESTDIR)/etc/systemd/system/pyleakd.service
	install -D -m 0644 deploy/pyleakd.conf $(DESTDIR)/etc/pyleak/pyleakd.conf

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT) pyleakd pyleakctl
