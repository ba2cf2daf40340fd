//! The kubelet pod-resources client against a fake `v1.PodResourcesLister` served over HTTP/2
//! on a unix socket in a temp dir, with messages built from the real `api.proto` fields.

use std::path::{Path, PathBuf};

use prost::Message;
use sources::collector::HostCollector;
use sources::gpu::FieldSet;
use sources::host::kubelet::proto::{
    ContainerDevices, ContainerResources, ListPodResourcesResponse, PodResources,
};
use sources::host::kubelet::{KubeletCollector, LIST_PATH, grpc_frame, grpc_unframe, list};

fn response() -> ListPodResourcesResponse {
    let devices = |resource: &str, ids: &[&str]| ContainerDevices {
        resource_name: resource.into(),
        device_ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    ListPodResourcesResponse {
        pod_resources: vec![
            PodResources {
                name: "vllm-0".into(),
                namespace: "llm".into(),
                containers: vec![
                    ContainerResources {
                        name: "vllm".into(),
                        devices: vec![
                            devices("nvidia.com/gpu", &["GPU-aaaa", "GPU-bbbb"]),
                            devices("example.com/nic", &["nic0"]),
                        ],
                    },
                    ContainerResources {
                        name: "sidecar".into(),
                        devices: vec![],
                    },
                ],
            },
            PodResources {
                name: "small".into(),
                namespace: "dev".into(),
                containers: vec![ContainerResources {
                    name: "llama".into(),
                    devices: vec![
                        devices("nvidia.com/mig-1g.10gb", &["MIG-cccc"]),
                        devices("nvidia.com/gpu.shared", &["GPU-dddd::2"]),
                    ],
                }],
            },
        ],
    }
}

/// What the fake server answers.
#[derive(Clone)]
enum Reply {
    Ok(ListPodResourcesResponse),
    Status(&'static str, &'static str),
}

/// Serves `reply` to every call on a unix socket at `path`, checking the request shape.
async fn serve(path: PathBuf, reply: Reply) {
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    assert_eq!(req.uri().path(), LIST_PATH);
                    assert_eq!(req.method(), "POST");
                    assert_eq!(req.headers()["content-type"], "application/grpc");
                    let mut body = req.into_body();
                    let mut got = Vec::new();
                    while let Some(Ok(c)) = body.data().await {
                        got.extend_from_slice(&c);
                    }
                    // An empty ListPodResourcesRequest is a frame of 5 bytes.
                    assert_eq!(got, [0, 0, 0, 0, 0]);
                    let head = http::Response::builder()
                        .status(200)
                        .header("content-type", "application/grpc")
                        .body(())
                        .expect("response");
                    match &reply {
                        Reply::Ok(msg) => {
                            let mut send = respond.send_response(head, false).expect("send");
                            let frame = grpc_frame(&msg.encode_to_vec()).expect("frame");
                            send.send_data(frame, false).expect("data");
                            let mut t = http::HeaderMap::new();
                            t.insert("grpc-status", "0".parse().expect("hv"));
                            send.send_trailers(t).expect("trailers");
                        }
                        Reply::Status(code, message) => {
                            let head = http::Response::builder()
                                .status(200)
                                .header("content-type", "application/grpc")
                                .header("grpc-status", *code)
                                .header("grpc-message", *message)
                                .body(())
                                .expect("response");
                            respond.send_response(head, true).expect("send");
                        }
                    }
                }
            });
        }
    });
}

fn label<'a>(p: &'a sources::Point, k: &str) -> Option<&'a str> {
    p.labels
        .iter()
        .find(|(lk, _)| lk == k)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn list_reads_the_pod_resources_of_a_fake_kubelet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("kubelet.sock");
    serve(sock.clone(), Reply::Ok(response())).await;
    let got = list(&sock).await.expect("list");
    assert_eq!(got, response());
}

#[test]
fn the_collector_exports_pod_gpu_info() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("kubelet.sock");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(serve(sock.clone(), Reply::Ok(response())));
    let mut c = KubeletCollector::new(&sock);
    let got = c.collect(FieldSet::Full, 5);
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let rows: Vec<(String, String, String, String, String)> = got
        .points
        .iter()
        .map(|p| {
            assert_eq!(p.name, "strata_pod_gpu_info");
            assert_eq!(p.value, 1.0);
            assert_eq!(p.timestamp_ms, 5);
            let l = |k| label(p, k).unwrap_or("").to_string();
            (
                l("namespace"),
                l("pod"),
                l("container"),
                l("gpu_uuid"),
                l("gpu"),
            )
        })
        .collect();
    let want = [
        ("dev", "small", "llama", "GPU-dddd", ""),
        ("dev", "small", "llama", "MIG-cccc", ""),
        ("llm", "vllm-0", "vllm", "GPU-aaaa", ""),
        ("llm", "vllm-0", "vllm", "GPU-bbbb", ""),
    ];
    let want: Vec<(String, String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.to_string(),
                e.to_string(),
            )
        })
        .collect();
    assert_eq!(rows, want);
    assert!(
        c.status().contains("4 GPU assignment(s) across 2 pod(s)"),
        "{}",
        c.status()
    );
}

