#!/usr/bin/env bash
# The everyday check, minutes not a quarter of an hour: formatting, lints (warnings are
# errors, as in CI), the docs build, and every unit test (no live processes, no peers).
# The full suite is scripts/test.sh; CI (.ci/run) runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -j2 -- -D warnings
# The libraries' docs, internals included (the binary's doc comments are its --help text).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --exclude strata --no-deps --document-private-items -j2 --quiet
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --lib --bins -j2 --build-jobs 2
else
  cargo test --workspace --lib --bins -j2
fi
