//! Kubernetes manifests and a systemd unit: Strata as a per-node agent (`strata agent`) on GPU
//! nodes, reading GPUs through NVML and mapping pods to GPUs through the kubelet's
//! pod-resources socket; its Service and ServiceMonitor; the gateway as a sidecar in front
//! of an engine, with a PodMonitor for the engine's metrics; and the same agent as a systemd service on bare metal.

use serde_json::{Value, json};

use super::{File, Spec, yaml};

/// Namespace everything goes in.
const NAMESPACE: &str = "observability";
/// The agent's image.
const IMAGE: &str = "ghcr.io/strata-observability/strata:latest";
/// Port of the agent's health endpoint and /metrics.
const AGENT_PORT: u16 = 9465;
/// The kubelet's pod-resources socket folder (pod ↔ GPU mapping).
const POD_RESOURCES: &str = "/var/lib/kubelet/pod-resources";
/// Where the DaemonSet's agents remote-write unless `--remote-write` says (vmagent from
/// `strata generate vmagent`).
const REMOTE_WRITE: &str = "http://vmagent.observability.svc:8429/api/v1/write";
/// Where the bare-metal unit's agent remote-writes unless `--remote-write` says: a
/// placeholder that fails loudly (the agent cannot resolve it) until it is set.
const UNIT_REMOTE_WRITE: &str = "http://remote-write.invalid/api/v1/write";

fn labels(name: &str) -> Value {
    json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "strata"})
}

/// The agent's command line: every configured engine, NVML, where it ships. No rule files:
/// rules are evaluated once for the fleet, by `strata up --backend` or vmalert, never on
/// every node (and never twice).
fn agent_args(spec: &Spec, remote_write: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--listen".into(),
        format!("0.0.0.0:{AGENT_PORT}"),
        "--gpu".into(),
        "nvml".into(),
    ];
    for e in &spec.engines {
        let host = e.address.replace("localhost", "$(NODE_IP)");
        args.extend([
            "--engine".into(),
            format!("{}://{host}{}", e.scheme, e.path),
        ]);
    }
    args.extend(["--remote-write".into(), remote_write.into()]);
    if let Some(b) = &spec.backend {
        args.extend(["--incident-from".into(), b.clone()]);
    }
    args.extend(["--data-dir".into(), "/var/lib/strata".into()]);
    args
}

fn daemonset(spec: &Spec) -> Value {
    let mut args = agent_args(spec, spec.remote_write.as_deref().unwrap_or(REMOTE_WRITE));
    args.extend(["--node".into(), "$(NODE_NAME)".into()]);
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "strata-agent", "namespace": NAMESPACE, "labels": labels("strata-agent")},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "strata-agent"}},
            "template": {
                "metadata": {"labels": labels("strata-agent")},
                "spec": {
                    "serviceAccountName": "strata-agent",
                    "runtimeClassName": "nvidia",
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "strata",
                        "image": IMAGE,
                        "args": args,
                        "env": [
                            {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            // NVML through the NVIDIA container runtime, every GPU, no GPU
                            // requested (the agent must not take one away from the engines).
                            {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                            {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"}
                        ],
                        "ports": [{"name": "metrics", "containerPort": AGENT_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "metrics"}, "periodSeconds": 10},
                        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "metrics"}, "periodSeconds": 30},
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "256Mi"},
                            "limits": {"memory": "1Gi"}
                        },
                        "securityContext": {
                            "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}
                        },
                        "volumeMounts": [
                            {"name": "pod-resources", "mountPath": POD_RESOURCES, "readOnly": true},
                            {"name": "data", "mountPath": "/var/lib/strata"}
                        ]
                    }],
                    "volumes": [
                        {"name": "pod-resources", "hostPath": {"path": POD_RESOURCES, "type": "Directory"}},
                        {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
                    ]
                }
            }
        }
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "strata-agent", "namespace": NAMESPACE, "labels": labels("strata-agent")},
        "spec": {
            "clusterIP": "None",
            "selector": {"app.kubernetes.io/name": "strata-agent"},
            "ports": [{"name": "metrics", "port": AGENT_PORT, "targetPort": "metrics"}]
        }
    })
}

fn service_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "strata-agent", "namespace": NAMESPACE, "labels": labels("strata-agent")},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "strata-agent"}},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
        }
    })
}

/// A vLLM Deployment with the gateway as a sidecar: clients call the gateway's port, the
/// gateway times every token and forwards to the engine on localhost.
fn gateway_sidecar(spec: &Spec) -> Value {
    let port = spec.gateway.listen.port();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm", "namespace": "inference", "labels": {"app": "vllm"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "vllm"}},
            "template": {
                "metadata": {"labels": {"app": "vllm"}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:latest",
                            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
                            "ports": [{"name": "engine", "containerPort": 8000}],
                            "resources": {"limits": {"nvidia.com/gpu": 1}},
                            "volumeMounts": [{"name": "models", "mountPath": "/root/.cache/huggingface"}]
                        },
                        {
                            "name": "strata-gateway",
                            "image": IMAGE,
                            "args": [
                                "gateway",
                                "--listen", format!("0.0.0.0:{port}"),
                                "--admin", "0.0.0.0:9465",
                                "--upstream", "http://127.0.0.1:8000",
                                "--otlp", "http://otel-collector.observability.svc:4318"
                            ],
                            "ports": [
                                {"name": "http", "containerPort": port},
                                {"name": "gateway-admin", "containerPort": 9465}
                            ],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": "gateway-admin"}},
                            "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
                        }
                    ],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "hf-cache"}}]
                }
            }
        }
    })
}

fn gateway_service(spec: &Spec) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "vllm", "namespace": "inference", "labels": {"app": "vllm"}},
        "spec": {
            "selector": {"app": "vllm"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": spec.gateway.listen.port()},
                {"name": "gateway-admin", "port": 9465, "targetPort": "gateway-admin"}
            ]
        }
    })
}

