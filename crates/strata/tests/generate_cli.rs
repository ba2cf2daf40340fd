//! `strata generate` against the real tools: the rule files pass `promtool check rules`,
//! the generated unit tests pass `promtool test rules` (Prometheus fires what Strata's
//! evaluator fired, alert by alert) and fail when an expectation is altered, Alertmanager's
//! config passes `amtool check-config`, vmagent's dry run accepts its scrape and relabel
//! configs, and the collector, vmagent, Tetragon and Kubernetes YAML carry the seeds' fields.

use testkit::peer;

use testkit::live;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `strata generate WHAT` for each of `what`, into `dir/WHAT` (with `config` when given).
fn generate(dir: &Path, config: Option<&Path>, what: &[&str]) {
    for w in what {
        generate_one(&dir.join(w), config, w);
    }
}

fn generate_one(dir: &Path, config: Option<&Path>, what: &str) {
    generate_with(dir, config, what, &[]);
}

fn generate_with(dir: &Path, config: Option<&Path>, what: &str, flags: &[&str]) {
    let mut c = live::strata();
    if let Some(config) = config {
        c.arg("--config").arg(config);
    }
    let out = c
        .args(["generate", what])
        .args(flags)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run strata generate");
    assert!(
        out.status.success(),
        "strata generate {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run peer");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read generated file");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read generated file");
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rules_pass_promtool_and_its_unit_tests_agree_with_strata() {
    let Some(promtool) = peer::find("promtool", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    // The documented example: a custom [[slo]] profile and [cost] besides the packs.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../strata.example.toml");
    generate(dir.path(), Some(&example), &["rules", "rule-tests"]);
    let rules: Vec<_> = std::fs::read_dir(dir.path().join("rules"))
        .expect("rules dir")
        .map(|e| e.expect("entry").path())
        .collect();
    for name in [
        "canonical.yml",
        "alerts.yml",
        "diagnoses.yml",
        "slo-chat.yml",
        "slo-batch.yml",
        "cost.yml",
    ] {
        assert!(
            rules.iter().any(|r| r.ends_with(name)),
            "{name} missing: {rules:?}"
        );
    }
    let (ok, out) = run(Command::new(&promtool)
        .args(["check", "rules"])
        .args(&rules));
    assert!(ok, "promtool check rules:\n{out}");

    let test = dir.path().join("rule-tests/rules.test.yml");
    let (ok, out) = run(Command::new(&promtool).args(["test", "rules"]).arg(&test));
    assert!(
        ok,
        "promtool test rules (Prometheus and Strata disagree):\n{out}"
    );

    // The tests check something: every alert name of the packs is expected to fire
    // somewhere, and an altered expectation fails.
    let text = std::fs::read_to_string(&test).expect("test file");
    for alert in [
        "LLMKVCacheExhaustion",
        "DiagnosisCacheThrash",
        "LLMSLOBurnRateTtft",
        "GPUXidError",
    ] {
        assert!(
            text.contains(&format!("alertname: {alert}")),
            "{alert} not tested"
        );
    }
    let altered = text.replacen("severity: page", "severity: ticket", 1);
    assert_ne!(altered, text);
    std::fs::write(&test, altered).expect("write");
    let (ok, out) = run(Command::new(&promtool).args(["test", "rules"]).arg(&test));
    assert!(!ok, "an altered expectation must fail:\n{out}");
}

#[test]
fn alertmanager_config_passes_amtool_with_the_packs_inhibitions() {
    let Some(amtool) = peer::find("amtool", "prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    generate(dir.path(), None, &["alertmanager"]);
    let file = dir.path().join("alertmanager/alertmanager.yml");
    let (ok, out) = run(Command::new(&amtool).arg("check-config").arg(&file));
    assert!(ok, "amtool check-config:\n{out}");
    let am = yaml(&file);
    let routes = am["route"]["routes"].as_array().expect("routes");
    for severity in ["page", "ticket"] {
        assert!(
            routes.iter().any(|r| r["receiver"] == severity
                && r["matchers"][0] == format!("severity=\"{severity}\"")),
            "no {severity} route: {routes:?}"
        );
    }
    let pack = rules::packs::inhibit_rules(rules::packs::INHIBIT).expect("pack");
    assert_eq!(
        am["inhibit_rules"].as_array().map(Vec::len),
        Some(pack.len())
    );
    assert_eq!(
        am["inhibit_rules"][0]["equal"],
        serde_json::json!(["instance", "model"])
    );

    std::fs::write(&file, "route:\n  receiver: nobody\nreceivers: []\n").expect("write");
    let (ok, _) = run(Command::new(&amtool).arg("check-config").arg(&file));
    assert!(!ok, "amtool must refuse an undefined receiver");
}

#[test]
fn vmagent_dry_run_accepts_the_scrape_and_relabel_configs() {
    let Some(vmagent) = peer::find("vmagent", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    generate(dir.path(), None, &["vmagent"]);
    let vm = dir.path().join("vmagent");
    let dry = |scrape: &Path| {
        run(Command::new(&vmagent)
            .arg("-dryRun")
            .arg(format!("-promscrape.config={}", scrape.display()))
            .arg(format!(
                "-remoteWrite.relabelConfig={}",
                vm.join("relabel.yml").display()
            ))
            .arg("-loggerLevel=ERROR"))
    };
    let (ok, out) = dry(&vm.join("scrape.yml"));
    assert!(ok, "vmagent -dryRun:\n{out}");
    let bad = vm.join("bad.yml");
    let text = std::fs::read_to_string(vm.join("scrape.yml")).expect("scrape");
    std::fs::write(&bad, text.replace("scrape_interval:", "scrape_intervall:")).expect("write");
    let (ok, _) = dry(&bad);
    assert!(!ok, "vmagent must refuse an unknown key");

    // Stream aggregation (not in the Debian 1.79 vmagent): parsed and checked here.
    let aggr = yaml(&vm.join("stream-aggr.yml"));
    let first = &aggr[0];
    assert!(
        first["match"]
            .as_str()
            .is_some_and(|m| m.contains("strata_gateway_"))
    );
    assert_eq!(first["by"], serde_json::json!(["model", "tenant", "le"]));
    assert_eq!(first["outputs"], serde_json::json!(["total"]));
    assert_eq!(first["keep_metric_names"], true);
    let relabel = yaml(&vm.join("relabel.yml"));
    assert_eq!(relabel[0]["action"], "labeldrop");
}

#[test]
fn collector_tetragon_and_k8s_carry_the_seeds_fields_and_the_config_targets() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[[target]]\nname = \"tgi\"\nurl = \"http://tgi-0.inference:8080/metrics\"\n\n\
         [[target]]\nname = \"dcgm\"\nurl = \"http://localhost:9400/metrics\"\nkind = \"gpu\"\n\n\
         [gateway.sampling]\ntenants = [\"enterprise_a\"]\nslow_ttft = \"3s\"\nbaseline_percent = 10\n",
    )
    .expect("config");
    let out = dir.path().join("out");
    generate(&out, Some(&config), &["otelcol", "tetragon", "k8s"]);

    let col = yaml(&out.join("otelcol/otelcol.yaml"));
    let scrapes = &col["receivers"]["prometheus"]["config"]["scrape_configs"];
    assert_eq!(scrapes[0]["job_name"], "tgi");
    assert_eq!(
        scrapes[0]["static_configs"][0]["targets"][0],
        "tgi-0.inference:8080"
    );
    assert_eq!(scrapes[1]["job_name"], "dcgm");
    assert_eq!(
        col["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        "0.0.0.0:4317"
    );
    let policies = col["processors"]["tail_sampling"]["policies"]
        .as_array()
        .expect("policies");
    let by_type = |t: &str| {
        policies
            .iter()
            .find(|p| p["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        by_type("status_code")["status_code"]["status_codes"][0],
        "ERROR"
    );
    assert_eq!(by_type("latency")["latency"]["threshold_ms"], 3000);
    assert_eq!(
        by_type("string_attribute")["string_attribute"]["values"][0],
        "enterprise_a"
    );
    assert_eq!(
        by_type("probabilistic")["probabilistic"]["sampling_percentage"],
        10.0
    );
    assert_eq!(col["processors"]["tail_sampling"]["decision_wait"], "10s");
    let spanmetrics = &col["connectors"]["spanmetrics"];
    assert_eq!(spanmetrics["exemplars"]["enabled"], true);
    assert_eq!(spanmetrics["dimensions"][1]["name"], "gen_ai.request.model");
    assert_eq!(
        col["processors"]["k8sattributes"]["auth_type"],
        "serviceAccount"
    );
    let pipelines = &col["service"]["pipelines"];
    assert_eq!(
        pipelines["traces"]["exporters"],
        serde_json::json!(["otlp/tempo", "spanmetrics"])
    );
    assert_eq!(
        pipelines["metrics"]["receivers"],
        serde_json::json!(["prometheus", "spanmetrics"])
    );
    assert!(col["exporters"]["prometheusremotewrite"]["endpoint"].is_string());

    let policy = yaml(&out.join("tetragon/tracingpolicy.yaml"));
    assert_eq!(policy["kind"], "TracingPolicy");
    assert_eq!(policy["apiVersion"], "cilium.io/v1alpha1");
    let probes = policy["spec"]["kprobes"].as_array().expect("kprobes");
    assert_eq!(probes[0]["call"], "security_file_open");
    assert_eq!(
        probes[0]["selectors"][0]["matchArgs"][0]["operator"],
        "Prefix"
    );
    assert_eq!(
        probes[0]["selectors"][0]["matchArgs"][0]["values"][0],
        "/models/"
    );
    assert_eq!(probes[1]["call"], "tcp_connect");
    let private = &probes[1]["selectors"][0]["matchArgs"][0];
    assert_eq!(private["operator"], "NotDAddr");
    for net in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
    ] {
        assert!(
            private["values"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == net)),
            "{net}"
        );
    }

    let agent = docs(&out.join("k8s/strata-agent.yaml"));
    let ds = agent
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["nvidia.com/gpu.present"], "true");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "agent", "the DaemonSet runs the agent");
    assert!(
        !args.contains(&"--rules"),
        "agents evaluate no rules (the brain or vmalert does, once): {args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--node", "$(NODE_NAME)"]),
        "{args:?}"
    );
    assert!(args.windows(2).any(|w| w == ["--gpu", "nvml"]), "{args:?}");
    assert!(
        args.windows(2)
            .any(|w| w == ["--engine", "http://tgi-0.inference:8080/metrics"]),
        "{args:?}"
    );
    assert!(
        c["env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v["name"] == "NVIDIA_VISIBLE_DEVICES"))
    );
    let mount = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "pod-resources")
        .expect("pod-resources mount")
        .clone();
    assert_eq!(mount["mountPath"], "/var/lib/kubelet/pod-resources");
    assert!(pod["volumes"].as_array().is_some_and(|v| {
        v.iter()
            .any(|v| v["hostPath"]["path"] == "/var/lib/kubelet/pod-resources")
    }));
    let svc = yaml(&out.join("k8s/service.yaml"));
    assert_eq!(svc["kind"], "Service");
    let sm = yaml(&out.join("k8s/servicemonitor.yaml"));
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    let sidecar = docs(&out.join("k8s/gateway-sidecar.yaml"));
    let containers = sidecar[0]["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert!(containers.iter().any(|c| c["args"][0] == "gateway"));
    // The engine pod's PodMonitor scrapes the engine container's named port, so its series
    // carry namespace/pod for the brain's engine <-> GPU join.
    let monitor = sidecar
        .iter()
        .find(|d| d["kind"] == "PodMonitor")
        .expect("PodMonitor");
    let engine_port = &monitor["spec"]["podMetricsEndpoints"][0]["port"];
    assert!(containers.iter().any(|c| {
        c["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| &p["name"] == engine_port))
    }));
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        sidecar[0]["spec"]["selector"]["matchLabels"]
    );
    let unit = std::fs::read_to_string(out.join("k8s/strata-agent.service")).expect("unit");
    assert!(
        unit.contains("[Service]") && unit.contains("ExecStart=/usr/local/bin/strata agent"),
        "{unit}"
    );
    assert!(
        !unit.contains(".svc") && unit.contains("--remote-write http://remote-write.invalid/"),
        "no Kubernetes service name on bare metal: {unit}"
    );
}

