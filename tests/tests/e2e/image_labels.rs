//! The images: FROM scratch, non-root, a HEALTHCHECK through the binary, OCI labels, the event
//! labels (the schemas label equal to the schemas the code generates), the projection version
//! label, and at most 15 MB each. (That the event declarations they are labelled from match the
//! code is checked without Docker, in the `workspace` test binary.)

use std::collections::BTreeSet;

use tests::images::{self, SERVICES};
use tests::{docker, events, workspace_root};

/// The size target of every service image.
const MAX_IMAGE_BYTES: u64 = 15_000_000;

#[test]
fn every_image_is_small_non_root_health_checked_and_labelled() {
    if !docker::available_or_skip("every_image_is_small_non_root_health_checked_and_labelled") {
        return;
    }
    images::ensure_built().expect("building the images");
    let head = docker::run(
        "reading the git revision",
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(workspace_root()),
    )
    .expect("git rev-parse")
    .trim()
    .to_owned();
    let mut problems = Vec::new();
    eprintln!("| image | size (bytes) | size (MB) |\n| --- | ---: | ---: |");
    for service in SERVICES {
        let image = images::local_image(service);
        let size: u64 = images::inspect(&image, "{{.Size}}")
            .expect("image size")
            .parse()
            .expect("a number");
        eprintln!("| fleet/{service} | {size} | {:.1} |", size as f64 / 1e6);
        if size > MAX_IMAGE_BYTES {
            problems.push(format!("{image} is {size} bytes, over {MAX_IMAGE_BYTES}"));
        }
        let user = images::inspect(&image, "{{.Config.User}}").expect("user");
        if user.is_empty() || user == "0" || user.starts_with("0:") || user == "root" {
            problems.push(format!("{image} runs as {user:?}, not as a non-root user"));
        }
        let health = images::inspect(&image, "{{json .Config.Healthcheck.Test}}").expect("health");
        if health != r#"["CMD","/service","healthcheck"]"# {
            problems.push(format!(
                "{image} has HEALTHCHECK {health}, not /service healthcheck"
            ));
        }
        let layers = images::inspect(&image, "{{len .RootFS.Layers}}").expect("layers");
        if layers != "2" {
            problems.push(format!(
                "{image} has {layers} layers; FROM scratch with the binary and /data makes 2"
            ));
        }
        let labels = images::labels(&image).expect("labels");
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if label("org.opencontainers.image.version").is_empty() {
            problems.push(format!("{image} lacks the OCI version label: {labels:?}"));
        }
        // The source label names the repository's address or is left out; a checkout's local
        // path (or a remote's credentials) must never end up in an image.
        let source = label("org.opencontainers.image.source");
        if source.starts_with('/')
            || source.starts_with("file:")
            || source.contains('@') && source.contains("://")
        {
            problems.push(format!(
                "{image} has a local or credentialed source label {source:?}"
            ));
        }
        if !label("org.opencontainers.image.revision").starts_with(&head) {
            problems.push(format!(
                "{image} has revision {:?}, the checkout is at {head}",
                label("org.opencontainers.image.revision")
            ));
        }
        let schemas = label("io.fleet.events.schemas");
        let generated = generated_schemas(service);
        match serde_json::from_str::<serde_json::Value>(&schemas) {
            Ok(labelled) if labelled == generated => {}
            Ok(labelled) => problems.push(format!(
                "{image} labels io.fleet.events.schemas {labelled}, the code generates {generated}"
            )),
            Err(e) => problems.push(format!(
                "{image} has an io.fleet.events.schemas label that is not JSON ({e}): {schemas:?}"
            )),
        }
        if schemas.contains('\n') {
            problems.push(format!(
                "{image}'s io.fleet.events.schemas label spans lines"
            ));
        }
        let projection = labels.get("io.fleet.projection.version").cloned();
        let declared = projection_version(service);
        if projection != declared {
            problems.push(format!(
                "{image} labels io.fleet.projection.version {projection:?}, ci/events/{service}.projection declares {declared:?}"
            ));
        }
        for kind in ["produces", "consumes"] {
            let declared = events::declared(service, kind).expect("declarations");
            let labelled: BTreeSet<String> = label(&format!("io.fleet.events.{kind}"))
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if declared != labelled {
                problems.push(format!(
                    "{image} labels {kind} {labelled:?}, ci/events/{service}.{kind} declares {declared:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "image problems:\n  {}",
        problems.join("\n  ")
    );
}

/// The schemas label `service`'s image must carry: what its library generates, `{}` for a
/// service that produces nothing.
fn generated_schemas(service: &str) -> serde_json::Value {
    let schemas = match service {
        "accounts" => accounts::event_schemas(),
        "transfers" => transfers::event_schemas(),
        _ => Ok(Default::default()),
    }
    .unwrap_or_else(|e| panic!("generating the schemas of {service}: {e}"));
    serde_json::from_str(&banking::schema::label(&schemas)).expect("the label is JSON")
}

/// The projection version `ci/events/<service>.projection` declares, if the file exists.
fn projection_version(service: &str) -> Option<String> {
    let path = workspace_root().join(format!("ci/events/{service}.projection"));
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}
