# mlm-course: two commands do everything.
#   make book   set up .venv and build the HTML book into _build/html
#   make test   set up .venv and run lint, unit tests, doctests and strict nbval
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# wheels of the package's dependencies and ipykernel, at the lock's versions, from which
# tests/test_packaging.py installs the built wheel into a fresh environment offline
WHEELHOUSE := $(VENV)/wheelhouse
# cffconvert (validates CITATION.cff) pins a jsonschema older than Jupyter's: own environment
CFFCONVERT := $(VENV)/cffconvert
export PYTHONHASHSEED := 0
# No MPLBACKEND: notebook kernels must use the inline backend, or plt.show() stores no
# figure and nbval fails; tests/conftest.py selects Agg for the test process itself.
unexport MPLBACKEND

.PHONY: env book test nbval lint format lab clean bench handouts student notebooks dist \
	vendor-axe slides vendor-reveal instructor

env: $(STAMP)

$(STAMP): requirements.lock requirements-cffconvert.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlm-course)" >/dev/null
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --only-binary :all: \
		--no-build-isolation -c requirements.lock --dest $(WHEELHOUSE) . ipykernel
	test -x $(CFFCONVERT)/bin/python || $(PYTHON) -m venv $(CFFCONVERT)
	$(CFFCONVERT)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-cffconvert.lock
	touch $(STAMP)

book: env
	$(BIN)/jupyter-book build . -W --keep-going

test: env
	$(BIN)/ruff check .
	$(BIN)/pytest -p no:cacheprovider -rs --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# nbval of the chapters (and the capstone solution) alone; .ci/run runs it a second time under another OpenBLAS kernel
nbval: env
	$(BIN)/pytest -p no:cacheprovider -rs --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg book instructor

# the release files: sdist and wheel in dist/, checked as PyPI would check them
dist: env
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlm_lessons tests

format: env
	$(BIN)/ruff format mlm_lessons tests
	$(BIN)/ruff check --fix .

# JupyterLab on book/ (the pages' "JupyterLab" launch links expect port 8888); it fetches
# nothing: no update check, no news feed, no PyPI extension manager. --allow-root for
# workshop containers that run as root. `make lab LAB_DIR=_build/notebooks` opens the
# rendered edition (`make notebooks`) instead. The student edition's Makefile uses the same
# flags (scripts/make_student.py; tests/test_student.py compares them).
# The server flags stop the fetches; the settings override stops JupyterLab from asking
# whether to fetch news (it asks even with news_url=None).
LAB_DIR ?= book
LAB_FLAGS := --LabApp.extension_manager=readonly \
	--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate --LabApp.news_url=None
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.d/mlm-course.json
$(LAB_OVERRIDES): $(STAMP)
	mkdir -p $(@D)
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@
lab: env $(LAB_OVERRIDES)
	$(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_FLAGS) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

handouts: env
	$(BIN)/python scripts/build_handouts.py

student: env
	$(BIN)/python scripts/make_student.py

# The notebooks with the MyST markup replaced by what the book prints (numbers, glued
# values, references), readable in any JupyterLab or Colab: _build/notebooks/<chapter>.ipynb,
# what .github/workflows/pages.yml publishes on the notebooks branch for Colab and Binder
notebooks: env
	$(BIN)/python scripts/render_notebooks.py

bench: env
	$(BIN)/python benchmarks/run.py

# axe-core, the accessibility engine of tests/test_browser.py, is vendored in tests/vendor/
# (a test file, never part of the site); this target fetched it from the npm registry.
AXE_VERSION := 4.14.1
vendor-axe:
	@command -v npm >/dev/null || { echo "error: npm not found (Debian: apt-get install npm)"; exit 1; }
	tmp=$$(mktemp -d) && cd "$$tmp" && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
		&& tar xzf axe-core-$(AXE_VERSION).tgz \
		&& cp package/axe.min.js "$(CURDIR)/tests/vendor/axe.min.js" \
		&& cp package/LICENSE "$(CURDIR)/tests/vendor/axe-core-LICENSE.txt" \
		&& cp package/LICENSE-3RD-PARTY.txt "$(CURDIR)/tests/vendor/axe-core-LICENSE-3RD-PARTY.txt" \
		&& rm -rf "$$tmp"
	sha256sum tests/vendor/axe.min.js

# reveal.js, the slide framework of `make slides`, is vendored in slides/vendor/reveal.js/
# (only the files the decks load, with its licence); this target fetched it from npm.
REVEAL_VERSION := 6.0.2
REVEAL_FILES := dist/reveal.js dist/reveal.css dist/reset.css dist/theme/white.css \
	dist/plugin/notes.js LICENSE
vendor-reveal:
	@command -v npm >/dev/null || { echo "error: npm not found (Debian: apt-get install npm)"; exit 1; }
	rm -rf slides/vendor/reveal.js && mkdir -p slides/vendor/reveal.js
	tmp=$$(mktemp -d) && cd "$$tmp" && npm pack --silent reveal.js@$(REVEAL_VERSION) >/dev/null \
		&& tar xzf reveal.js-$(REVEAL_VERSION).tgz \
		&& for f in $(REVEAL_FILES); do mkdir -p "$(CURDIR)/slides/vendor/reveal.js/$$(dirname $$f)" \
			&& cp "package/$$f" "$(CURDIR)/slides/vendor/reveal.js/$$f"; done \
		&& printf 'reveal.js %s, from the npm package reveal.js@%s (make vendor-reveal).\nLicence: MIT (LICENSE in this folder).\n' \
			$(REVEAL_VERSION) $(REVEAL_VERSION) > "$(CURDIR)/slides/vendor/reveal.js/VERSION.txt" \
		&& rm -rf "$$tmp"
	cd slides/vendor/reveal.js && sha256sum $(REVEAL_FILES)

# one reveal.js deck per chapter, from the notebooks' stored outputs, into _build/slides/
slides: env
	$(BIN)/python scripts/build_slides.py

# the instructor's kit (the capstone solution), a book of its own: _build/instructor/
instructor: env
	$(BIN)/jupyter-book build instructor -W --keep-going --path-output _build/instructor

clean:
	rm -rf _build dist .pytest_cache .hypothesis .ruff_cache mlm_lessons.egg-info
	find . -name __pycache__ -not -path "./$(VENV)/*" -exec rm -rf {} +
