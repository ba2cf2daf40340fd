# The Strata image the generated manifests run (`strata generate k8s`:
# ghcr.io/strata-observability/strata:latest, command /usr/local/bin/strata).
#   docker build -t ghcr.io/strata-observability/strata:latest .
# NVML: run with the NVIDIA container toolkit (`--gpus all` or the device plugin); the
# driver's libnvidia-ml.so is mounted at run time, nothing GPU-specific is in the image.

# --- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p strata --bin strata \
    && install -m 0755 target/release/strata /usr/local/bin/strata

# --- run --------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 strata \
    && useradd --system --uid 10001 --gid strata --home-dir /var/lib/strata --shell /usr/sbin/nologin strata \
    && mkdir -p /var/lib/strata /etc/strata \
    && chown strata:strata /var/lib/strata
COPY --from=builder /usr/local/bin/strata /usr/local/bin/strata
USER 10001:10001
WORKDIR /var/lib/strata
# 9464: API, UI, /metrics; 8080: the gateway when enabled.
EXPOSE 9464 8080
ENTRYPOINT ["/usr/local/bin/strata"]
CMD ["up", "--listen", "0.0.0.0:9464", "--data-dir", "/var/lib/strata"]
