# Install portctl on a Debian host. DESTDIR and PREFIX are honoured.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
PROFILEDIR = $(DESTDIR)$(PREFIX)/lib/systemd/portable/profile
VENDOR_PROFILEDIR = /usr/lib/systemd/portable/profile
PROFILES = default nonetwork strict trusted

.PHONY: all build install uninstall

all: build

build:
	cargo build --release --locked

# A profile goes under $(PREFIX) only when the host's systemd has none of that name, so that
# 10-profile.conf links point where systemd-portabled's would.
install: build
	install -D -m 0755 target/release/portctl $(BINDIR)/portctl
	install -D -m 0755 target/release/portctld $(BINDIR)/portctld
	for p in $(PROFILES); do \
		if [ ! -e $(VENDOR_PROFILEDIR)/$$p/service.conf ]; then \
			install -D -m 0644 systemd-units/profile/$$p/service.conf $(PROFILEDIR)/$$p/service.conf; \
		fi; \
	done

uninstall:
	rm -f $(BINDIR)/portctl $(BINDIR)/portctld
	for p in $(PROFILES); do \
		if cmp -s systemd-units/profile/$$p/service.conf $(PROFILEDIR)/$$p/service.conf; then \
			rm -f $(PROFILEDIR)/$$p/service.conf; rmdir $(PROFILEDIR)/$$p 2>/dev/null || true; \
		fi; \
	done
