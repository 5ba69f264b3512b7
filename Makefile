# `make demo` and `make test` each create or refresh .venv by themselves.
# A stamp file per extra makes the second run skip pip entirely.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: demo test test-all default-model default-onnx clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[train,demo,serve]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[train,ray,test,demo,serve]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/picaffect demo --out out/demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -m "not slow"

test-all: $(VENV)/.installed-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# Retrain the shipped default model from the rated sets (about an hour on 2 cores).
default-model: $(VENV)/.installed
	$(VENV)/bin/picaffect retrain configs/default.yaml
	$(MAKE) default-onnx

# The shipped default as ONNX, for the torch-free predict path (run after changing weights/default.pt).
default-onnx: $(VENV)/.installed
	$(VENV)/bin/picaffect export default src/picaffect/weights/default.onnx
