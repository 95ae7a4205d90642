PY ?= python3

.PHONY: install demo test test-slow bench r-refs

install:
	$(PY) -m pip install -e '.[dev,r]'

demo:
	$(PY) -m pymitml.demo

test:
	$(PY) -m pytest -q

test-slow:
	$(PY) -m pytest -q -m slow

bench:
	$(PY) benchmarks/run_all.py

r-refs:
	for f in r_compat/*.R; do Rscript $$f; done
