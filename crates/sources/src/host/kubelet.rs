//! Pod ↔ GPU from the kubelet's pod-resources API (`v1.PodResourcesLister/List` over the unix
//! socket `/var/lib/kubelet/pod-resources/kubelet.sock`), as
//! `strata_pod_gpu_info{namespace,pod,container,gpu_uuid} 1` so GPU and engine series can be
//! joined to the pod that holds the device.
//!
//! The API is gRPC. Instead of tonic (a code generator, tower and a second HTTP stack), this
//! speaks it directly: one unary call is an HTTP/2 POST with gRPC's 5-byte length prefix,
//! sent through the `h2` crate (already in the build through reqwest and hyper) and decoded
//! with `prost` derives that mirror `proto/podresources/v1/api.proto` (kept in the tree and
//! checked against the derives by a test; no `protoc` at build time).
//!
//! Device ids are what the device plugin advertises: GPU UUIDs (`GPU-…`), MIG UUIDs (`MIG-…`),
//! time-sliced replicas (`GPU-…::3`, the replica suffix is dropped) or, with the NVIDIA
//! plugin's `index` strategy, indexes (exported as `gpu` instead of `gpu_uuid`).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// The `job` label of the kubelet series.
pub const KUBELET_JOB: &str = "kubelet";

/// Where the kubelet serves the pod-resources API.
pub const POD_RESOURCES_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The gRPC path of `PodResourcesLister.List` (package `v1`).
pub const LIST_PATH: &str = "/v1.PodResourcesLister/List";

/// The series name of the pod ↔ GPU mapping.
pub const POD_GPU_INFO: &str = "strata_pod_gpu_info";

/// A response larger than this is refused (gRPC's own default limit is 4 MiB).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How long one `List` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages of `v1` (pod-resources) that Strata reads, as `prost` derives. Fields Strata does
/// not read (cpu ids, memory, topology, DRA claims) are left out: protobuf decoding skips them.
pub mod proto {
    /// `ListPodResourcesRequest` (empty).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodResourcesRequest {}

    /// `ListPodResourcesResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodResourcesResponse {
        /// Every pod on the node with its resources.
        #[prost(message, repeated, tag = "1")]
        pub pod_resources: Vec<PodResources>,
    }

    /// `PodResources`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodResources {
        /// Pod name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Pod namespace.
        #[prost(string, tag = "2")]
        pub namespace: String,
        /// The pod's containers.
        #[prost(message, repeated, tag = "3")]
        pub containers: Vec<ContainerResources>,
    }

    /// `ContainerResources`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerResources {
        /// Container name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Devices from device plugins.
        #[prost(message, repeated, tag = "2")]
        pub devices: Vec<ContainerDevices>,
    }

    /// `ContainerDevices`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerDevices {
        /// Extended resource name, e.g. `nvidia.com/gpu`.
        #[prost(string, tag = "1")]
        pub resource_name: String,
        /// Device ids the plugin gave the container.
        #[prost(string, repeated, tag = "2")]
        pub device_ids: Vec<String>,
    }
}

/// One container's hold on one GPU (or MIG slice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodGpu {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The device id without a time-slicing replica suffix: a `GPU-`/`MIG-` UUID or an index.
    pub device: String,
}

/// Whether a resource name is an NVIDIA GPU resource: `nvidia.com/gpu`, the shared variant
/// `nvidia.com/gpu.shared`, or a MIG "mixed strategy" resource `nvidia.com/mig-1g.10gb`.
fn is_gpu_resource(name: &str) -> bool {
    name == "nvidia.com/gpu"
        || name.starts_with("nvidia.com/gpu.")
        || name.starts_with("nvidia.com/mig-")
}

/// The pod ↔ GPU pairs of a `List` response, sorted and without duplicates.
pub fn pod_gpus(resp: &proto::ListPodResourcesResponse) -> Vec<PodGpu> {
    let mut out = BTreeSet::new();
    for pod in &resp.pod_resources {
        for c in &pod.containers {
            for d in c
                .devices
                .iter()
                .filter(|d| is_gpu_resource(&d.resource_name))
            {
                for id in &d.device_ids {
                    let id = id.split("::").next().unwrap_or(id).trim();
                    if id.is_empty() {
                        continue;
                    }
                    out.insert(PodGpu {
                        namespace: pod.namespace.clone(),
                        pod: pod.name.clone(),
                        container: c.name.clone(),
                        device: id.to_string(),
                    });
                }
            }
        }
    }
    out.into_iter().collect()
}

/// `strata_pod_gpu_info` points, one per pair, stamped `ts`.
pub fn to_points(pairs: &[PodGpu], ts: i64) -> Vec<Point> {
    pairs
        .iter()
        .map(|p| {
            let device_label = if p.device.starts_with("GPU-") || p.device.starts_with("MIG-") {
                "gpu_uuid"
            } else {
                "gpu"
            };
            let mut labels: LabelSet = vec![
                ("container".to_string(), p.container.clone()),
                (device_label.to_string(), p.device.clone()),
                ("namespace".to_string(), p.namespace.clone()),
                ("pod".to_string(), p.pod.clone()),
            ];
            labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Point::new(POD_GPU_INFO, labels, 1.0, ts)
        })
        .collect()
}

/// gRPC's message framing: a compressed flag (0), the length (u32, big endian), the bytes.
pub fn grpc_frame(message: &[u8]) -> Result<Bytes, String> {
    let len = u32::try_from(message.len()).map_err(|_| "gRPC message over 4 GiB".to_string())?;
    let mut buf = BytesMut::with_capacity(5 + message.len());
    buf.put_u8(0);
    buf.put_u32(len);
    buf.put_slice(message);
    Ok(buf.freeze())
}

