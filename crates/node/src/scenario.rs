//! `GET/POST /api/v1/scenario`: the scenario of every simulated engine (`strata demo`), read
//! and switched through each simulator's `/sim/scenario`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::http::{error, success};

/// The simulated engines whose scenario the API switches.
pub struct Scenarios {
    /// Base URLs of the simulators (`http://127.0.0.1:PORT`).
    engines: Vec<String>,
    /// Every scenario the simulators know, as `(name, one-line help)`.
    available: Vec<(String, String)>,
    client: reqwest::Client,
}

impl Scenarios {
    /// A switch over the simulators at `engines`, which know the scenarios of `available`
    /// (`(name, one-line help)`).
    pub fn new(engines: Vec<String>, available: Vec<(String, String)>) -> Scenarios {
        Scenarios {
            engines,
            available,
            client: reqwest::Client::new(),
        }
    }

    /// `GET/POST /api/v1/scenario`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/v1/scenario", get(show).post(switch))
            .with_state(self.clone())
    }

    async fn current(&self) -> Result<String, String> {
        let first = self.engines.first().ok_or("no simulated engine runs")?;
        let v: Value = self
            .client
            .get(format!("{first}/sim/scenario"))
            .send()
            .await
            .map_err(|e| format!("cannot reach the simulator at {first}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("cannot read the simulator at {first}: {e}"))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| format!("the simulator at {first} answered no JSON: {e}"))
            })?;
        v["scenario"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the simulator at {first} named no scenario"))
    }

    /// Switches every simulator to `name`.
    pub async fn switch(&self, name: &str) -> Result<(), String> {
        for e in &self.engines {
            let resp = self
                .client
                .post(format!("{e}/sim/scenario"))
                .header("content-type", "application/json")
                .body(json!({"scenario": name}).to_string())
                .send()
                .await
                .map_err(|err| format!("cannot reach the simulator at {e}: {err}"))?;
            if !resp.status().is_success() {
                return Err(format!(
                    "the simulator at {e} refused the switch: {}",
                    resp.text().await.unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
}

fn data(current: &str, s: &Scenarios) -> Value {
    let available: Vec<Value> = s
        .available
        .iter()
        .map(|(name, help)| json!({"name": name, "help": help}))
        .collect();
    json!({"current": current, "available": available})
}

async fn show(State(s): State<Arc<Scenarios>>) -> Response {
    match s.current().await {
        Ok(cur) => success(data(&cur, &s)),
        Err(e) => error(StatusCode::BAD_GATEWAY, "unavailable", &e),
    }
}

async fn switch(State(s): State<Arc<Scenarios>>, body: String) -> Response {
    let names: Vec<&str> = s.available.iter().map(|(n, _)| n.as_str()).collect();
    let name = match serde_json::from_str::<Value>(&body) {
        Ok(v) => v["scenario"].as_str().map(str::to_string),
        Err(_) => None,
    };
    let Some(name) = name.filter(|n| names.contains(&n.as_str())) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            &format!(
                "send {{\"scenario\": NAME}} with NAME one of {}",
                names.join(", ")
            ),
        );
    };
    if let Err(e) = s.switch(&name).await {
        return error(StatusCode::BAD_GATEWAY, "unavailable", &e);
    }
    eprintln!("strata: scenario switched to {name}");
    success(data(&name, &s))
}
