# SPDX-License-Identifier: MIT
# Front door for a fresh machine. `make demo` runs the demo on the detected
# topology; `make test` builds and runs every test. Both install missing
# build dependencies with apt when run as root (otherwise they print the
# exact apt-get line). The real build is CMake; this file only drives it.

# libnats-dev (the NATS C client) builds cluster support, nats-server runs
# its tests; both optional for the library itself (cluster calls then return
# VZ_ENOSYS and the cluster test skips).
DEB_PACKAGES := build-essential cmake pkg-config liburing-dev libnuma-dev libcmocka-dev \
	libinih-dev libseccomp-dev libnats-dev nats-server
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: demo test test-asan test-tsan deps bench clean

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

build/.configured: CMakeLists.txt
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVZ_BUILD_TESTS=OFF -DVZ_BUILD_BENCH=OFF \
		-DVZ_FAULT_INJECTION=OFF
	@touch $@

# Builds the library, the demo and the tools (release, no fault injection).
demo: deps build/.configured
	cmake --build build -j$(JOBS)
	./build/actors/veloz-demo

# Every test (unit, stress, integration) on both backends.
test: deps
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVZ_WERROR=ON
	cmake --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVZ_ASAN=ON -DVZ_UBSAN=ON -DVZ_WERROR=ON -DVZ_BUILD_BENCH=OFF
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVZ_TSAN=ON -DVZ_WERROR=ON -DVZ_BUILD_BENCH=OFF
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

bench:
	bench/publish $(BENCH_ARGS)

clean:
	rm -rf build build-test build-asan build-tsan build-bench