#[test]
fn a_grpc_error_is_reported_once_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("kubelet.sock");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(serve(sock.clone(), Reply::Status("7", "permission denied")));
    let mut c = KubeletCollector::new(&sock);
    let first = c.collect(FieldSet::Full, 1);
    assert!(first.points.is_empty());
    assert_eq!(first.errors.len(), 1);
    assert!(
        first.errors[0].contains("gRPC status 7 permission denied"),
        "{}",
        first.errors[0]
    );
    assert!(
        first.errors[0].contains("run it as root"),
        "{}",
        first.errors[0]
    );
    assert!(c.collect(FieldSet::Full, 2).errors.is_empty());
}

#[test]
fn without_kubernetes_the_status_says_so_and_nothing_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("absent/kubelet.sock");
    let mut c = KubeletCollector::new(&sock);
    assert!(!KubeletCollector::in_kubernetes(&sock));
    assert_eq!(c.collect(FieldSet::Full, 1), Default::default());
    assert!(
        c.status().starts_with("kubelet: not in Kubernetes"),
        "{}",
        c.status()
    );
}

#[test]
fn grpc_framing_round_trips_and_rejects_bad_frames() {
    let f = grpc_frame(b"abc").expect("frame");
    assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(grpc_unframe(&f).expect("unframe"), b"abc");
    assert!(grpc_unframe(&f[..4]).is_err());
    assert!(
        grpc_unframe(&f[..7])
            .unwrap_err()
            .contains("says 3 bytes, 2 came")
    );
    assert!(
        grpc_unframe(&[1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("compressed")
    );
}

/// Every field the derives read has the same name, type and tag in the real `api.proto`.
#[test]
fn derives_match_the_real_api_proto() {
    let proto = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/podresources/v1/api.proto"),
    )
    .expect("api.proto in the tree");
    assert!(proto.contains("package v1;"));
    assert!(proto.contains("service PodResourcesLister {"));
    assert!(
        proto.contains("rpc List(ListPodResourcesRequest) returns (ListPodResourcesResponse) {}")
    );
    let fields = [
        (
            "ListPodResourcesResponse",
            "repeated PodResources pod_resources = 1;",
        ),
        ("PodResources", "string name = 1;"),
        ("PodResources", "string namespace = 2;"),
        (
            "PodResources",
            "repeated ContainerResources containers = 3;",
        ),
        ("ContainerResources", "string name = 1;"),
        (
            "ContainerResources",
            "repeated ContainerDevices devices = 2;",
        ),
        ("ContainerDevices", "string resource_name = 1;"),
        ("ContainerDevices", "repeated string device_ids = 2;"),
    ];
    for (message, field) in fields {
        let start = proto
            .find(&format!("message {message} {{"))
            .unwrap_or_else(|| panic!("message {message} missing"));
        let body = &proto[start..start + proto[start..].find('}').expect("closing brace")];
        assert!(
            body.contains(field),
            "{message}: {field:?} not in api.proto"
        );
    }
}

/// Through the scraper's host target, as `strata up` runs it: the collection runs on a
/// blocking thread and the target is dropped inside async code (a runtime kept in the
/// collector made that panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_as_a_host_target_and_drops_cleanly_in_async_code() {
    use sources::scrape::{HostTarget, KindProfiles, Profile};
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("kubelet.sock");
    serve(sock.clone(), Reply::Ok(response())).await;
    let profiles = KindProfiles::engine_default();
    let mut target = HostTarget::new(
        Box::new(KubeletCollector::new(&sock)),
        "node-a".into(),
        profiles,
    );
    let report = target.scrape(profiles.get(Profile::Steady)).await;
    assert_eq!(report.error, None);
    let info: Vec<_> = report
        .native_points()
        .filter(|p| p.name == "strata_pod_gpu_info")
        .collect();
    assert_eq!(info.len(), 4);
    assert!(
        info.iter()
            .all(|p| label(p, "job") == Some("kubelet") && label(p, "instance") == Some("node-a"))
    );
    drop(target);
}
