#!/usr/bin/env bash
# Prints GGML_<FEATURE>=ON for the x86 SIMD features this CPU has, for llama.cpp's build
# (see the Makefile). Prints nothing elsewhere (ARM builds pick their own).
set -euo pipefail
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { [[ "$flags" == *" $1 "* ]]; }
out=()
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 sse4_2:SSE42 avx_vnni:AVX_VNNI; do
  if has "${pair%%:*}"; then out+=("GGML_${pair#*:}=ON"); fi
done
# GGML_AVX512 compiles with -mavx512f/cd/vl/dq/bw: all five or none.
if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
  out+=("GGML_AVX512=ON")
  for pair in avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if has "${pair%%:*}"; then out+=("GGML_${pair#*:}=ON"); fi
  done
fi
echo "${out[*]:-}"
