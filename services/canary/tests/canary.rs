//! Spawns the canary on port 0 and checks its answers.

use canary::{Application, Config, Hello};

async fn spawn(vars: &[(&str, String)]) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut config = Config::from_env(|k| {
        vars.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    })
    .expect("config");
    config.port = 0;
    let app = Application::build(config).await.expect("bind");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    (port, tx)
}

#[tokio::test]
async fn answers_message_and_healthy() {
    let (port, _stop) = spawn(&[
        ("CANARY_MESSAGE", "hi".into()),
        ("CANARY_VERSION", "v7".into()),
    ])
    .await;
    let hello: Hello = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("get /")
        .json()
        .await
        .expect("json");
    assert_eq!(
        hello,
        Hello {
            message: "hi".into(),
            version: "v7".into()
        }
    );
    assert_eq!(canary::probe_health(port).await.expect("probe"), 200);
}

#[tokio::test]
async fn health_fails_when_switched() {
    let (port, _stop) = spawn(&[("CANARY_HEALTH", "fail".into())]).await;
    assert_eq!(canary::probe_health(port).await.expect("probe"), 503);
}

#[tokio::test]
async fn health_file_switch_turns_health_off_and_on() {
    let dir = std::env::temp_dir().join(format!("canary-switch-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let (port, _stop) = spawn(&[("CANARY_HEALTH_FILE", dir.display().to_string())]).await;
    assert_eq!(canary::probe_health(port).await.expect("probe"), 200);
    std::fs::write(&dir, b"off").expect("write switch");
    assert_eq!(canary::probe_health(port).await.expect("probe"), 503);
    std::fs::remove_file(&dir).expect("remove switch");
    assert_eq!(canary::probe_health(port).await.expect("probe"), 200);
}
