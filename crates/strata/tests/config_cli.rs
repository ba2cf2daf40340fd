//! `strata config check` checks what `strata up` checks before it starts (so a file it passes
//! starts), and never prints a password from a URL.

use std::process::{Command, Output};

fn check(dir: &std::path::Path, toml: &str) -> Output {
    let path = dir.join("strata.toml");
    std::fs::write(&path, toml).expect("write");
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .current_dir(dir)
        .args(["--config", path.to_str().expect("utf-8"), "config", "check"])
        .output()
        .expect("run strata")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn config_check_refuses_what_up_refuses_and_hides_passwords() {
    let dir = tempfile::tempdir().expect("tempdir");

    let o = check(dir.path(), "[rules]\nslo_profile = \"batch\"\n");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("unknown SLO profile"), "{}", text(&o));

    let clash = "[api]\nlisten = \"127.0.0.1:9464\"\n[gateway]\nlisten = \"127.0.0.1:9464\"\n[[gateway.upstream]]\nname = \"a\"\nurl = \"http://127.0.0.1:8000\"\n";
    let o = check(dir.path(), clash);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("[api] listen and [gateway] listen are both 127.0.0.1:9464"),
        "{}",
        text(&o)
    );

    let secret =
        "[[target]]\nname = \"vllm\"\nurl = \"http://metrics:s3cret@127.0.0.1:8000/metrics\"\n";
    let o = check(dir.path(), secret);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("s3cret"), "{}", text(&o));
    assert!(
        text(&o).contains("http://metrics:***@127.0.0.1:8000/metrics"),
        "{}",
        text(&o)
    );

    std::fs::write(dir.path().join("token"), "t0k3n\n").expect("token");
    let both = format!("{secret}bearer_token_file = \"token\"\n");
    let o = check(dir.path(), &both);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("only one would be sent"), "{}", text(&o));
    assert!(!text(&o).contains("s3cret"), "{}", text(&o));

    let o = check(dir.path(), "[gateway]\nlisten = \"127.0.0.1:8089\"\n");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("lists no [[gateway.upstream]]"),
        "{}",
        text(&o)
    );
}
