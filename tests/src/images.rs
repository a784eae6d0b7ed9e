//! The fleet's images, built once per test process by `ci/build-images.sh` (from the static
//! release binaries of `ci/build-static.sh`), and variants derived from them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{docker, workspace_root, Error};

/// Every service of the fleet, in `manifests/ci.yaml`.
pub const SERVICES: [&str; 7] = [
    "event-store",
    "accounts",
    "transfers",
    "account-view",
    "archiver",
    "indexer",
    "gateway",
];

/// The local tag the e2e images are built under: `fleet/<service>:e2e`.
pub const LOCAL_TAG: &str = "e2e";

/// The local image of `service`.
pub fn local_image(service: &str) -> String {
    format!("fleet/{service}:{LOCAL_TAG}")
}

/// Builds the images and the static deployer once per process; later calls return at once.
/// Returns the deployer binary.
pub fn ensure_built() -> Result<PathBuf, Error> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e}")))
        .clone()
        .map_err(|e| Error::unexpected("building the fleet's images (an earlier test failed)", e))
}

fn build() -> Result<PathBuf, Error> {
    let root = workspace_root();
    let started = std::time::Instant::now();
    docker::run(
        "building the static deployer (ci/build-static.sh deployer)",
        Command::new(root.join("ci/build-static.sh"))
            .arg("deployer")
            .current_dir(&root),
    )?;
    let table = docker::run(
        "building the images (ci/build-images.sh)",
        Command::new(root.join("ci/build-images.sh"))
            .args(["--tag", LOCAL_TAG])
            .args(SERVICES)
            .current_dir(&root),
    )?;
    eprintln!(
        "e2e: images built in {:.1}s:\n{table}",
        started.elapsed().as_secs_f64()
    );
    Ok(root.join("target/x86_64-unknown-linux-gnu/release/deployer"))
}

/// Builds `tag` as `FROM base` plus `lines` (Dockerfile instructions). Nothing is pulled: the
/// base is a local image.
pub fn derive(base: &str, lines: &[&str], tag: &str) -> Result<(), Error> {
    let dir = tempfile::Builder::new()
        .prefix("e2e-image-")
        .tempdir()
        .map_err(Error::io("creating a build folder"))?;
    let dockerfile = format!("FROM {base}\n{}\n", lines.join("\n"));
    std::fs::write(dir.path().join("Dockerfile"), dockerfile)
        .map_err(Error::io("writing a Dockerfile"))?;
    docker::run(
        &format!("building {tag} from {base}"),
        Command::new("docker")
            .args(["build", "-q", "-t", tag])
            .arg(dir.path()),
    )?;
    Ok(())
}

/// The image's labels.
pub fn labels(image: &str) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let out = docker::docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", image])?;
    serde_json::from_str(out.trim())
        .map_err(|e| Error::unexpected(format!("reading the labels of {image}"), e))
}

/// One field of the image's configuration, through a Go template (e.g. `{{.Config.User}}`).
pub fn inspect(image: &str, template: &str) -> Result<String, Error> {
    Ok(
        docker::docker(&["image", "inspect", "-f", template, image])?
            .trim()
            .to_owned(),
    )
}
