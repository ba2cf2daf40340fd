//! The official OpenAI Python SDK streams through the gateway and gets exactly what a
//! direct connection gets (two identical simulators, same requests), with usage exactly
//! when it asks. Skipped without the SDK unless STRATA_REQUIRE_PEERS=1 (then it fails).

mod common;
use testkit::sdk;

use std::time::Duration;

use common::*;
use sdk::{run_script, sdk_present};
use sim::EngineKind;

const SCRIPT: &str = r#"
import json, os
from openai import OpenAI
c = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused", max_retries=0)
model = c.models.list().data[0].id
out = {}
for name, opts in [("usage", {"include_usage": True}), ("no_usage", None), ("usage_false", {"include_usage": False})]:
    kw = {"stream_options": opts} if opts is not None else {}
    parts, usage, finish, n_usage = [], None, None, 0
    for chunk in c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Tell me about " + name}],
                                           max_tokens=9, stream=True, **kw):
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
            n_usage += 1
        for ch in chunk.choices:
            if ch.delta.content:
                parts.append(ch.delta.content)
            if ch.finish_reason:
                finish = ch.finish_reason
    out[name] = {"parts": parts, "usage": usage, "usage_chunks": n_usage, "finish": finish}
parts, usage = [], None
for chunk in c.completions.create(model=model, prompt="Once upon a time", max_tokens=5, stream=True):
    parts.extend(ch.text for ch in chunk.choices if ch.text)
    usage = usage or (chunk.usage and chunk.usage.model_dump())
out["completion_stream"] = {"parts": parts, "usage": usage}
r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
out["whole"] = {"content": r.choices[0].message.content, "usage": r.usage.model_dump(), "finish": r.choices[0].finish_reason}
print(json.dumps(out))
"#;

async fn run_sdk(base: String) -> serde_json::Value {
    let (ok, stdout, stderr) = run_script(SCRIPT, base).await;
    assert!(ok, "{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn the_openai_sdk_streams_through_the_gateway_as_directly() {
    if !sdk_present() {
        return;
    }
    for engine in [EngineKind::Vllm, EngineKind::Tgi, EngineKind::Llamacpp] {
        let (_d, log) = temp_log();
        let direct = sim(engine, 20.0, |_| {}).await;
        let behind = sim(engine, 20.0, |_| {}).await;
        let gw = gateway(config(
            &[("up", url(behind.engine_addr, ""), engine.name())],
            &log,
        ))
        .await;
        let a = run_sdk(url(direct.engine_addr, "")).await;
        let b = run_sdk(url(gw.addr, "")).await;
        assert_eq!(a, b, "{engine:?}: identical content through the gateway");
        assert_eq!(b["usage"]["usage_chunks"], 1, "{engine:?}");
        assert_eq!(b["usage"]["usage"]["completion_tokens"], 9);
        assert_eq!(
            b["no_usage"]["usage_chunks"], 0,
            "{engine:?}: no usage unless asked"
        );
        assert_eq!(b["usage_false"]["usage_chunks"], 0, "{engine:?}");
        assert_eq!(b["no_usage"]["parts"].as_array().unwrap().len(), 9);
        assert_eq!(b["whole"]["finish"], "length");
        // Exact token counts on the gateway side for every request, asked or not.
        let lines = log_lines(&log, 6).await;
        let llm: Vec<_> = lines.iter().filter(|l| l["path"] != "/v1/models").collect();
        assert_eq!(llm.len(), 5);
        for l in &llm {
            assert!(
                l["generation_tokens"] == 9
                    || l["generation_tokens"] == 5
                    || l["generation_tokens"] == 4,
                "{l}"
            );
            assert!(
                l["prompt_tokens"].as_u64().is_some_and(|p| p > 0),
                "{engine:?}: {l}"
            );
        }
        gw.shutdown(Duration::from_secs(1)).await;
        direct.shutdown().await;
        behind.shutdown().await;
    }
}
