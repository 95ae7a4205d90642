PY ?= python3
STAMP := .make-install.stamp

.PHONY: install demo lint typecheck test test-slow bench docs r-refs clean

# first use installs the package (editable) with the test extra, and the R extra when R is here
$(STAMP): pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	if command -v R >/dev/null 2>&1; then $(PY) -m pip install -q -e '.[dev,r]'; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m pymitml.demo

lint: $(STAMP)
	$(PY) -m ruff check pymitml tests

typecheck: $(STAMP)
	$(PY) -m mypy

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# the documentation site (Sphinx; warnings are errors, as in CI): docs/_build/html/index.html
docs: $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	$(PY) -m sphinx -E -W --keep-going -b html -q docs docs/_build/html

r-refs:
	for f in r_compat/*.R; do Rscript $$f; done

# numba's on-disk cache does not notice edits to a kernel's imported helpers: clear it after such edits
clean:
	find pymitml -name '*.nbi' -delete -o -name '*.nbc' -delete
	rm -f $(STAMP)