/// The message of one gRPC frame that fills `body` exactly (a unary response).
pub fn grpc_unframe(mut body: &[u8]) -> Result<&[u8], String> {
    if body.len() < 5 {
        return Err(format!(
            "gRPC response of {} bytes: shorter than a frame header",
            body.len()
        ));
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err("gRPC response is compressed; Strata asked for none".into());
    }
    if len != body.len() {
        return Err(format!("gRPC frame says {len} bytes, {} came", body.len()));
    }
    Ok(body)
}

/// Reads `grpc-status` / `grpc-message` from headers or trailers; `Ok` when the status is 0.
fn grpc_status(headers: &http::HeaderMap) -> Option<Result<(), String>> {
    let status = headers
        .get("grpc-status")?
        .to_str()
        .unwrap_or("?")
        .to_string();
    if status == "0" {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    Some(Err(format!("gRPC status {status} {message}")))
}

/// Calls `List` once on the kubelet socket at `socket`.
pub async fn list(socket: &Path) -> Result<proto::ListPodResourcesResponse, String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connect {}: {e}", socket.display()))?;
    let (client, connection) = h2::client::handshake(stream)
        .await
        .map_err(|e| format!("HTTP/2 handshake with the kubelet: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = call(client).await;
    driver.abort();
    result
}

async fn call(
    client: h2::client::SendRequest<Bytes>,
) -> Result<proto::ListPodResourcesResponse, String> {
    let mut client = client.ready().await.map_err(|e| format!("HTTP/2: {e}"))?;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{LIST_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let (response, mut send) = client
        .send_request(request, false)
        .map_err(|e| format!("send: {e}"))?;
    let body = grpc_frame(&proto::ListPodResourcesRequest {}.encode_to_vec())?;
    send.send_data(body, true)
        .map_err(|e| format!("send: {e}"))?;

    let response = response.await.map_err(|e| format!("response: {e}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("HTTP status {}", response.status()));
    }
    // A trailers-only response (an error) puts grpc-status in the headers.
    if let Some(Err(e)) = grpc_status(response.headers()) {
        return Err(e);
    }
    let mut stream = response.into_body();
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.map_err(|e| format!("body: {e}"))?;
        let _ = stream.flow_control().release_capacity(chunk.len());
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response over {MAX_RESPONSE_BYTES} bytes; refused"));
        }
        body.extend_from_slice(&chunk);
    }
    let trailers = stream
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?;
    match trailers.as_ref().and_then(grpc_status) {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e),
        None => return Err("no grpc-status in the response".into()),
    }
    proto::ListPodResourcesResponse::decode(grpc_unframe(&body)?)
        .map_err(|e| format!("decode ListPodResourcesResponse: {e}"))
}

/// Polls the kubelet for which pod holds which GPU. Outside Kubernetes (no socket) it collects
/// nothing and says so in its status; it never fails.
#[derive(Debug)]
pub struct KubeletCollector {
    socket: PathBuf,
    /// Errors already reported (each once until the call works again).
    reported: HashSet<String>,
    /// The last outcome, for the status line.
    last: String,
}

impl KubeletCollector {
    /// A collector over the pod-resources socket at `socket` (normally [`POD_RESOURCES_SOCKET`]).
    pub fn new(socket: impl Into<PathBuf>) -> KubeletCollector {
        KubeletCollector {
            socket: socket.into(),
            reported: HashSet::new(),
            last: "not polled yet".into(),
        }
    }

    /// Whether the socket exists (what autodetection checks).
    pub fn in_kubernetes(socket: &Path) -> bool {
        socket.exists()
    }

    /// One `List` call on a small runtime of its own, built and dropped here, on the blocking
    /// thread collections run on (a runtime kept in the collector would be dropped wherever
    /// the target is, and tokio refuses to drop one inside async code).
    fn poll(&mut self) -> Result<Vec<PodGpu>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("could not start an I/O runtime for the kubelet call: {e}"))?;
        let socket = self.socket.clone();
        runtime.block_on(async move {
            match tokio::time::timeout(CALL_TIMEOUT, list(&socket)).await {
                Ok(r) => r.map(|resp| pod_gpus(&resp)),
                Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
            }
        })
    }
}

impl HostCollector for KubeletCollector {
    fn job(&self) -> &'static str {
        KUBELET_JOB
    }

    fn status(&self) -> String {
        if !Self::in_kubernetes(&self.socket) {
            return format!(
                "kubelet: not in Kubernetes (no pod-resources socket at {}); no pod ↔ GPU mapping",
                self.socket.display()
            );
        }
        format!(
            "kubelet pod-resources {}: {}",
            self.socket.display(),
            self.last
        )
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        if !Self::in_kubernetes(&self.socket) {
            self.last = "not in Kubernetes".into();
            return Collection::default();
        }
        match self.poll() {
            Ok(pairs) => {
                self.reported.clear();
                let pods: BTreeSet<(&str, &str)> = pairs
                    .iter()
                    .map(|p| (p.namespace.as_str(), p.pod.as_str()))
                    .collect();
                self.last = format!(
                    "{} GPU assignment(s) across {} pod(s)",
                    pairs.len(),
                    pods.len()
                );
                Collection {
                    points: to_points(&pairs, timestamp_ms),
                    errors: Vec::new(),
                }
            }
            Err(e) => {
                let msg = format!(
                    "kubelet pod-resources List: {e} (Strata needs read access to {}: run it as root or mount the directory into its pod)",
                    self.socket.display()
                );
                self.last = format!("failing: {e}");
                let errors = if self.reported.insert(msg.clone()) {
                    vec![msg]
                } else {
                    Vec::new()
                };
                Collection {
                    points: Vec::new(),
                    errors,
                }
            }
        }
    }
}
