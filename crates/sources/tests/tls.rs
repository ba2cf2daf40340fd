//! Scraping over HTTPS with a private CA (rustls with the ring provider).

use std::sync::Arc;
use std::time::Duration;

use sources::gpu::FieldSet;
use sources::scrape::{ProfileSettings, TargetKind, TargetSpec, TargetState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BODY: &str = "vllm:num_requests_running{model_name=\"m\"} 3\n";

/// A one-purpose HTTPS server: answers every request with BODY over HTTP/1.1.
async fn tls_server() -> (String, String) {
    sources::scrape::install_crypto_provider();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let ca_pem = key.cert.pem();
    let cert = key.cert.der().clone();
    let private =
        rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).expect("key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://localhost:{port}/metrics"), ca_pem)
}

fn settings() -> ProfileSettings {
    ProfileSettings {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(3),
        fields: FieldSet::Full,
    }
}

#[tokio::test]
async fn https_with_private_ca_works_and_unknown_ca_is_refused() {
    let (url, ca_pem) = tls_server().await;

    let untrusted = TargetSpec::new("tls", url.parse().expect("url"), TargetKind::Engine);
    let r = TargetState::new(untrusted)
        .expect("client")
        .scrape(settings())
        .await;
    let err = r.error.clone().expect("an unknown CA must be refused");
    assert!(
        err.contains("cannot reach") && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    let mut trusted = TargetSpec::new("tls", url.parse().expect("url"), TargetKind::Engine);
    trusted.ca_pem = Some(ca_pem.into_bytes());
    let r = TargetState::new(trusted)
        .expect("client")
        .scrape(settings())
        .await;
    assert_eq!(r.error, None);
    assert_eq!(r.samples_scraped, 1);

    let mut insecure = TargetSpec::new("tls", url.parse().expect("url"), TargetKind::Engine);
    insecure.insecure_skip_verify = true;
    let r = TargetState::new(insecure)
        .expect("client")
        .scrape(settings())
        .await;
    assert_eq!(r.error, None);

    let mut bad_ca = TargetSpec::new("tls", url.parse().expect("url"), TargetKind::Engine);
    bad_ca.ca_pem =
        Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec());
    let err = TargetState::new(bad_ca)
        .err()
        .expect("bad PEM must be refused")
        .to_string();
    assert!(err.contains("PEM"), "{err}");
}