/// With `--backend`, each generated agent reads the alerts about its node there (Alertmanager
/// cannot address one DaemonSet pod), and the agent binary accepts the DaemonSet's arguments.
#[test]
fn generated_agents_read_their_incidents_from_the_backend() {
    let dir = tempfile::tempdir().expect("tmp");
    let backend = ["--backend", "http://vm.observability.svc:8428"];
    generate_with(dir.path(), None, "k8s", &backend);
    let agent = docs(&dir.path().join("strata-agent.yaml"));
    let ds = agent
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("DaemonSet");
    let args: Vec<String> = ds["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--incident-from", "http://vm.observability.svc:8428/"]),
        "{args:?}"
    );
    // Arguments are checked before --help is honoured: an unknown flag would fail here.
    let parse = live::strata()
        .args(&args)
        .arg("--help")
        .output()
        .expect("strata agent");
    assert!(
        parse.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&parse.stderr)
    );
    let am = dir.path().join("am");
    generate(&am, None, &["alertmanager"]);
    let text = std::fs::read_to_string(am.join("alertmanager/alertmanager.yml")).expect("am");
    assert!(
        !text.contains("/api/v1/incident"),
        "no route to an endpoint Alertmanager cannot address per node: {text}"
    );
}

#[test]
fn a_bad_config_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("strata.toml");
    std::fs::write(&config, "[[target]]\nname = \"a\"\nurl = \"not a url\"\n").expect("config");
    let out = live::strata()
        .arg("--config")
        .arg(&config)
        .args(["generate", "k8s", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("strata.toml:3"), "{err}");
    assert!(!dir.path().join("out").exists());
}
