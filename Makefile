# `make demo` and `make test` each create or refresh .venv by themselves.
# A stamp file per extra makes the second run skip pip entirely.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
# The three rated sets, as `picaffect build` takes them (the calibration targets build from them), and the folder
# of their build at a size and split: both from src/picaffect/data/rated_sets.py, which names them once.
RATED = $(PY) -m picaffect.data.rated_sets
RATED_SETS = $(shell $(RATED) sources $(DATA))
PEER_VENV ?= .venv-peer
# The Keras peer of the training benchmark, when `make peer-venv` has made it.
PEER_PYTHON ?= $(if $(wildcard $(PEER_VENV)/.installed),$(PEER_VENV)/bin/python)
BENCH_ARGS ?=

.PHONY: choose-models accurate-model accurate-calibration demo test test-all default-model default-calibration default-onnx check-shipped clean bench bench-table figures peer-venv

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

# The choice of the shipped models' recipes, made on the training and test rows only (docs/protocol.md):
# frozen features of every candidate backbone, then each candidate readout scored leaving one rated set out
# inside those rows. Writes results/choice/choice.json and README.md; configs/default.yaml and
# configs/accurate.yaml must then say what it chose (tests/test_choice.py checks). A compute run: about
# 10 minutes of features and under an hour of readouts on 2 cores.
choose-models: $(VENV)/.installed
	scripts/choice_features.sh $(DATA) runs/choice
	$(PY) -m picaffect.workflows.choice --features runs/choice/features --out results/choice

# Remake the shipped default from the rated sets (about an hour on 2 cores). --force: this target always writes
# the shipped file (`picaffect retrain` alone keeps the old one unless the new one is better, for users). Then
# default-calibration: intervals, evaluation record, ONNX twin, and the predictions the tests check it against.
default-model: $(VENV)/.installed
	$(VENV)/bin/picaffect retrain configs/default.yaml --force
	$(MAKE) default-calibration

# Prediction intervals for the shipped default, written into weights/default.pt and its ONNX twin (it
# exports the ONNX file itself, so default-model needs no default-onnx before it): the
# model's errors on each source predicted from the other two (picaffect calibrate's default protocol),
# plain split conformal (scheme pooled), constant widths: results/intervals/search.md says why.
# It also writes the file's evaluation record (`picaffect info default`): the leave-one-source-out figures of the
# same held-out predictions, then the validation rows scored once; and tests/fixtures/default-predictions.json,
# the shipped file's own predictions of generated pictures with its SHA-256 (tests/test_default_model.py).
# A dataset already built in $(CALIBRATION_DATA) is reused (its manifest's SHA-256 is recorded in the file).
# 40 s on the idle 2-core machine when $(CALIBRATION_DATA) was already built (2026-12-02).
CALIBRATION_DATA ?= $(shell $(RATED) folder 224 group)
default-calibration: $(VENV)/.installed
	test -f $(CALIBRATION_DATA)/report.json || \
		$(VENV)/bin/picaffect build $(CALIBRATION_DATA) $(RATED_SETS) --size 224 --split group
	$(VENV)/bin/picaffect calibrate default --data $(CALIBRATION_DATA) --scheme pooled --constant \
		--out src/picaffect/weights/default.pt --onnx src/picaffect/weights/default.onnx
	$(PY) scripts/record_predictions.py default --out tests/fixtures/default-predictions.json

# The shipped `accurate` model (Lite1 at 240 and 280 px and Lite2 at 300 px, one RBF kernel readout) and its ONNX
# twin: about 15 minutes on 2 cores. Slower to score than the default, more accurate (MODEL_CARD.md).
# --force, as default-model.
accurate-model: $(VENV)/.installed
	$(VENV)/bin/picaffect retrain configs/accurate.yaml --force
	$(MAKE) accurate-calibration

# Prediction intervals for `accurate`, as default-calibration does them for the default (the same protocol and
# scheme), at its input side; also writes its ONNX twin. It prints the model's accuracy on each source when
# fitted on the other two (MODEL_CARD.md, "Accuracy"), and writes its evaluation record.
ACCURATE_CALIBRATION_DATA ?= $(shell $(RATED) folder 300 group)
accurate-calibration: $(VENV)/.installed
	test -f $(ACCURATE_CALIBRATION_DATA)/report.json || \
		$(VENV)/bin/picaffect build $(ACCURATE_CALIBRATION_DATA) $(RATED_SETS) --size 300 --split group
	$(VENV)/bin/picaffect calibrate accurate --data $(ACCURATE_CALIBRATION_DATA) --scheme pooled --constant \
		--out src/picaffect/weights/accurate.pt --onnx src/picaffect/weights/accurate.onnx

# Rebuild a shipped model as its make target does, in a temporary folder, and compare it with the shipped file:
# predictions on every validation row within 0.01, metadata equal but for dates and paths, the ONNX twin beside
# the checkpoint. Prints a table, writes results/shipped/check-$(MODEL).json, fails on a mismatch. A whole
# rebuild: a compute run (MODEL=default, about an hour on 2 cores; MODEL=accurate).
MODEL ?= default
check-shipped: $(VENV)/.installed
	$(PY) scripts/check_shipped.py $(MODEL)

# The shipped default as ONNX, for the torch-free predict path (run after changing weights/default.pt).
default-onnx: $(VENV)/.installed
	$(VENV)/bin/picaffect export default src/picaffect/weights/default.onnx

# Every speed benchmark in sequence, each beside its baseline or peer (about 25 minutes on 2 cores):
# results/bench/<date>.json, then `make figures` for the tables. Refuses while the 1-minute load
# average is 0.5 or more (BENCH_ARGS=--busy-ok to measure anyway, marked). The training peer runs
# when $(PEER_VENV) exists (make peer-venv) or PEER_PYTHON names a Python with tensorflow-cpu and keras.
bench: $(VENV)/.installed-test
	$(PY) -m benchmarks $(if $(PEER_PYTHON),--peer-python $(PEER_PYTHON)) --data $(DATA) $(BENCH_ARGS)

# Every generated block of README.md, MODEL_CARD.md, docs/*.md and results/**/README.md, rewritten from its
# record (results/**/*.json, the shipped model files' metadata, the command line's parsers): seconds.
figures: $(VENV)/.installed
	$(PY) scripts/figures.py

bench-table: figures

# The thesis's stack (Keras 3 on TensorFlow, CPU) in its own venv, never in .venv: the training peer.
peer-venv: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q tensorflow-cpu keras
	touch $@
