//! Registry access against the real `docker-registry`: basic auth from an htpasswd file,
//! credentials from `config.json` and from a credential helper found on the child's `PATH`,
//! and TLS with a private CA taken from a `certs.d`-style directory. Images are uploaded through
//! a plain sibling registry on the same storage. The binary runs with its own `DOCKER_CONFIG`,
//! `DEPLOYER_REGISTRY_CERTS` and `PATH`; this process's environment is never changed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use deployer::registry::{DockerConfig, RegistryClient, RegistryError};

use crate::support::{self, canary_service, Guard, Project, Registry};

const USER: &str = "deployer";
const PASSWORD: &str = "s3cret-pass";

/// A registry that wants `USER:PASSWORD` (a bcrypt htpasswd entry).
async fn htpasswd_registry() -> Registry {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    Registry::start_guarded(Guard {
        htpasswd: Some(format!("{USER}:{hash}\n")),
        ..Guard::default()
    })
    .await
}

/// `deployer plan --output json` for a one-service manifest using `image`, with `config_json`
/// as the docker config, `certs` as `DEPLOYER_REGISTRY_CERTS` and `path_first` before `PATH`.
fn plan(
    p: &Project,
    image: &str,
    config_json: &str,
    certs: &Path,
    path_first: Option<&Path>,
) -> Output {
    let manifest = p.write(
        "deploy.yaml",
        &format!(
            "project: {}\nservices:\n{}",
            p.name,
            canary_service("api", image, "")
        ),
    );
    let docker_config = p.dir.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).expect("mkdir docker-config");
    std::fs::write(docker_config.join("config.json"), config_json).expect("write config.json");
    let mut cmd = Command::new(support::deployer_bin());
    cmd.args(["plan", "--output", "json", "-f"])
        .arg(&manifest)
        .env("DOCKER_CONFIG", &docker_config)
        .env("DEPLOYER_REGISTRY_CERTS", certs);
    if let Some(dir) = path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    }
    cmd.output().expect("run deployer plan")
}

/// The desired digest of the plan's only service.
fn planned_digest(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    plan["services"][0]["image_digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no image_digest in {plan}"))
        .to_string()
}

/// The one error line of a failed run (exit 1, no panic), after the `engine:` line that every
/// plan names its engine with.
fn one_error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit 1: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("engine: "),
        "the engine line, then one error line: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[1].to_string()
}

fn config_path(p: &Project) -> String {
    p.dir
        .path()
        .join("docker-config/config.json")
        .display()
        .to_string()
}

