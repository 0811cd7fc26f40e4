#!/usr/bin/env bash
# Prints GGML_<FEATURE>=ON for the x86 SIMD features this CPU has, for llama.cpp's build
# (see the Makefile). Prints nothing elsewhere (ARM builds pick their own).
set -euo pipefail
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
out=()
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 sse4_2:SSE42; do
  if [[ "$flags" == *" ${pair%%:*} "* ]]; then out+=("GGML_${pair#*:}=ON"); fi
done
echo "${out[*]:-}"
