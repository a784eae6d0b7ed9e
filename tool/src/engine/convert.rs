//! Turns a `spec::ContainerSpec` into bollard's create-container body. This is the only place
//! that decides how a container looks on the engine, and it adds nothing the spec does not say.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkingConfig,
    PortBinding, RestartPolicy as EngineRestart, RestartPolicyNameEnum,
};

use super::EngineError;
use crate::manifest::{Protocol, RestartPolicy};
use crate::spec::ContainerSpec;

/// The create body for `spec`, running `image` (the reference to create from, possibly pinned
/// to a digest) and labelled with `image_digest`. Only the first network is attached at
/// creation (API 1.41 accepts one); `Engine::create_from_spec` connects the others. Without
/// `aliases` the container joins its network without the service's DNS alias (it gets it once
/// healthy, see `Engine::set_aliases`).
pub fn create_body(
    spec: &ContainerSpec,
    image: &str,
    image_digest: &str,
    aliases: bool,
) -> Result<ContainerCreateBody, EngineError> {
    let env = spec.env_list().map_err(|name| EngineError::Config(format!(
        "the value of secret {name} of service {} is missing; apply the plan with the same manifests it was made from",
        spec.service
    )))?;
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        let key = format!(
            "{}/{}",
            p.container_port,
            match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            }
        );
        exposed.push(key.clone());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.map(|ip| ip.to_string()),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: Some(m.volume.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    let restart = match spec.restart {
        RestartPolicy::No => EngineRestart {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::Always => EngineRestart {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => EngineRestart {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure { max_retries } => EngineRestart {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: max_retries.map(i64::from),
        },
    };
    let primary = spec.networks.first();
    let host_config = HostConfig {
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        restart_policy: Some(restart),
        memory: spec
            .resources
            .memory_bytes
            .and_then(|m| i64::try_from(m).ok()),
        nano_cpus: spec.resources.nano_cpus.and_then(|c| i64::try_from(c).ok()),
        network_mode: primary.map(|n| n.network.clone()),
        init: spec.init.then_some(true),
        ..Default::default()
    };
    let networking_config = primary.map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            n.network.clone(),
            EndpointSettings {
                aliases: aliases.then(|| n.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    Ok(ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: spec.command.clone(),
        env: Some(env),
        labels: Some(spec.labels_with_digest(image_digest).into_iter().collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        stop_timeout: i64::try_from(spec.stop_grace_period.as_secs()).ok(),
        stop_signal: spec.stop_signal.clone(),
        user: spec.user.clone(),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    })
}
