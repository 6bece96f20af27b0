# One-command entry points for a fresh machine. Each target sets up .venv itself.
# TORCH_SPEC picks the torch build installed when the venv has none; override it to keep your own
# (for example TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124").
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# MONAI Label server environment (separate: monailabel's pydicom-seg pins jsonschema<4, this package needs >=4;
# see monai_sadaan/monailabel/requirements.txt). `make monailabel-serve STUDIES=/path/to/cts [PORT=8000]`.
ML_VENV ?= .venv-monailabel
ML_PY := $(ML_VENV)/bin/python
ML_STAMP := $(ML_VENV)/.installed
MONAILABEL_SPEC ?= monailabel==0.8.5
PORT ?= 8000

.PHONY: setup demo test bench clean monailabel monailabel-serve

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m monai_sadaan.demo --output_dir outputs/demo

$(ML_STAMP): monai_sadaan/monailabel/requirements.txt setup.cfg pyproject.toml
	test -x $(ML_PY) || $(PYTHON) -m venv $(ML_VENV)
	$(ML_PY) -m pip install --quiet --upgrade pip
	$(ML_PY) -c "import torch" 2>/dev/null || $(ML_PY) -m pip install --quiet $(TORCH_SPEC)
	$(ML_PY) -m pip install --quiet -r monai_sadaan/monailabel/requirements.txt
	$(ML_PY) -m pip install --quiet --no-deps $(MONAILABEL_SPEC)
	$(ML_PY) -m pip install --quiet --no-deps -e .
	$(ML_PY) -c "import monai_sadaan.monailabel.app"
	touch $(ML_STAMP)

monailabel: $(ML_STAMP)

monailabel-serve: $(ML_STAMP)
	@test -n "$(STUDIES)" || { echo "usage: make monailabel-serve STUDIES=/path/to/cts [PORT=8000]" >&2; exit 2; }
	$(ML_PY) -m monai_sadaan.monailabel serve --studies "$(STUDIES)" --port $(PORT)

# SADAAN_REQUIRE_MONAILABEL=1: the MONAI Label server test fails instead of skipping when its environment is missing
test: $(STAMP) $(ML_STAMP)
	SADAAN_REQUIRE_MONAILABEL=1 $(PY) -m pytest -n 2 -q tests

clean:
	rm -rf $(VENV) $(ML_VENV) outputs build *.egg-info
