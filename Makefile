# Developer entry points. Every target sets up what it needs (scripts/bootstrap.sh):
#   make demo          run the main job: a real asyncio workload on ringloop, asyncio, uvloop
#   make test          build ringloop and run the whole test suite (Python + C unit tests)
#   make test-epoll    the same suite on the epoll backend (RINGLOOP_BACKEND=epoll)
#   make bench         run the benchmarks (ringloop vs asyncio vs uvloop, one run)
#   make test-asan     the test suite against an ASan/UBSan build
# PY=3.13 picks another installed Python (python3.13 or pyenv's 3.13.x).
PY ?= 3.11
PYTHON ?= $(shell scripts/find-python.sh $(PY))
VENV ?= .venv-$(PY)
DEV_FLAGS = -C cmake.define.RINGLOOP_WERROR=ON -C build-dir=build/$(PY)

.PHONY: demo test test-epoll bench test-asan install format

install:
	@scripts/bootstrap.sh "$(PYTHON)" $(VENV) $(DEV_FLAGS)

demo: install
	$(VENV)/bin/python -m ringloop

test: install
	$(VENV)/bin/python -m pytest tests

test-epoll: install
	RINGLOOP_BACKEND=epoll $(VENV)/bin/python -m pytest tests

bench: install
	$(VENV)/bin/python -m pytest benchmarks -s

test-asan:
	@scripts/bootstrap.sh "$(PYTHON)" .venv-asan-$(PY) $(DEV_FLAGS)-asan \
	  -C cmake.define.RINGLOOP_SANITIZE=address,undefined -C cmake.build-type=Debug
	scripts/run-asan.sh .venv-asan-$(PY)/bin/python -m pytest tests

format:
	clang-format -i csrc/*/*.c csrc/*/*.h tests/c/*.c
