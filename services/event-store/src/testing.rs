//! Test support: an event store served in-process on a free port over a temporary data
//! directory, for the tests and benches of the store and of the services that use it. Enabled by
//! the `testing` feature, for dev-dependencies only:
//! `event-store = { workspace = true, features = ["testing"] }`.
//!
//! ```ignore
//! let store = event_store::testing::TestStore::start().await;
//! let client = EventStoreClient::new(store.url())?;
//! // ... dropping `store` stops the server and removes its data
//! ```

use std::path::Path;

use service_kit::ServeError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{AppState, Application, Config};

/// An event store running in this process on its own port and data directory. Dropping it
/// tells the server to stop and removes a data directory it created.
pub struct TestStore {
    url: String,
    port: u16,
    config: Config,
    state: AppState,
    /// The data directory when the store made it; `None` when the caller gave one.
    temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestStore {
    /// A store with the default limits, on a free port, over a new temporary directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with the configuration changed by `tweak` first (a limit,
    /// a fixed port, ...).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let temp = tempfile::tempdir().expect("create a temporary data directory for the store");
        let mut config = Config::ephemeral(temp.path());
        tweak(&mut config);
        Self::serve(config, Some(temp)).await
    }

    /// A store over `data_dir`, which the caller keeps (e.g. to start another store on the same
    /// data after this one stopped), with the configuration changed by `tweak` first.
    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::ephemeral(data_dir);
        tweak(&mut config);
        Self::serve(config, None).await
    }

    async fn serve(config: Config, temp: Option<tempfile::TempDir>) -> Self {
        let app = Application::build(config.clone())
            .await
            .expect("the test event store starts");
        let port = app.port();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            config,
            state,
            temp,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the store listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the store's database and journal.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The store's shared state, e.g. to read its metrics.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the store gracefully and waits until it has; panics if serving failed. A data
    /// directory the store made is removed.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the store gracefully and starts a new one with the same configuration on the same
    /// data (on a new port if the port was 0).
    pub async fn restart(mut self) -> Self {
        self.shut_down().await;
        let temp = self.temp.take();
        Self::serve(self.config.clone(), temp).await
    }

    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the test event store's task")
                .expect("the test event store serves until stopped");
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
