# The two commands a newcomer needs: `make demo` and `make test`. Both install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest arguments, e.g. `make test PYTEST_ARGS="-k traces"`
PYTEST_ARGS ?=

.PHONY: install test demo lint clean docs

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the metrics tests need a real Prometheus: installed here when root with apt-get, else a one-line instruction
test: install
	bash hack/ensure-test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/aihpa demo

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache

docs: install
	$(BIN)/python -c "from aihpa.cli import update_readme; update_readme()"

# The container image aihpa:<version> into the local containers storage, from Debian and PyPI packages alone (no
# registry base image): needs root, mmdebstrap and buildah. `make image IMAGE=registry.example.com/aihpa:0.1.0
# ARCHIVE=aihpa.tar` names it and also writes a docker-archive; with a registry, `docker build .` uses the Dockerfile.
.PHONY: image
image: install
	PYTHON=$(BIN)/python hack/build-image.sh
