#!/usr/bin/env bash
# Seeds the corpus with PromQL from the crate's tests and fuzzes the `promql` target (parse +
# evaluate against a tiny store) for ${FUZZ_SECONDS:-60} seconds. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# nightly flags it uses.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/promql
# Raw-text seeds (first byte even): every query of the differential corpus and the evals of
# the project's promqltest scripts.
n=0
while IFS= read -r q; do
    case "$q" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    printf '\000%s' "$q" > "corpus/promql/corpus-$n"
done < ../tests/promql_corpus.txt
for f in ../tests/promqltest/*.test; do
    grep -E '^eval' "$f" | sed -E 's/^eval(_[a-z]+)? (instant at [^ ]+|range from [^ ]+ to [^ ]+ step [^ ]+) //' |
    while IFS= read -r q; do
        n=$((n + 1))
        printf '\000%s' "$q" > "corpus/promql/script-$(basename "$f" .test)-$n"
    done
done
# Generated-expression seeds (first byte odd).
printf '\001\004\006\001\002\003\004\005\006\007' > corpus/promql/gen-seed
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
exec cargo fuzz run promql -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 -timeout=10 -rss_limit_mb=2048
