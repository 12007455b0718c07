# edgellm: `make repro` runs the study, `make test` runs the tests. Both set everything up first.
#
# Set-up is cached so that only the first run on a machine is slow:
#   - .venv/                the virtual environment (pinned by requirements.lock)
#   - $(CACHE)/wheels       the llama-cpp-python wheel, built once from its sdist (~20 min on 2 cores)
#   - $(CACHE)/llama.cpp-*  llama.cpp's source (from the same sdist) and its tools, built once (~5 min)
# The caches are keyed by version and by the CPU's instruction set (the builds use -march=native).

SHELL := /bin/bash
PYTHON ?= python3
LLAMA_CPP_PYTHON := 0.3.36
CPU_KEY := $(shell (grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null; uname -m) | sha256sum | cut -c1-10)
# ggml's AMX backend stays off on x86: -march=native turns it on where the CPU has AMX (Sapphire Rapids and
# later), and there llama-completion and the Python runtime crash in ggml_backend_amx_mul_mat (llama.cpp issue
# #20824, closed unfixed; seen here on the tiny test models). Explicit -mno-* flags win over -march=native, so
# every x86 host runs the same AVX kernels; the flags are part of the cache keys.
NATIVE_FLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
# The GPU path: where CUDA's compiler is found and `nvidia-smi -L` lists a GPU (or with CUDA=on), llama-cpp-python
# and the tools are built with ggml's CUDA backend, and params.yaml's execution.n_gpu_layers offloads layers;
# CUDA=off forces the CPU build. nvcc alone is not enough: a CUDA build needs the driver's libcuda to load at all
# (this project's CI machines have the toolkit but no GPU). The choice is part of the cache keys.
CUDA ?= $(if $(and $(shell command -v nvcc 2> /dev/null),$(shell nvidia-smi -L 2> /dev/null | grep -m1 GPU)),on,off)
CUDA_FLAGS := $(if $(filter on,$(CUDA)),-DGGML_CUDA=on)
BUILD_KEY := $(shell echo "$(CPU_KEY) $(NATIVE_FLAGS)$(if $(CUDA_FLAGS), $(CUDA_FLAGS))" | sha256sum | cut -c1-10)
CACHE ?= $(HOME)/.cache/edgellm
WHEELHOUSE := $(CACHE)/wheels-$(BUILD_KEY)
TOOLS_HOME := $(CACHE)/llama.cpp-$(LLAMA_CPP_PYTHON)-$(BUILD_KEY)
TOOLS := llama-quantize llama-perplexity llama-bench llama-imatrix llama-completion
TOOLS_BUILT = $(TOOLS_HOME)/.built-$(shell echo $(TOOLS) | sha256sum | cut -c1-8)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgellm-installed
# PyPI's CDN cuts long downloads now and then (a 79 MB wheel stopped at 57.7 MB six times in one CI run): every
# pip that make runs, the model stage's `pip download` and the tests' smoke study included, reconnects and resumes.
# pip reads these from the environment; one older than 25.1 ignores the resume setting.
export PIP_RETRIES := 10
export PIP_RESUME_RETRIES := 30
export PIP_TIMEOUT := 60
# the aarch64 build for the device bundles: static, for any Armv8.2-A core with the dot product extension
# (Raspberry Pi 5, Jetson Orin, Pixel 8; not a Pi Zero 2 W / Pi 3 whose Cortex-A53 lacks it)
CROSS_HOME := $(CACHE)/llama.cpp-$(LLAMA_CPP_PYTHON)-aarch64
CROSS_TOOLS := llama-bench llama-completion llama-perplexity
ARM_ARCH := armv8.2-a+dotprod
# the same for plain Armv8-A (Cortex-A53: Raspberry Pi Zero 2 W, Pi 3), which the build above stops with SIGILL
CROSS_BASE_HOME := $(CACHE)/llama.cpp-$(LLAMA_CPP_PYTHON)-aarch64-armv8a
ARM_ARCH_BASE := armv8-a
# Debian packages the study needs (installed by `make sysdeps` where missing): the cross compiler and qemu
# for the device bundles, OpenSSH for the ssh runner's test, latexmk and a small TeX Live for the paper
SYSDEPS := cmake gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static openssh-client openssh-server \
  latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended

.PHONY: all setup sysdeps tools cross generic repro dvc test test-fast bench agree clean-venv

all: repro

setup: sysdeps $(STAMP) tools cross

# ---- Debian packages (cross compiler, qemu, OpenSSH, TeX), installed with apt where missing
sysdeps:
	@missing=""; for pkg in $(SYSDEPS); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2> /dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then echo ">> installing Debian packages:$$missing"; \
	  sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; fi

