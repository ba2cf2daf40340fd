//! The official OpenAI Python SDK against the simulator: streams (with and without usage),
//! non-streamed responses and completions, for vLLM and for TGI's Messages API. Skipped
//! when the SDK is not installed, unless STRATA_REQUIRE_PEERS=1 (then it fails).

use testkit::sdk;

use sdk::{run_script, sdk_present};

use sim::server;
use sim::{EngineKind, SimConfig};
use tokio::net::TcpListener;

const SCRIPT: &str = r#"
import os, sys
from openai import OpenAI
c = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused")
model = c.models.list().data[0].id
parts, usage, finish = [], None, None
for chunk in c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}],
                                       max_tokens=9, stream=True, stream_options={"include_usage": True}):
    if chunk.usage is not None:
        usage = chunk.usage
    for ch in chunk.choices:
        if ch.delta.content:
            parts.append(ch.delta.content)
        if ch.finish_reason:
            finish = ch.finish_reason
assert usage is not None, "no usage chunk"
assert usage.completion_tokens == 9 == len(parts), (usage, parts)
assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + 9
assert finish == "length", finish
n = 0
for chunk in c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True):
    assert chunk.usage is None
    n += sum(1 for ch in chunk.choices if ch.delta.content)
assert n == 4, n
r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5 and r.choices[0].message.content
r = c.completions.create(model=model, prompt="Once upon a time", max_tokens=3)
assert r.usage.completion_tokens == 3 and r.choices[0].text
print("sdk ok", usage.prompt_tokens, "".join(parts).strip())
"#;

async fn check(engine: EngineKind) {
    let mut cfg = SimConfig::new(engine);
    cfg.load = false;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = server::start(&cfg, 20.0, l, None).await.unwrap();
    let base = format!("http://{}", r.engine_addr);
    let (ok, stdout, stderr) = run_script(SCRIPT, base).await;
    assert!(ok, "{engine:?}: {stdout}\n{stderr}");
    assert!(stdout.starts_with("sdk ok"), "{stdout}");
    r.shutdown().await;
}

#[tokio::test]
async fn the_openai_sdk_consumes_every_engines_openai_api() {
    if !sdk_present() {
        return;
    }
    for engine in EngineKind::ALL {
        check(engine).await;
    }
}
