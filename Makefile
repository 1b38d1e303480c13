# On a fresh machine:
#   make serve      serve the chat tutor on http://127.0.0.1:5000/ (SQLite file stackdoc.db)
#   make install && .venv/bin/python -m pytest
#                   run every test (as root, install also brings iptables, tcpdump ...
#                   for the network-namespace tests; elsewhere those tests skip with a reason)
#   make diagnose   diagnose the seed's network-node transcript with the built-in rules
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXAMPLE ?= rules/examples/seed-network-node.txt

.PHONY: diagnose serve install test system-packages bench fuzz

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

diagnose: $(VENV)/.installed
	-$(PY) app.py diagnose $(EXAMPLE)

HOST ?= 127.0.0.1
PORT ?= 5000
DB ?= stackdoc.db
serve: $(VENV)/.installed
	$(PY) app.py serve --host $(HOST) --port $(PORT) --db $(DB)

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  for tool in iptables:iptables ip:iproute2 tcpdump:tcpdump ping:iputils-ping nc:netcat-openbsd chromium:chromium /usr/sbin/sshd:openssh-server iscsiadm:open-iscsi mysql:mariadb-client; do \
	    command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	fi

install: $(VENV)/.installed system-packages

test: install
	$(PY) -m pytest

bench: $(VENV)/.installed system-packages
	$(PY) -m benchmarks

# The fuzzing harness at length (tests/test_fuzz.py with thousands of examples per
# property instead of CI's few dozen): a few minutes.
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/test_fuzz.py -q -p no:cacheprovider
