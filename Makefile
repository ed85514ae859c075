# Transformers from Scratch: the two commands are `make lab` and `make test`.
# Both create .venv (Python 3.11) and install torch==2.13.0 first, then the course package
# with its pinned dependencies, the first time they run or when pyproject.toml changes.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup lab test release clean

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
	touch $@

# Jupyter refuses to run as root unless told; containers often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=course $(LAB_ARGS)

# Unit tests, release sync, autograding end to end, and every solution notebook under nbval.
# pytest's exit code 5 (nothing collected) means the setup is broken: it fails like any other.
test: setup
	@$(BIN)/python -m pytest tests solutions --nbval-lax --nbval-cell-timeout=120 $(PYTEST_ARGS); \
	status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: the setup is broken" >&2; exit 1; fi; \
	exit $$status

# Regenerate course/ from solutions/ (commit the result).
release: setup
	$(BIN)/python autograder/release.py

clean:
	rm -rf $(VENV) grading build .pytest_cache
