//! The web UI: plain JavaScript modules, CSS and HTML from `crates/node/ui/`, embedded in
//! the binary at compile time (no CDN, no build step) and served at `/` and `/ui/*`. The
//! page reads everything through the HTTP API (`/api/v1/...`).
//!
//! Caching: every asset carries a strong `ETag` (a hash of its bytes) and
//! `Cache-Control: no-cache`, so browsers revalidate and get `304 Not Modified` until the
//! binary changes; a new binary's assets are never served stale.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the UI serves.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../ui/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/api.js"),
    },
    Asset {
        name: "chart.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/chart.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../ui/style.css"),
    },
];

/// The UI's routes: `/` (the page) and `/ui/{file}` (its scripts and styles).
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, h: HeaderMap| async move { serve(&file, &h) }),
        )
}

/// The `ETag` of each asset, in `ASSETS` order (FNV-1a 64 of its bytes).
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = a.body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{h:016x}\"")
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no UI file {name:?}: the UI is at /\n"),
        )
            .into_response();
    };
    let asset = &ASSETS[i];
    let tag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = asset.body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_small_and_every_module_import_is_served() {
        let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(total < 150 * 1024, "UI is {total} bytes");
        for a in ASSETS {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let file = line
                    .rsplit("\"./")
                    .next()
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|x| x.name == file),
                    "{} imports {file:?}, which is not embedded",
                    a.name
                );
            }
        }
        let index = ASSETS[0].body;
        for a in &ASSETS[1..] {
            if a.name == "style.css" || a.name == "app.js" {
                assert!(index.contains(&format!("/ui/{}", a.name)), "{}", a.name);
            }
        }
    }

    #[tokio::test]
    async fn serves_types_etags_and_not_modified() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router()).await });
        sources::scrape::install_crypto_provider();
        let c = reqwest::Client::new();
        let r = c.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let r = c
            .get(format!("http://{addr}/ui/app.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let tag = r.headers()["etag"].clone();
        assert!(r.text().await.unwrap().contains("timeChart"));
        let r = c
            .get(format!("http://{addr}/ui/app.js"))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        let r = c
            .get(format!("http://{addr}/ui/missing.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}