# ---- the llama-cpp-python wheel, built once per machine from PyPI's sdist
$(WHEELHOUSE)/.llama-cpp-python-$(LLAMA_CPP_PYTHON):
	@mkdir -p $(WHEELHOUSE)
	@echo ">> building llama-cpp-python $(LLAMA_CPP_PYTHON) from source (first time on this machine: ~20 min)"
	CMAKE_ARGS="-DCMAKE_C_FLAGS='$(NATIVE_FLAGS)' -DCMAKE_CXX_FLAGS='$(NATIVE_FLAGS)' $(CUDA_FLAGS)" \
	  $(PYTHON) -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python llama-cpp-python==$(LLAMA_CPP_PYTHON) -w $(WHEELHOUSE)
	@touch $@

# ---- the virtual environment
$(STAMP): pyproject.toml requirements.lock $(WHEELHOUSE)/.llama-cpp-python-$(LLAMA_CPP_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# a download that stalls through every resume is retried from scratch after a pause, twice
	for try in 1 2 3; do $(PY) -m pip install --quiet --find-links $(WHEELHOUSE) -r requirements.lock && break; \
	  [ $$try -lt 3 ] && echo ">> pip install failed (try $$try of 3); retrying in 60 s" && sleep 60 || exit 1; done
	# the wheelhouse's own build, even where the venv already holds this version (built with other flags)
	$(PY) -m pip install --quiet --no-deps --force-reinstall --no-index --find-links $(WHEELHOUSE) \
	  llama-cpp-python==$(LLAMA_CPP_PYTHON)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name edgellm --display-name "edgellm (.venv)" > /dev/null
	@touch $@

# ---- llama.cpp's source tree (converter, gguf-py) and tools, from the same sdist as the runtime
$(TOOLS_BUILT):
	@mkdir -p $(TOOLS_HOME)
	@echo ">> building llama.cpp tools ($(TOOLS)) from llama-cpp-python $(LLAMA_CPP_PYTHON)'s vendored tree"
	rm -rf $(TOOLS_HOME)/dl $(TOOLS_HOME)/src
	$(PYTHON) -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_PYTHON) -d $(TOOLS_HOME)/dl
	tar -xzf $(TOOLS_HOME)/dl/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(TOOLS_HOME)/dl
	mv $(TOOLS_HOME)/dl/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp $(TOOLS_HOME)/src
	rm -rf $(TOOLS_HOME)/dl
	cmake -S $(TOOLS_HOME)/src -B $(TOOLS_HOME)/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	  -DCMAKE_C_FLAGS="$(NATIVE_FLAGS)" -DCMAKE_CXX_FLAGS="$(NATIVE_FLAGS)" -DGGML_NATIVE=ON $(CUDA_FLAGS) \
	  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	  -DLLAMA_BUILD_SERVER=OFF > $(TOOLS_HOME)/cmake.log
	cmake --build $(TOOLS_HOME)/build -j$$(nproc) --target $(TOOLS) >> $(TOOLS_HOME)/cmake.log
	mkdir -p $(TOOLS_HOME)/bin && cp $(addprefix $(TOOLS_HOME)/build/bin/,$(TOOLS)) $(TOOLS_HOME)/bin/
	@touch $@

tools: $(TOOLS_BUILT)
	@ln -sfn $(TOOLS_HOME) .llama.cpp

# ---- the same llama.cpp tree cross-compiled for aarch64 Linux (device bundles; checked under qemu)
define cross_build
	@echo ">> cross-compiling llama.cpp ($(CROSS_TOOLS)) for aarch64 ($(2), static; first time: ~8 min)"
	cmake -S $(TOOLS_HOME)/src -B $(1)/build -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
	  -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
	  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DCMAKE_EXE_LINKER_FLAGS=-static \
	  -DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=$(2) -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF > $(1).log
	cmake --build $(1)/build -j$$(nproc) --target $(CROSS_TOOLS) >> $(1).log
	mkdir -p $(1)/bin && cp $(addprefix $(1)/build/bin/,$(CROSS_TOOLS)) $(1)/bin/
	@touch $(1)/.built
endef

$(CROSS_HOME)/.built: | $(TOOLS_BUILT)
	$(call cross_build,$(CROSS_HOME),$(ARM_ARCH))

$(CROSS_BASE_HOME)/.built: | $(TOOLS_BUILT)
	$(call cross_build,$(CROSS_BASE_HOME),$(ARM_ARCH_BASE))

cross: sysdeps $(CROSS_HOME)/.built $(CROSS_BASE_HOME)/.built
	@ln -sfn $(CROSS_HOME) .llama.cpp-aarch64
	@ln -sfn $(CROSS_BASE_HOME) .llama.cpp-aarch64-armv8a

# ---- a second x86 build of llama-perplexity with ggml's generic C kernels (no SIMD, no llamafile): the noise
# floor of benchmarks/bench_cross_build.py (two correct builds of a quantized model differ; ~8 min the first time)
GENERIC_HOME := $(CACHE)/llama.cpp-$(LLAMA_CPP_PYTHON)-x86-generic
$(GENERIC_HOME)/.built: | $(TOOLS_BUILT)
	@echo ">> building llama-perplexity with generic C kernels (first time: ~8 min)"
	cmake -S $(TOOLS_HOME)/src -B $(GENERIC_HOME)/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	  -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_SSE42=OFF \
	  -DGGML_AVX512=OFF -DGGML_BMI2=OFF -DGGML_LLAMAFILE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF > $(GENERIC_HOME).log
	cmake --build $(GENERIC_HOME)/build -j$$(nproc) --target llama-perplexity >> $(GENERIC_HOME).log
	mkdir -p $(GENERIC_HOME)/bin && cp $(GENERIC_HOME)/build/bin/llama-perplexity $(GENERIC_HOME)/bin/
	@touch $@

