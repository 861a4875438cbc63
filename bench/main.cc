// SPDX-License-Identifier: MIT
// bench/main.cc - entry point of altstack-bench.  Before the run it records
// the CPU and the features the results depend on in the benchmark context
// (printed by google-benchmark and kept in its JSON output, which
// scripts/bench prints above its table).
#include <benchmark/benchmark.h>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/auxv.h>
#if defined(__x86_64__)
# include <cpuid.h>
#endif
extern "C" {
#include <altstack.h>
}

static void cpu_context()
{
    std::string strategy = as_switch_fp_strategy() == AS_FP_RELOAD ? "reload" : "compare";
    benchmark::AddCustomContext("as_exact_strategy", strategy);
#if defined(__x86_64__)
    unsigned a, b, c, d;
    char vendor[13] = {0};
    __cpuid(0, a, b, c, d);
    unsigned max = a;
    memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
    __cpuid(1, a, b, c, d);
    unsigned family = (a >> 8 & 0xf) + ((a >> 8 & 0xf) == 0xf ? (a >> 20 & 0xff) : 0);
    unsigned model = (a >> 4 & 0xf) | ((a >> 8 & 0xf) >= 6 ? (a >> 12 & 0xf0) : 0);
    bool xsave = c >> 26 & 1;
    char fm[64];
    snprintf(fm, sizeof fm, "family %u model %u stepping %u", family, model, a & 0xf);
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; i++) {
        __cpuid(0x80000002 + i, a, b, c, d);
        memcpy(brand + 16 * i, &a, 4), memcpy(brand + 16 * i + 4, &b, 4);
        memcpy(brand + 16 * i + 8, &c, 4), memcpy(brand + 16 * i + 12, &d, 4);
    }
    bool fsgsbase = false, pku = false;
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        fsgsbase = b & 1;
        pku = c >> 3 & 1;
    }
    unsigned xsave_size = 0;
    if (xsave && max >= 0xd) {
        __cpuid_count(0xd, 0, a, b, c, d);
        xsave_size = b;                 // for the components XCR0 enables
    }
    bool os_fsgsbase = getauxval(AT_HWCAP2) & 2;
    benchmark::AddCustomContext("cpu_vendor", vendor);
    benchmark::AddCustomContext("cpu_model", brand);
    benchmark::AddCustomContext("cpu_family_model", fm);
    benchmark::AddCustomContext("cpu_features",
        std::string("FSGSBASE ") + (fsgsbase ? (os_fsgsbase ? "yes (enabled)" : "yes (OS off)") : "no") +
        ", PKU " + (pku ? "yes" : "no") +
        ", XSAVE " + (xsave ? std::to_string(xsave_size) + " bytes" : "no"));
#else
    char line[256], impl[64] = "?", part[64] = "?";
    if (FILE *f = fopen("/proc/cpuinfo", "r")) {
        while (fgets(line, sizeof line, f)) {
            sscanf(line, "CPU implementer : %63s", impl);
            sscanf(line, "CPU part : %63s", part);
        }
        fclose(f);
    }
    benchmark::AddCustomContext("cpu_vendor", std::string("implementer ") + impl);
    benchmark::AddCustomContext("cpu_model", std::string("part ") + part);
    unsigned long hw2 = getauxval(AT_HWCAP2);
    benchmark::AddCustomContext("cpu_features",
        std::string("BTI ") + (hw2 & (1ul << 17) ? "yes" : "no") +
        ", PAC " + (getauxval(AT_HWCAP) & (1ul << 30) ? "yes" : "no"));
#endif
}

int main(int argc, char **argv)
{
    cpu_context();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
