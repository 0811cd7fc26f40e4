#!/usr/bin/env bash
# Makes sure what the build needs beyond Rust is installed: llama.cpp (the embedded chat
# model, built by the llama-cpp-sys-2 crate) needs cmake, a C/C++ compiler and libclang for
# bindgen; fetching the model files needs python3 with pip. Installs Debian's packages when
# something is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing build dependencies: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# llama.cpp is built as CMake's Release (.cargo/config.toml). A build directory configured
# before that keeps its old type (llama-cpp-sys-2 does not configure CMake again), so a
# RelWithDebInfo one (-O2, about 15% slower decoding) is cleaned once to be built again.
target="${CARGO_TARGET_DIR:-target}"
for cache in "$target"/{debug,release}/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt; do
  [ -f "$cache" ] || continue
  if grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$cache"; then
    profile="$(basename "$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$cache")")")")")")"
    echo "llama.cpp in $target/$profile was built as RelWithDebInfo: cleaning it to build it as Release"
    if [ "$profile" = release ]; then
      ${CARGO:-cargo} clean -p llama-cpp-sys-2 --release
    else
      ${CARGO:-cargo} clean -p llama-cpp-sys-2
    fi
  fi
done
