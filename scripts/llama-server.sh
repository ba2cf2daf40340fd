#!/usr/bin/env bash
# Builds a real llama-server (CPU only) and a tiny random-weight GGUF model for the tests that
# run Strata against a real llama.cpp. Both are cached outside the checkout, so a second run
# only checks that they exist:
#   ${STRATA_CACHE:-~/.cache/strata}/llama-server-<version>/bin/llama-server
#   ${STRATA_CACHE:-~/.cache/strata}/llama-server-<version>/tiny.gguf
# The llama.cpp sources are the ones vendored in the llama-cpp-python sdist on PyPI (pinned
# below), so the build needs PyPI and a C++ compiler, not GitHub. Prints the cache directory.
#   LLAMA_CPP_PYTHON_VERSION   sdist to build from (default: the pinned one)
#   JOBS                       parallel compile jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
cache="${STRATA_CACHE:-$HOME/.cache/strata}/llama-server-$version"
bin="$cache/bin/llama-server"
model="$cache/tiny.gguf"
jobs="${JOBS:-2}"

pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "$@"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x "$bin" ]; then
  if ! command -v c++ >/dev/null 2>&1; then
    echo "== installing g++ (llama.cpp is C++)" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends g++ >/dev/null
  fi
  command -v cmake >/dev/null 2>&1 || pip_install cmake
  command -v ninja >/dev/null 2>&1 || pip_install ninja
  # --no-build-isolation: pip would otherwise build the sdist's build backend (and CMake) from
  # source just to read its metadata, because --no-binary covers build dependencies too.
  python3 -c "import scikit_build_core" >/dev/null 2>&1 || pip_install scikit-build-core
  # The build folder lives in the cache too: an interrupted build resumes where it stopped.
  work="$cache/src"
  mkdir -p "$work"
  echo "== downloading the llama-cpp-python $version sdist (its vendored llama.cpp)" >&2
  [ -f "$work/llama_cpp_python-$version.tar.gz" ] ||
    python3 -m pip download --quiet --no-binary :all: --no-deps --no-build-isolation \
    "llama-cpp-python==$version" -d "$work" >&2
  [ -d "$work/llama_cpp_python-$version" ] ||
    tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  echo "== building llama-server (CPU, Release, $jobs jobs)" >&2
  start=$(date +%s)
  # -O1 instead of Release's -O3: the C++ of ggml and the server compiles in about half the
  # time, and a 2-layer test model does not need the faster kernels.
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENMP=OFF \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON >&2
  nice -n 10 cmake --build "$work/build" --target llama-server -j "$jobs" >&2
  mkdir -p "$cache/bin"
  cp "$work/build/bin/llama-server" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
  echo "== llama-server built in $(($(date +%s) - start)) s" >&2
fi

if [ ! -s "$model" ]; then
  python3 -c "import gguf" >/dev/null 2>&1 || pip_install gguf
  python3 scripts/tiny_gguf.py "$model.tmp" >&2
  mv "$model.tmp" "$model"
fi
echo "$cache"
