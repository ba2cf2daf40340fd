#!/usr/bin/env bash
# Seeds the corpus with OpenAI, llama.cpp and TGI streams and fuzzes the `sse` target (the
# gateway's SSE tee parser) for ${FUZZ_SECONDS:-60} seconds. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the
# nightly flags it uses.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/sse
# The first byte of each seed picks the cut points; the rest is the upstream's body.
printf '\x03data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"I cannot"},"finish_reason":null}]}\n\ndata: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: {"id":"x","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\n\ndata: [DONE]\n\n' > corpus/sse/openai
printf '\x07data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"usage":{"completion_tokens":3,"prompt_tokens":458},"timings":{"cache_n":457,"prompt_n":1,"predicted_n":3}}\r\n\r\ndata: [DONE]\r\n\r\n' > corpus/sse/llamacpp
printf '\x05data:{"token":{"id":1,"text":"hi","special":false},"generated_text":null,"details":null}\n\ndata:{"token":{"id":2,"text":"!","special":false},"generated_text":"hi!","details":{"finish_reason":"eos_token","generated_tokens":2}}\n\n' > corpus/sse/tgi
printf '\x01foo\n: comment\nevent: message\nid: 1\nretry: 5\ndata: {"choices":[{"text":"a",\ndata: "finish_reason":"length"}]}\n\ndata: {not json\n\n' > corpus/sse/fields
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
exec cargo fuzz run sse -- -max_total_time="${FUZZ_SECONDS:-60}" -max_len=8192
