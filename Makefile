# Bifrost developer entry points. `make demo` and `make test` work on a fresh
# machine: both run `setup` first, which is idempotent and fast when done.
.PHONY: setup deps build build-debug install test test-c test-py test-scouter test-fuzz test-types test-spark demo bench clean

VENV := .venv
PY := $(VENV)/bin/python
JOBS ?= $(shell nproc)
# Sources whose change means the Python extension must be rebuilt.
EXT_SOURCES := $(shell find src include proto python/bifrost python/scouter -name '*.[ch]' -o -name '*.py' -o -name '*.proto' 2>/dev/null) setup.py pyproject.toml

setup: deps build install

deps:
	@./scripts/bootstrap.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS) --target bifrost-server c_producer_example

# Debug + ASan/UBSan build for the C unit tests.
build-debug: deps
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DBIFROST_SANITIZE=ON >/dev/null
	@cmake --build build-debug -j $(JOBS)

install: $(VENV)/.bifrost-installed
$(VENV)/.bifrost-installed: $(EXT_SOURCES) | deps
	@echo "[setup] building and installing the bifrost Python package"
	@$(VENV)/bin/pip install --no-build-isolation -q .
	@touch $@

test: setup test-c test-fuzz test-types test-py test-scouter

test-c: build-debug
	@cd build-debug && ASAN_OPTIONS=detect_leaks=1:detect_odr_violation=0 ctest --output-on-failure -j $(JOBS)

# Short libFuzzer run of the IPC reader (FUZZ_SECONDS=600 for a longer one).
FUZZ_SECONDS ?= 20
test-fuzz: deps
	@./scripts/fuzz_smoke.sh $(FUZZ_SECONDS)

# Static types: the installed package (py.typed) as an application sees it.
test-types: setup
	@$(VENV)/bin/mypy --strict examples/quickstart.py python/tests/typing_snippet.py

# pytest exits 5 when it collects nothing; that is a failure here, never a pass.
test-py: setup
	@BIFROST_SERVER_BIN=$(CURDIR)/build/bifrost-server $(PY) -m pytest python/tests -q; \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# The published scouter-ml 0.25.0 client (in .venv-scouter, made by setup) against
# bifrost-server: python/tests/test_scouter_*.py. In .venv those files skip (there
# `scouter` is our compatibility namespace); here a missing client is a failure.
test-scouter: setup
	@BIFROST_SCOUTER_REAL=1 BIFROST_SERVER_BIN=$(CURDIR)/build/bifrost-server \
	  .venv-scouter/bin/python -m pytest python/tests/test_scouter_*.py -q -p no:cacheprovider; \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# Opt-in: Apache Spark 4 + delta-spark against our tables, local (python/tests/test_delta_spark.py)
# and on S3 over s3a:// (test_delta_spark_s3.py: moto, hadoop-aws matching pyspark's Hadoop).
# Needs a JRE (Debian openjdk-17-jre-headless, installed here when java is missing);
# pyspark comes from python/requirements-spark.txt, the delta-spark and hadoop-aws jars
# from Maven into build/ivy on the first run, kept: ~1.5 GB on disk, mostly the AWS SDK v2
# bundle that hadoop-aws needs (690 MB, held twice by Ivy: cache and jars).
test-spark: setup
	@command -v java >/dev/null || { SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get install -y -qq openjdk-17-jre-headless; }
	@$(VENV)/bin/pip install -q -r python/requirements-spark.txt
	@BIFROST_TEST_SPARK=1 BIFROST_SERVER_BIN=$(CURDIR)/build/bifrost-server \
	  $(PY) -m pytest python/tests/test_delta_spark.py python/tests/test_delta_spark_s3.py -q

demo: setup
	@./scripts/demo.sh

BENCHES = write_bench producer_bench ingest_bench query_bench open_bench s3_bench restart_bench
bench: setup
	@mkdir -p build/bench
	@for b in $(BENCHES); do \
	  echo "== bench/$$b.py"; \
	  $(PY) bench/$$b.py > build/bench/$$b.txt 2>&1; rc=$$?; cat build/bench/$$b.txt; \
	  if [ $$rc -ne 0 ]; then echo "bench/$$b.py failed ($$rc)"; exit $$rc; fi; \
	done
	@echo "== performance goals (each figure's reference was measured in the same run)"
	@grep -h '^GOAL' build/bench/*.txt || true

clean:
	rm -rf build build-debug
