# crimelens — `make demo` and `make test` are the two commands; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
EXTRAS ?= analysis,server,postgres,stream,spark,reports,deep,nlp,dev
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt requirements/no-deps.txt requirements/s3a-test-jars.sh 2>/dev/null | sha1sum | cut -c1-10)
DEMO_DIR ?= demo
PORT ?= 8000

.PHONY: install test lint demo bench clean system-deps

$(STAMP): pyproject.toml requirements/constraints.txt requirements/no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: this exact version is a local CPU build (a plain `torch` would pull CUDA)
	if [[ ",$(EXTRAS)," == *",deep,"* ]]; then $(PIP) install -q torch==2.13.0; fi
	$(PIP) install -q -c requirements/constraints.txt -e ".[$(EXTRAS)]"
	# statsforecast's models work with pandas 3 but its metadata says pandas<3: see the file
	if [[ ",$(EXTRAS)," == *",analysis,"* ]]; then $(PIP) install -q --no-deps -r requirements/no-deps.txt; fi
	# hadoop-aws + AWS SDK jars for the s3a:// lake test on Spark, test time only (see the script)
	if [[ ",$(EXTRAS)," == *",dev,"* && ",$(EXTRAS)," == *",spark,"* ]]; then bash requirements/s3a-test-jars.sh $(VENV) \
	  || echo "s3a test jars not fetched: the Spark-on-S3 test will skip"; fi
	# axe-core (accessibility checks in the browser tests), build/test time only; the page never loads it
	if command -v npm >/dev/null; then npm install --no-save --no-package-lock --prefix . axe-core@4 >/dev/null \
	  || echo "axe-core not installed: the accessibility tests will skip"; fi
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: install
	$(VENV)/bin/crimelens demo --dir $(DEMO_DIR) --port $(PORT)

bench: install
	$(PY) bench/ingest.py
	-$(PY) bench/analysis.py
	-$(PY) bench/forecast.py
	-$(PY) bench/classify.py

# Debian packages some tests use (headless Chromium, PostGIS); needs root, used by .ci/run.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql-15-postgis-3 poppler-utils libpango-1.0-0 libpangoft2-1.0-0 prometheus mosquitto-clients >/dev/null) \
	  || echo "system-deps: apt-get failed; tests needing Chromium/PostGIS will skip"; \
	else echo "system-deps: not root or no apt-get; tests needing Chromium/PostGIS will skip"; fi
	# message brokers for tests/stream (issue 19): start those a fresh machine lacks; the tests skip without them
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto rabbitmq-server nats-server >/dev/null 2>&1 || true; fi
	-@for s in mosquitto:1883 rabbitmq-server:5672; do (exec 3<>/dev/tcp/127.0.0.1/$${s#*:}) 2>/dev/null \
	  || service $${s%%:*} start >/dev/null 2>&1 || echo "system-deps: $${s%%:*} not started; its stream tests will skip"; done
	-@(exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null || { command -v nats-server >/dev/null \
	  && (nats-server -js -a 127.0.0.1 -p 4222 -sd /tmp/crimelens-nats >/dev/null 2>&1 &) ; } || true

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
