//! The real OpenAI Python SDK as a client: whether it is installed (a failure under
//! `STRATA_REQUIRE_PEERS=1`, a skip otherwise) and one script run against a base URL.
//! Shared by the simulator's and the gateway's SDK tests.

use std::process::Command;

/// Whether `python3 -c "import openai"` works.
pub fn sdk_present() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the OpenAI Python SDK is missing (pip install openai) and STRATA_REQUIRE_PEERS=1"
        );
        eprintln!("skipped: the OpenAI Python SDK is not installed (pip install openai)");
    }
    ok
}

/// Runs `script` with `BASE_URL=base`: whether it succeeded, its stdout and its stderr.
pub async fn run_script(script: &'static str, base: String) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", script])
            .env("BASE_URL", base)
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
