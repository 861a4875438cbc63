// SPDX-License-Identifier: MIT
// bench/main.cc - entry point of altstack-bench.
#include <benchmark/benchmark.h>
BENCHMARK_MAIN();
