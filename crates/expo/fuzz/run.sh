#!/usr/bin/env bash
# Seeds the corpus from the reference samples and fuzzes the `parse` target for
# ${FUZZ_SECONDS:-60} seconds. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a
# stable toolchain RUSTC_BOOTSTRAP=1 enables the nightly flags it uses.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/parse
for f in ../tests/samples/*.prom; do
    cp -f "$f" "corpus/parse/$(basename "$f")"
done
# Small OpenMetrics seeds for the features the samples lack.
printf '# TYPE foo counter\n# UNIT foo seconds\n# HELP foo h \\"q\\"\nfoo_total 1 1700000000.5 # {trace_id="abc"} 0.5 1700000000.123\nfoo_created 1.5\n# EOF\n' > corpus/parse/om-seed
printf 'a{b="c\\\\d\\"e\\n",} NaN -5\r\nb{} +Inf\n# EOF\n' > corpus/parse/escapes-seed
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
exec cargo fuzz run parse -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096
