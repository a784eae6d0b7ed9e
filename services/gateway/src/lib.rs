//! The API gateway: the fleet's only public entry point and the home of the web UI.
//!
//! GET requests go to the account view; POST and DELETE go to the command services. Every
//! request carries a correlation id (`X-Correlation-Id`, made up when missing) to the upstream
//! and back. Each upstream call has a timeout. Idempotent requests (GET, DELETE) are retried a
//! bounded number of times after a failure; a POST only when it never reached the upstream (no
//! connection could be made, as when a container is being replaced).

mod proxy;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use service_kit::{health, AppError, Listener, MetricsText, ServeError};

pub use proxy::{Upstream, CORRELATION_HEADER};

/// The gateway's settings; [`Config::from_env`] documents the variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: [u8; 4],
    pub port: u16,
    pub accounts_url: String,
    pub transfers_url: String,
    pub view_url: String,
    /// The indexer (full-text search); optional: the gateway runs without it.
    pub search_url: String,
    /// The timeout of one upstream attempt.
    pub upstream_timeout: Duration,
    /// How many times a request is retried: an idempotent one after a connection failure or
    /// timeout, any request when no connection could be made.
    pub retries: u32,
}

impl Config {
    /// `PORT` (8080), `ACCOUNTS_URL` (http://127.0.0.1:8101), `TRANSFERS_URL`
    /// (http://127.0.0.1:8102), `VIEW_URL` (http://127.0.0.1:8103), `SEARCH_URL`
    /// (http://127.0.0.1:8105), `GATEWAY_TIMEOUT_MS` (5000), `GATEWAY_RETRIES` (2).
    pub fn from_env() -> Result<Self, service_kit::ConfigError> {
        Ok(Self {
            host: [0, 0, 0, 0],
            port: service_kit::env_port(8080)?,
            accounts_url: service_kit::env_or("ACCOUNTS_URL", "http://127.0.0.1:8101".to_owned())?,
            transfers_url: service_kit::env_or(
                "TRANSFERS_URL",
                "http://127.0.0.1:8102".to_owned(),
            )?,
            view_url: service_kit::env_or("VIEW_URL", "http://127.0.0.1:8103".to_owned())?,
            search_url: service_kit::env_or("SEARCH_URL", "http://127.0.0.1:8105".to_owned())?,
            upstream_timeout: Duration::from_millis(service_kit::env_or(
                "GATEWAY_TIMEOUT_MS",
                5000u64,
            )?),
            retries: service_kit::env_or("GATEWAY_RETRIES", 2u32)?,
        })
    }

    /// Loopback, port 0 and these upstreams: for tests. Search points at the default
    /// `SEARCH_URL`; set `search_url` to test it.
    pub fn for_tests(accounts_url: &str, transfers_url: &str, view_url: &str) -> Self {
        Self {
            host: [127, 0, 0, 1],
            port: 0,
            accounts_url: accounts_url.to_owned(),
            transfers_url: transfers_url.to_owned(),
            view_url: view_url.to_owned(),
            search_url: "http://127.0.0.1:8105".to_owned(),
            upstream_timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub accounts: Arc<Upstream>,
    pub transfers: Arc<Upstream>,
    pub view: Arc<Upstream>,
    pub search: Arc<Upstream>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] service_kit::BindError),
    #[error("could not build the upstream HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The bound, ready-to-run gateway.
pub struct Application {
    listener: Listener,
    router: Router,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let client = service_kit::net::client_builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let upstream = |name: &'static str, url: &str| {
            Arc::new(Upstream::new(
                name,
                url,
                client.clone(),
                config.upstream_timeout,
                config.retries,
            ))
        };
        let state = AppState {
            accounts: upstream("accounts", &config.accounts_url),
            transfers: upstream("transfers", &config.transfers_url),
            view: upstream("account-view", &config.view_url),
            search: upstream("indexer", &config.search_url),
        };
        let listener = Listener::bind("the gateway", config.host, config.port).await?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Serves until `stop` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.listener.serve(self.router, stop).await
    }
}

service_kit::service!(Application, Config, "the gateway");

/// All routes: the public API, `/health`, `/metrics` and the web UI.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/app.js", get(ui::script))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/accounts", post(proxy::open_account))
        .route(
            "/api/accounts/{id}",
            get(proxy::get_account).delete(proxy::close_account),
        )
        .route(
            "/api/customers/{id}/accounts",
            get(proxy::customer_accounts),
        )
        .route("/api/transfers", post(proxy::create_transfer))
        .route("/api/transfers/{id}", get(proxy::get_transfer))
        .route("/api/search", get(proxy::search))
        .fallback(service_kit::error::route_not_found)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// 200 when every required upstream answers its `/health` with 200, else 503; the body lists
/// each. The indexer is optional: it is listed (`"optional": true`) but never makes this fail.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (a, t, v, s) = tokio::join!(
        state.accounts.health(),
        state.transfers.health(),
        state.view.health(),
        state.search.health()
    );
    let all_up = [&a, &t, &v].iter().all(|s| s.is_ok());
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!({"status": health::OK}),
        Err(e) => json!({"status": health::UNAVAILABLE, "error": e}),
    };
    let body = json!({
        "status": if all_up { health::OK } else { health::UNAVAILABLE },
        "upstreams": {
            "accounts": show(&a),
            "transfers": show(&t),
            "account-view": show(&v),
        },
        "optional": {
            "indexer": show(&s),
        }
    });
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics(State(state): State<AppState>) -> Result<String, AppError> {
    let upstreams = [
        &state.accounts,
        &state.transfers,
        &state.view,
        &state.search,
    ];
    let stats: Vec<_> = upstreams.iter().map(|u| (u.name(), u.stats())).collect();
    let mut text = MetricsText::new();
    type Pick = fn(&proxy::UpstreamStats) -> u64;
    let families: [(&str, &str, Pick); 3] = [
        (
            "gateway_upstream_requests_total",
            "Requests forwarded to an upstream.",
            |s| s.requests,
        ),
        (
            "gateway_upstream_retries_total",
            "Retried attempts of idempotent requests.",
            |s| s.retries,
        ),
        (
            "gateway_upstream_failures_total",
            "Requests that got no answer from the upstream, after retries.",
            |s| s.failures,
        ),
    ];
    for (name, help, pick) in families {
        text.labelled(
            name,
            "counter",
            help,
            stats
                .iter()
                .map(|(upstream, s)| (vec![("upstream", *upstream)], pick(s) as f64)),
        );
    }
    Ok(text.finish())
}
