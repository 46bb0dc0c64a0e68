# ganlite: the two commands users need are `make demo` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
DEMO_OUT ?= demo_out
CMAKE_ARGS ?=

.PHONY: all setup configure build cli test test-avx2 demo bench clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Only the executable, so that `make demo` does not wait for the tests and benches to compile.
cli: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target ganlite_cli

# The CLI and the test binaries only (the benches build with `make build` / `make bench`).
test: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target ganlite_tests
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The suite as on a CPU with AVX2 only: oneDNN and OpenBLAS kept to AVX2 kernels (README.md).
test-avx2: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target ganlite_tests
	@cd $(BUILD_DIR) && ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell \
		ctest --output-on-failure -j $(JOBS) --timeout 900

demo: cli
	@$(BUILD_DIR)/ganlite demo --out $(DEMO_OUT) --force

bench: build
	@bash bench/run_all.sh $(BUILD_DIR)

clean:
	@rm -rf $(BUILD_DIR)