generic: $(GENERIC_HOME)/.built
	@ln -sfn $(GENERIC_HOME) .llama.cpp-generic

# ---- the two commands
# the params stage first, outside DVC: it refreshes results/pipeline.yaml (the variant table dvc.yaml reads) where
# params.yaml added or dropped a variant, so that one `dvc repro` runs the whole study
repro: setup
	$(PY) -m edgellm.stages.params params.yaml --pipeline results/pipeline.yaml > /dev/null || \
	  $(PY) -m edgellm.stages.params params.yaml --pipeline results/pipeline.yaml
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro
	@$(PY) -c "import pandas as pd; pd.set_option('display.width', 200); \
	  print(pd.read_csv('results/results.csv')[['variant', 'hf_params', 'bpw', 'file_mb', 'ppl', 'kld', 'gen_acc', 'gen_acc_n', 'halluc_mc1', 'mc2', 'informative', 'ti_rougeL', 'ti_embed', 'tg_ts']].round(3).to_string(index=False)); \
	  print(); print(pd.read_csv('results/tasks.csv')[['task', 'n', 'acc', 'chance', 'p_holm', 'in_headline']].round(4).to_string(index=False)); \
	  f = pd.read_csv('results/fleet.csv'); print(); print('generation tokens/s per device (* measured, others projected):'); \
	  f['tg'] = f.tg_ts.round(0).astype(int).astype(str) + f.measured.map({True: '*', False: ''}); \
	  print(f.pivot(index='variant', columns='device', values='tg').to_string()); \
	  print(pd.read_csv('results/accessibility.csv').to_string(index=False))"
	@echo "paper: paper/main.pdf"

# any dvc command with the venv on PATH (the stages run papermill and python from it), e.g.
#   make dvc ARGS="status"      make dvc ARGS="repro fleet"
dvc: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc $(ARGS)

# a private base temp dir: concurrent pytest sessions prune each other's default /tmp/pytest-of-* dirs
# Two workers (pytest-xdist), whole files each: the smoke study's end-to-end test, the longest file by far, goes
# first to one worker and everything else to the other (measured: 14 of the 23.5 minutes of one worker)
test: setup
	@d=$$(mktemp -d); $(PY) -m pytest -q -n 2 --dist loadfile --basetemp="$$d" tests/stages/test_pipeline_e2e.py tests; \
	  rc=$$?; rm -rf "$$d"; exit $$rc

# the fast tier: the tests that need no llama.cpp build, no model and no DVC, in a light environment of its own
# (the pins of requirements.lock for the packages these tests import; nothing is built)
FAST_VENV := .venv-fast
FAST_PACKAGES := numpy|pandas|scipy|statsmodels|matplotlib|seaborn|adjusttext|pydantic|pyyaml|nbformat|gguf|jinja2|tqdm|pytest|import-linter
FAST_TESTS := tests/config tests/test_paths.py tests/test_io.py tests/test_architecture.py tests/stages/test_publish.py \
  tests/stages/test_code.py tests/stages/test_block_kl.py tests/stages/test_params.py tests/eval/test_stats.py tests/eval/test_klref.py \
  tests/devices/test_energy.py tests/devices/test_fleet.py tests/devices/test_published.py \
  tests/devices/test_validation.py tests/devices/test_verdicts.py tests/devices/test_latency.py tests/report

$(FAST_VENV)/.installed: pyproject.toml requirements.lock
	test -x $(FAST_VENV)/bin/python || $(PYTHON) -m venv $(FAST_VENV)
	grep -iE "^($(FAST_PACKAGES))==" requirements.lock > $(FAST_VENV)/requirements.txt
	$(FAST_VENV)/bin/python -m pip install --quiet -r $(FAST_VENV)/requirements.txt -c requirements.lock
	$(FAST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $@

test-fast: $(FAST_VENV)/.installed
	@d=$$(mktemp -d); $(FAST_VENV)/bin/python -m pytest -q -m "not slow" -p no:cacheprovider --basetemp="$$d" $(FAST_TESTS); \
	  rc=$$?; rm -rf "$$d"; exit $$rc

bench: setup generic
	$(PY) benchmarks/bench_cross_build.py
	$(PY) benchmarks/bench_perplexity.py
	$(PY) benchmarks/bench_profile.py
	$(PY) benchmarks/bench_scorer.py

# lm-evaluation-harness itself against the project (the agreement stage; params.yaml's `agreement` sets the items)
agree: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro agreement

clean-venv:
	rm -rf $(VENV)
