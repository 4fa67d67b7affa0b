# Two commands matter: `make run` (the default sweep and its report) and `make test`.
# Both create or reuse .venv. torch is pinned to the tested CPU build: an unpinned torch
# pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
EXTRAS := onnx,serve,ray,tensorboard,mlflow,optuna,data,test

.PHONY: run test lint browser clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH) -e .
	touch $@

$(VENV)/.all: $(VENV)/.core
	$(PY) -m pip install -q $(TORCH) -e '.[$(EXTRAS)]'
	touch $@

run: $(VENV)/.core
	$(PY) -m mnistlab sweep

# Debian's chromium for the browser tests (never a browser download) and a CJK font for the
# Chinese report; each installed only when missing; without root/apt those tests are skipped.
browser:
	@need=""; command -v chromium >/dev/null 2>&1 || need="chromium chromium-driver"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || need="$$need fonts-noto-cjk"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq $$need >/dev/null) || \
	      echo "could not install$$need: the tests that need them will be skipped"; \
	  else echo "not installed:$$need: the tests that need them will be skipped"; fi; \
	fi

lint: $(VENV)/.all
	$(PY) -m ruff check src tests benchmarks scripts examples
	$(PY) -m ruff format --check src tests benchmarks scripts examples
	$(VENV)/bin/lint-imports  # the layers contract in pyproject.toml

# Two workers (pytest-xdist), each test file on one of them so its module fixtures (a Ray
# cluster, a browser, a trained checkpoint) are built once; tests pin one torch thread each.
test: $(VENV)/.all browser lint
	$(PY) -m pytest -q -rs -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