/// A PodMonitor for the engine pods: the Prometheus Operator labels every scraped series with
/// the target's `namespace`, `pod` and `container`, which is what lets the brain join an
/// engine to the GPUs its pod holds (the `identity` group of the runtime pack, through the
/// DCGM exporter's pod labels or the agents' `strata_pod_gpu_info`).
fn engine_pod_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "vllm", "namespace": "inference", "labels": {"app": "vllm"}},
        "spec": {
            "selector": {"matchLabels": {"app": "vllm"}},
            "podMetricsEndpoints": [{"port": "engine", "path": "/metrics", "interval": "15s"}]
        }
    })
}

/// The agent as a systemd service on a bare-metal GPU node.
fn systemd_unit(spec: &Spec) -> String {
    // Where it ships comes from `strata generate k8s --remote-write URL`, never from a
    // Kubernetes service name a bare-metal host cannot resolve.
    let remote_write = spec.remote_write.as_deref().unwrap_or(UNIT_REMOTE_WRITE);
    let args: Vec<String> = agent_args(spec, remote_write)
        .into_iter()
        .map(|a| {
            a.replace("$(NODE_IP)", "127.0.0.1")
                .replace("0.0.0.0:", "127.0.0.1:")
        })
        .collect();
    format!(
        "# GENERATED by `strata generate k8s`: Strata as a node agent on bare metal.\n\
         # Install: cp strata-agent.service /etc/systemd/system/ && systemctl daemon-reload &&\n\
         #          systemctl enable --now strata-agent\n\
         # It ships to the --remote-write URL `strata generate k8s --remote-write URL` was given\n\
         # (a placeholder that fails until then); rules run once for the fleet (strata up --backend).\n\
         [Unit]\n\
         Description=Strata LLM inference observability agent\n\
         Documentation=https://github.com/strata-observability/strata\n\
         Wants=network-online.target\n\
         After=network-online.target nvidia-persistenced.service\n\n\
         [Service]\n\
         Type=simple\n\
         DynamicUser=yes\n\
         SupplementaryGroups=video\n\
         StateDirectory=strata\n\
         ExecStart=/usr/local/bin/strata {}\n\
         Restart=on-failure\n\
         RestartSec=5s\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         MemoryMax=1G\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        args.join(" ")
    )
}

/// `k8s/*.yaml` and `k8s/strata-agent.service`.
pub(super) fn files(spec: &Spec) -> Result<Vec<File>, String> {
    let account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "strata-agent", "namespace": NAMESPACE, "labels": labels("strata-agent")}
    });
    let agent = format!(
        "{}---\n{}",
        yaml(
            &[
                "GENERATED by `strata generate k8s`: Strata as a DaemonSet agent on GPU nodes.",
                "GPUs through NVML (NVIDIA runtime class, no GPU requested), pods <-> GPUs through the",
                "kubelet's pod-resources socket. Each agent ships to remote_write, labelled with its",
                "node; rules run once for the fleet (strata up --backend, or vmalert with",
                "`strata generate rules`), never on the agents. Apply:",
                "  kubectl apply -f strata-agent.yaml -f service.yaml -f servicemonitor.yaml",
            ],
            &account
        )?,
        yaml(&[], &daemonset(spec))?
    );
    Ok(vec![
        ("strata-agent.yaml".into(), agent),
        (
            "service.yaml".into(),
            yaml(
                &["GENERATED by `strata generate k8s`: the agents' API and /metrics."],
                &service(),
            )?,
        ),
        (
            "servicemonitor.yaml".into(),
            yaml(
                &["GENERATED by `strata generate k8s`: Prometheus Operator scrapes every agent."],
                &service_monitor(),
            )?,
        ),
        (
            "gateway-sidecar.yaml".into(),
            format!(
                "{}---\n{}---\n{}",
                yaml(
                    &[
                        "GENERATED by `strata generate k8s`: example of the gateway as a sidecar of a vLLM pod.",
                        "Clients call the Service on port 80; the gateway times every token and forwards to",
                        "the engine on localhost. Adapt the engine container to your model and engine.",
                    ],
                    &gateway_sidecar(spec)
                )?,
                yaml(&[], &gateway_service(spec))?,
                yaml(
                    &[
                        "The engine's own metrics, scraped by the Prometheus Operator with the pod's",
                        "namespace/pod labels: `strata up --backend` joins them to the GPUs the pod holds.",
                    ],
                    &engine_pod_monitor()
                )?
            ),
        ),
        (
            "dcgm-exporter-counters.yaml".into(),
            yaml(
                &[
                    "GENERATED by `strata generate k8s`: the counters CSV that makes a stock dcgm-exporter",
                    "collect Strata's incident fields (SM activity, throttle reasons, NVLink bytes, ECC).",
                    "Mount it into dcgm-exporter and point it at the file, e.g. with its Helm chart:",
                    "  --set-json 'extraConfigMapVolumes=[{\"name\":\"strata-counters\",\"configMap\":{\"name\":\"dcgm-exporter-counters\"}}]'",
                    "  --set-json 'extraVolumeMounts=[{\"name\":\"strata-counters\",\"mountPath\":\"/etc/dcgm-exporter/strata\"}]'",
                    "  --set arguments='{-f,/etc/dcgm-exporter/strata/counters.csv}'",
                ],
                &json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "dcgm-exporter-counters", "namespace": NAMESPACE, "labels": labels("dcgm-exporter")},
                    "data": {"counters.csv": sources::gpu::dcgm_counters_csv()},
                }),
            )?,
        ),
        ("strata-agent.service".into(), systemd_unit(spec)),
    ])
}