fn auths(registry: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_resolves_with_the_right_credentials_and_refuses_wrong_or_none() {
    if support::docker().await.is_none() {
        return;
    }
    let p = Project::new("htpasswd");
    let certs = tempfile::tempdir().expect("tempdir");
    let registry = htpasswd_registry().await;
    let repo = format!("{}/api", p.name);
    let digest = registry.upload(&repo, "v1", "v1").await;
    let image = format!("{}/{repo}:v1", registry.addr);
    let addr = &registry.addr;

    let right = plan(&p, &image, &auths(addr, USER, PASSWORD), certs.path(), None);
    assert_eq!(planned_digest(&right), digest);

    let wrong = plan(&p, &image, &auths(addr, USER, "wrong"), certs.path(), None);
    assert_eq!(
        one_error_line(&wrong),
        format!(
            "deployer: error: reading the engine's state: resolving image {image}: authentication to registry {addr} failed: it refused user {USER} from the auths entry in {}; run `docker login {addr}` again or fix the credentials there",
            config_path(&p)
        )
    );

    let none = plan(&p, &image, "{}", certs.path(), None);
    assert_eq!(
        one_error_line(&none),
        format!(
            "deployer: error: reading the engine's state: resolving image {image}: authentication to registry {addr} failed: {} holds no credentials for it; run `docker login {addr}`",
            config_path(&p)
        )
    );
}

/// Writes an executable `docker-credential-<name>` shell script into `dir`.
fn write_helper(dir: &Path, name: &str, body: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod helper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_helper_on_path_supplies_the_credentials() {
    if support::docker().await.is_none() {
        return;
    }
    let p = Project::new("credhelper");
    let certs = tempfile::tempdir().expect("tempdir");
    let bin = tempfile::tempdir().expect("tempdir");
    let registry = htpasswd_registry().await;
    let repo = format!("{}/api", p.name);
    let digest = registry.upload(&repo, "v1", "v1").await;
    let image = format!("{}/{repo}:v1", registry.addr);
    // The helper protocol: `get`, the server on stdin, JSON on stdout.
    let asked = bin.path().join("asked");
    write_helper(
        bin.path(),
        "fleettest",
        &format!(
            "[ \"$1\" = get ] || exit 9\ncat > '{}'\nprintf '{{\"ServerURL\":\"x\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}\\n'\n",
            asked.display()
        ),
    );
    let config = format!(r#"{{"credHelpers": {{"{}": "fleettest"}}}}"#, registry.addr);

    let out = plan(&p, &image, &config, certs.path(), Some(bin.path()));
    assert_eq!(planned_digest(&out), digest);
    assert_eq!(
        std::fs::read_to_string(&asked).expect("the helper was asked"),
        registry.addr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_credential_helper_is_one_clear_error() {
    if support::docker().await.is_none() {
        return;
    }
    let p = Project::new("credhelper-fails");
    let certs = tempfile::tempdir().expect("tempdir");
    let bin = tempfile::tempdir().expect("tempdir");
    let registry = htpasswd_registry().await;
    let repo = format!("{}/api", p.name);
    registry.upload(&repo, "v1", "v1").await;
    let image = format!("{}/{repo}:v1", registry.addr);
    let addr = &registry.addr;
    write_helper(
        bin.path(),
        "broken",
        "cat > /dev/null\necho 'the keychain is locked' >&2\nexit 3\n",
    );
    write_helper(
        bin.path(),
        "empty",
        "cat > /dev/null\necho 'credentials not found in native keychain'\nexit 1\n",
    );

    let broken = plan(
        &p,
        &image,
        &format!(r#"{{"credHelpers": {{"{addr}": "broken"}}}}"#),
        certs.path(),
        Some(bin.path()),
    );
    assert_eq!(
        one_error_line(&broken),
        format!(
            "deployer: error: reading the engine's state: resolving image {image}: reading docker credentials: `docker-credential-broken get` failed for {addr} (exit status: 3): the keychain is locked; fix the helper or remove it from {}",
            config_path(&p)
        )
    );

    // "Not found" from a helper means no credentials, as for the docker CLI.
    let empty = plan(
        &p,
        &image,
        &format!(r#"{{"credHelpers": {{"{addr}": "empty"}}}}"#),
        certs.path(),
        Some(bin.path()),
    );
    assert_eq!(
        one_error_line(&empty),
        format!(
            "deployer: error: reading the engine's state: resolving image {image}: authentication to registry {addr} failed: {} holds no credentials for it; run `docker login {addr}`",
            config_path(&p)
        )
    );
}

/// A CA called `ca_name` and a certificate it signed for 127.0.0.1 and localhost: (CA PEM,
/// cert PEM, key PEM).
fn tls_material(ca_name: &str) -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).expect("CA certificate");

    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::DnsName("localhost".try_into().expect("name")),
    ];
    let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("certificate");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// A certs directory holding `ca_pem` as `<dir>/<registry>/ca.crt`.
fn certs_dir_with(registry: &str, ca_pem: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(registry)).expect("mkdir");
    std::fs::write(dir.path().join(registry).join("ca.crt"), ca_pem).expect("write ca.crt");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_registry_resolves_when_its_ca_is_in_the_certs_dir_and_is_refused_otherwise() {
    if support::docker().await.is_none() {
        return;
    }
    let p = Project::new("tls");
    let (ca, cert, key) = tls_material("registry CA");
    let (other_ca, _, _) = tls_material("another CA");
    let registry = Registry::start_guarded(Guard {
        tls: Some((cert, key)),
        ..Guard::default()
    })
    .await;
    let repo = format!("{}/api", p.name);
    let digest = registry.upload(&repo, "v1", "v1").await;
    let image = format!("{}/{repo}:v1", registry.addr);
    let addr = &registry.addr;

    let trusted = certs_dir_with(addr, &ca);
    let out = plan(&p, &image, "{}", trusted.path(), None);
    assert_eq!(planned_digest(&out), digest);

    let untrusted = certs_dir_with(addr, &other_ca);
    let out = plan(&p, &image, "{}", untrusted.path(), None);
    assert_eq!(
        one_error_line(&out),
        format!(
            "deployer: error: reading the engine's state: resolving image {image}: the certificate of registry {addr} is not trusted (client error (Connect): invalid peer certificate: UnknownIssuer); put the certificate of the CA that signed it in {}/{addr}/ca.crt, or set DEPLOYER_REGISTRY_CERTS to a directory laid out like /etc/docker/certs.d",
            untrusted.path().display()
        )
    );
}

#[tokio::test]
async fn a_loopback_tls_registry_without_a_certs_folder_is_explained() {
    let (_, cert, key) = tls_material("registry CA");
    let registry = Registry::start_guarded(Guard {
        tls: Some((cert, key)),
        ..Guard::default()
    })
    .await;
    let certs = tempfile::tempdir().expect("tempdir");
    let err = RegistryClient::new(DockerConfig::default())
        .expect("client")
        .with_certs_dir(certs.path())
        .resolve(&registry.addr, "team/api", "v1")
        .await
        .expect_err("plain HTTP to a TLS registry");
    assert!(
        matches!(err, RegistryError::PlainHttpRefused { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "registry {addr} answered 400 to plain HTTP; if it serves HTTPS, put the certificate of the CA that signed it in {}/{addr}/ca.crt (a loopback registry is spoken to over HTTPS only when that directory exists)",
            certs.path().display(),
            addr = registry.addr
        )
    );
}
