# Install portctl on a Debian host (as root). DESTDIR and PREFIX are honoured.
#
#   make install     build release binaries, install them and the unit, D-Bus, polkit,
#                    tmpfiles and profile files; take org.freedesktop.portable1 over from
#                    systemd-portabled (masking it) when that is installed
#   make uninstall   remove all of it and give the name back to systemd-portabled
#   make install-files BIN=target/debug
#                    the same as install, from binaries built elsewhere (the tests use it)
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec
DATADIR = $(PREFIX)/share
UNITDIR = $(PREFIX)/lib/systemd/system
PROFILEDIR = $(PREFIX)/lib/systemd/portable/profile
TMPFILESDIR = $(PREFIX)/lib/tmpfiles.d
# dbus-daemon and polkit read these fixed places only.
BUSPOLICYDIR = /etc/dbus-1/system.d
BUSSERVICEDIR = /usr/share/dbus-1/system-services
POLKITDIR = /usr/share/polkit-1/actions
VENDOR_PROFILEDIR = /usr/lib/systemd/portable/profile
ETCUNITDIR = /etc/systemd/system
STATE = $(DESTDIR)/var/lib/portctl
PROFILES = default nonetwork strict trusted
# The shipped profiles carry the texts of the host's systemd (shared/src/profile.rs,
# shipped_profile_set): 252 up to 256, 257, and 258 on; without systemd, the newest.
SYSTEMD_VERSION ?= $(shell systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
PROFILESET = $(shell v=$(SYSTEMD_VERSION); if [ -z "$$v" ] || [ "$$v" -ge 258 ]; then echo 258; \
	elif [ "$$v" -ge 257 ]; then echo 257; else echo 252; fi)
LIVE = $(shell [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ] && echo yes)

.PHONY: all build install install-files uninstall test test-fs test-unprivileged test-loop test-bus test-box
BIN ?= target/release

all: build

build:
	cargo build --release --locked -p portctl -p portctld

install: build install-files

install-files:
	install -D -m 0755 $(BIN)/portctl $(DESTDIR)$(BINDIR)/portctl
	install -D -m 0755 $(BIN)/portctld $(DESTDIR)$(LIBEXECDIR)/portctld
	# Shell completions and the man page, generated from the command-line definitions.
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d $(DESTDIR)$(DATADIR)/man/man1
	$(BIN)/portctl completions bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/portctl
	$(BIN)/portctl completions zsh > $(DESTDIR)$(DATADIR)/zsh/site-functions/_portctl
	$(BIN)/portctl completions fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/portctl.fish
	$(BIN)/portctl man $(DESTDIR)$(DATADIR)/man/man1
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|' systemd-units/portctld.service.in > $(DESTDIR)$(UNITDIR)/portctld.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/portctld.service
	install -D -m 0644 systemd-units/org.freedesktop.portable1.conf $(DESTDIR)$(BUSPOLICYDIR)/portctl-org.freedesktop.portable1.conf
	install -D -m 0644 systemd-units/portctl.tmpfiles $(DESTDIR)$(TMPFILESDIR)/portctl.conf
	# The activation file and the polkit actions belong to systemd-container where it is
	# installed (they are the same); ours go only where there are none.
	[ -e $(BUSSERVICEDIR)/org.freedesktop.portable1.service ] || \
		install -D -m 0644 systemd-units/org.freedesktop.portable1.service $(DESTDIR)$(BUSSERVICEDIR)/org.freedesktop.portable1.service
	[ -e $(POLKITDIR)/org.freedesktop.portable1.policy ] || \
		install -D -m 0644 systemd-units/org.freedesktop.portable1.policy $(DESTDIR)$(POLKITDIR)/portctl.policy
	# A profile goes under $(PREFIX) only when the host's systemd has none of that name, so
	# that 10-profile.conf links point where systemd-portabled's would.
	for p in $(PROFILES); do \
		[ -e $(VENDOR_PROFILEDIR)/$$p/service.conf ] || \
			install -D -m 0644 systemd-units/profile/$(PROFILESET)/$$p/service.conf $(DESTDIR)$(PROFILEDIR)/$$p/service.conf; \
	done
	# The bus name: our alias wins over systemd-portabled's (in /lib); mask portabled.
	install -d $(DESTDIR)$(ETCUNITDIR) $(STATE)
	ln -sfn $(UNITDIR)/portctld.service $(DESTDIR)$(ETCUNITDIR)/dbus-org.freedesktop.portable1.service
	if [ -e /lib/systemd/system/systemd-portabled.service ] && [ ! -e $(DESTDIR)$(ETCUNITDIR)/systemd-portabled.service ]; then \
		ln -s /dev/null $(DESTDIR)$(ETCUNITDIR)/systemd-portabled.service && touch $(STATE)/masked-systemd-portabled; \
	fi
ifeq ($(LIVE),yes)
	-systemctl stop systemd-portabled.service 2>/dev/null
	-systemctl daemon-reload
	-systemd-tmpfiles --create $(TMPFILESDIR)/portctl.conf
	-busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
endif

uninstall:
	-[ -z "$(LIVE)" ] || systemctl stop portctld.service
	rm -f $(DESTDIR)$(BINDIR)/portctl $(DESTDIR)$(LIBEXECDIR)/portctld $(DESTDIR)$(UNITDIR)/portctld.service
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/portctl $(DESTDIR)$(DATADIR)/zsh/site-functions/_portctl \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/portctl.fish $(DESTDIR)$(DATADIR)/man/man1/portctl.1 $(DESTDIR)$(DATADIR)/man/man1/portctl-*.1
	rm -f $(DESTDIR)$(BUSPOLICYDIR)/portctl-org.freedesktop.portable1.conf $(DESTDIR)$(TMPFILESDIR)/portctl.conf
	rm -f $(DESTDIR)$(POLKITDIR)/portctl.policy
	if cmp -s systemd-units/org.freedesktop.portable1.service $(DESTDIR)$(BUSSERVICEDIR)/org.freedesktop.portable1.service && \
	   ! dpkg -S $(BUSSERVICEDIR)/org.freedesktop.portable1.service >/dev/null 2>&1; then \
		rm -f $(DESTDIR)$(BUSSERVICEDIR)/org.freedesktop.portable1.service; \
	fi
	for p in $(PROFILES); do \
		if cmp -s systemd-units/profile/$(PROFILESET)/$$p/service.conf $(DESTDIR)$(PROFILEDIR)/$$p/service.conf; then \
			rm -f $(DESTDIR)$(PROFILEDIR)/$$p/service.conf; rmdir $(DESTDIR)$(PROFILEDIR)/$$p 2>/dev/null || true; \
		fi; \
	done
	rm -f $(DESTDIR)$(ETCUNITDIR)/dbus-org.freedesktop.portable1.service
	# systemd-portabled's own alias (in /lib) answers for the bus name again.
	if [ -e $(STATE)/masked-systemd-portabled ]; then \
		rm -f $(DESTDIR)$(ETCUNITDIR)/systemd-portabled.service $(STATE)/masked-systemd-portabled; \
	fi
	# portctld's own state: its journal directories (and journals set aside by recovery).
	rm -rf $(STATE) $(DESTDIR)/run/portctl
ifeq ($(LIVE),yes)
	-systemctl daemon-reload
	-busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
endif

# The test tiers (DEVELOPERS.md): what each needs, and each alone.
#   fs    root-free: the crates' unit tests and the fs binaries (scratch roots on a disk)
#   loop  root: loop devices, mounts, file attributes
#   bus   root and a private dbus-daemon: portctld and portctl over D-Bus
#   box   root and systemd-nspawn: systemd as PID 1, the installed unit, the reference
test:
	cargo test --locked --workspace

test-fs:
	cargo test --locked --workspace --lib --bins --test fs

test-unprivileged:
	scripts/test-unprivileged

test-loop:
	cargo test --locked --workspace --test loop --test loop_leaks

test-bus:
	cargo test --locked --workspace --test bus

test-box:
	cargo test --locked --workspace --test box
