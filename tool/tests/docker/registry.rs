//! Registry scenarios against Debian's `docker-registry` on a free port.

use deployer::apply::{self, ApplyOptions};
use deployer::manifest::ImageRef;
use deployer::observe;
use deployer::plan::{self, Action, ReplaceReason};
use deployer::progress::Progress;
use deployer::registry::RegistryError;

use crate::support::{self, build_canary, canary_service, Project, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_a_new_image_under_the_same_tag_shows_as_a_digest_change() {
    let Some(engine) = support::docker().await else {
        return;
    };
    let p = Project::new("registry");
    let registry = Registry::start().await;
    build_canary(&p.image("v1"), &p.name, &[("CANARY_VERSION", "v1")], false);
    build_canary(&p.image("v2"), &p.name, &[("CANARY_VERSION", "v2")], false);
    let repo = format!("{}/canary:stable", p.name);
    let remote = registry.push(&p.image("v1"), &repo);

    let client = support::registry_client();
    let r = ImageRef::parse(&remote).expect("ref");
    let d1 = client
        .resolve(
            r.registry.as_deref().expect("host"),
            &r.repository,
            r.tag_or_latest(),
        )
        .await
        .expect("resolve v1");
    assert!(d1.starts_with("sha256:") && d1.len() == 71, "{d1}");

    // The pushed image is removed locally, so apply must pull it (by digest).
    support::run(std::process::Command::new("docker").args(["rmi", &remote]));
    let m = p.manifest(&format!(
        "project: {}\nservices:\n{}",
        p.name,
        canary_service("api", &remote, "")
    ));
    let progress = Progress::capture();
    apply::apply(
        &engine,
        &client,
        &m,
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("apply v1 from the registry");
    assert!(
        progress
            .captured()
            .iter()
            .any(|l| l.starts_with("pulling ")),
        "{:?}",
        progress.captured()
    );
    let ids = support::containers(&engine, &p.name).await;
    let d = engine.inspect_container(&ids[0].1).await.expect("inspect");
    assert_eq!(d.labels["deployer.image-digest"], d1);

    // Same tag, new image.
    registry.push(&p.image("v2"), &repo);
    let observed = observe::observe(&engine, &client, &m)
        .await
        .expect("observe");
    let plan = plan::compute(&m, &observed);
    let api = &plan.services[0];
    let Action::Replace { reasons } = &api.action else {
        panic!("expected a replace, got {:?}", api.action)
    };
    let Some(ReplaceReason::ImageChanged { from, to }) = reasons.first() else {
        panic!("expected an image change, got {reasons:?}")
    };
    assert_eq!(from.as_deref(), Some(d1.as_str()));
    assert_ne!(to, &d1);

    apply::apply(
        &engine,
        &client,
        &m,
        None,
        &ApplyOptions::default(),
        &progress,
    )
    .await
    .expect("apply v2");
    let ids = support::containers(&engine, &p.name).await;
    let (_, body) = support::get(&engine, &ids[0].1, "/").await.expect("GET /");
    assert!(body.contains("\"v2\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tag_is_a_clear_registry_error() {
    if support::docker().await.is_none() {
        return;
    }
    let registry = Registry::start().await;
    let err = support::registry_client()
        .resolve(&registry.addr, "nothing/here", "v9")
        .await
        .expect_err("missing tag");
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "image {}/nothing/here:v9 not found in registry {}; push it first or fix the tag",
            registry.addr, registry.addr
        )
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_a_clear_error() {
    let port = support::free_port();
    let err = support::registry_client()
        .resolve(&format!("127.0.0.1:{port}"), "x", "latest")
        .await
        .expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot reach registry 127.0.0.1:{port}: "))
            && msg.ends_with("check the address and that the registry runs"),
        "{msg}"
    );
}

/// A registry that wants a bearer token from its realm, which wants basic credentials.
async fn fake_bearer_registry() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let realm = format!("http://{addr}/token");
    let app = axum::Router::new()
        .route(
            "/v2/team/api/manifests/{reference}",
            get(move |headers: HeaderMap| {
                let realm = realm.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if auth == Some("Bearer tok-123") {
                        ([("docker-content-digest", DIGEST)], "").into_response()
                    } else {
                        (
                            StatusCode::UNAUTHORIZED,
                            [(
                                "www-authenticate",
                                format!(
                                    "Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:team/api:pull\""
                                ),
                            )],
                            "",
                        )
                            .into_response()
                    }
                }
            }),
        )
        .route(
            "/token",
            get(
                |headers: HeaderMap,
                 query: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    // "user:pass" in base64.
                    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Basic dXNlcjpwYXNz")
                        && query.get("service").map(String::as_str) == Some("fake")
                        && query.get("scope").map(String::as_str)
                            == Some("repository:team/api:pull");
                    if ok {
                        (StatusCode::OK, "{\"token\": \"tok-123\"}").into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                },
            ),
        );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

#[tokio::test]
async fn bearer_token_auth_uses_credentials_from_the_docker_config() {
    use deployer::registry::{DockerConfig, RegistryClient};

    let (addr, server) = fake_bearer_registry().await;
    let config = DockerConfig::parse(&format!(
        r#"{{"auths": {{"{addr}": {{"auth": "dXNlcjpwYXNz"}}}}}}"#
    ))
    .expect("config");
    let digest = RegistryClient::new(config)
        .expect("client")
        .resolve(&addr, "team/api", "v1")
        .await
        .expect("resolved with a bearer token");
    assert_eq!(digest, format!("sha256:{}", "1".repeat(64)));

    let err = support::registry_client()
        .resolve(&addr, "team/api", "v1")
        .await
        .expect_err("no credentials, no token");
    assert_eq!(
        err.to_string(),
        format!("authentication to registry {addr} failed: the docker config.json holds no credentials for it; run `docker login {addr}`")
    );
    server.abort();
}
