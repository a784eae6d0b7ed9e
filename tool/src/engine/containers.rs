//! Containers: list, inspect, create (from a spec, with its networks and secret files), start,
//! stop, remove, aliases, logs and exec.

use super::*;

impl Engine {
    /// Every container (running or not) carrying all of `labels` (`key=value`, or `key` alone
    /// when the value is `None`), in one list call.
    pub async fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.error("listing containers", e))?;
        Ok(list.into_iter().map(container_info).collect())
    }

    /// Inspects one container.
    pub async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.error(&format!("inspecting container {id}"), e))?;
        let state = c.state.unwrap_or_default();
        let run_state = match state.status.map(|s| s.to_string()).as_deref() {
            Some("created") => RunState::Created,
            Some("running") => RunState::Running,
            Some("paused") => RunState::Paused,
            Some("restarting") => RunState::Restarting,
            Some("removing") => RunState::Removing,
            Some("exited") => RunState::Exited {
                code: state.exit_code.unwrap_or(0),
            },
            Some("dead") => RunState::Dead,
            _ => RunState::Unknown,
        };
        let health = match state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .as_deref()
        {
            Some("starting") => DockerHealth::Starting,
            Some("healthy") => DockerHealth::Healthy,
            Some("unhealthy") => DockerHealth::Unhealthy,
            _ => DockerHealth::None,
        };
        let net = c.network_settings.unwrap_or_default();
        let endpoints = net.networks.unwrap_or_default();
        let networks = endpoints
            .iter()
            .map(|(name, ep)| (name.clone(), ep.aliases.clone().unwrap_or_default()))
            .collect();
        let ips = endpoints
            .into_iter()
            .filter_map(|(name, ep)| {
                ep.ip_address
                    .filter(|ip| !ip.is_empty())
                    .map(|ip| (name, ip))
            })
            .collect();
        let mut published = Vec::new();
        for (key, bindings) in net.ports.unwrap_or_default() {
            let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            for b in bindings.unwrap_or_default() {
                if let Some(hp) = b.host_port.and_then(|p| p.parse::<u16>().ok()) {
                    published.push((port, hp));
                }
            }
        }
        published.sort_unstable();
        published.dedup();
        Ok(ContainerDetails {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            state: run_state,
            health,
            ips,
            networks,
            published,
            user: c
                .config
                .as_ref()
                .and_then(|cfg| cfg.user.clone())
                .unwrap_or_default(),
            labels: c
                .config
                .and_then(|cfg| cfg.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            started_at: state.started_at.unwrap_or_default(),
            restart_count: c.restart_count.unwrap_or(0),
        })
    }

    /// Creates (does not start) a container from a ready-made body; returns its id.
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| self.error(&format!("creating container {name}"), e))?;
        Ok(created.id)
    }

    /// Creates (does not start) a container from a raw create body in the engine API's JSON
    /// form (for one-off containers such as the smoke test's).
    pub async fn create_container_json(
        &self,
        name: &str,
        body: serde_json::Value,
    ) -> Result<String, EngineError> {
        let body: ContainerCreateBody =
            serde_json::from_value(body).map_err(|e| EngineError::Api {
                action: format!("preparing container {name}"),
                detail: e.to_string(),
            })?;
        self.create_container(name, body).await
    }

    /// Creates (does not start) the container `spec` describes, named
    /// `spec.container_name(suffix)`, joins it to every network of the spec (with the service's
    /// DNS alias only when `aliases`; see [`Engine::set_aliases`]) and uploads its secret files.
    /// Returns the id. A container that could not be completed is removed.
    pub async fn create_from_spec(
        &self,
        spec: &crate::spec::ContainerSpec,
        image: &str,
        image_digest: &str,
        suffix: &str,
        aliases: bool,
    ) -> Result<String, EngineError> {
        let body = create_body(spec, image, image_digest, aliases)?;
        let name = spec.container_name(suffix);
        let id = self.create_container(&name, body).await?;
        let completed = async {
            for extra in spec.networks.iter().skip(1) {
                let req = bollard::models::NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(bollard::models::EndpointSettings {
                        aliases: aliases.then(|| extra.aliases.clone()),
                        ..Default::default()
                    }),
                };
                self.docker
                    .connect_network(&extra.network, req)
                    .await
                    .map_err(|e| {
                        self.error(&format!("joining {name} to network {}", extra.network), e)
                    })?;
            }
            if !spec.secret_files.is_empty() {
                self.put_secret_files(&id, &name, spec).await?;
            }
            Ok::<(), EngineError>(())
        };
        if let Err(e) = completed.await {
            let _ = self.remove_container(&id).await;
            return Err(e);
        }
        Ok(id)
    }

    /// Gives container `id` exactly `aliases` on `network`, by leaving the network and joining
    /// it again (the engine cannot change the aliases of an attachment). Its address on that
    /// network changes, and its open connections there are cut.
    pub async fn set_aliases(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        let action = format!("changing the aliases of {id} on network {network}");
        let leave = bollard::models::NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(true),
        };
        match self.docker.disconnect_network(network, leave).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("is not connected") => {}
            Err(e) => return Err(self.error(&action, e)),
        }
        let join = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, join)
            .await
            .map_err(|e| self.error(&action, e))
    }

    /// Uploads the secret files of `spec` into the created container `id`: mode 0400, owned
    /// by the user the container runs as. Errors name the secret, never its value.
    async fn put_secret_files(
        &self,
        id: &str,
        name: &str,
        spec: &crate::spec::ContainerSpec,
    ) -> Result<(), EngineError> {
        let files = spec.secret_file_contents().map_err(|secret| EngineError::Config(format!(
            "the value of secret {secret} of service {} is missing; apply the plan with the same manifests it was made from",
            spec.service
        )))?;
        let user = self.inspect_container(id).await?.user;
        let (uid, gid) = self.resolve_user(id, &user).await.map_err(|why| {
            EngineError::Config(format!(
                "delivering the secret files of service {}: {why}",
                spec.service
            ))
        })?;
        let entries: Vec<archive::TarFile<'_>> = files
            .iter()
            .map(|&(path, value)| archive::TarFile {
                path,
                data: value.as_bytes(),
                mode: 0o400,
                uid,
                gid,
            })
            .collect();
        let tar = archive::tar(&entries).map_err(EngineError::Config)?;
        let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(bytes::Bytes::from(tar)))
            .await
            .map_err(|e| self.error(&format!("putting the secret files into {name}"), e))
    }

    /// The numeric uid and gid of `user` (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`, empty for
    /// root) in the created container `id`, looking names up in its `/etc/passwd` and
    /// `/etc/group`.
    async fn resolve_user(&self, id: &str, user: &str) -> Result<(u32, u32), String> {
        if user.is_empty() {
            return Ok((0, 0));
        }
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let passwd = self.read_file(id, "/etc/passwd").await;
        let entry = |name_or_id: &str| {
            passwd.as_deref().and_then(|text| {
                text.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 3 && (f[0] == name_or_id || f[2] == name_or_id))
                    .and_then(|f| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
            })
        };
        let (uid, primary_gid) = match (u.parse::<u32>(), entry(u)) {
            (_, Some(found)) => found,
            (Ok(uid), None) => (uid, 0),
            (Err(_), None) => {
                return Err(format!(
                    "user `{u}` is not in the image's /etc/passwd; give `user` as UID:GID"
                ))
            }
        };
        let gid = match g {
            None => primary_gid,
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    let groups = self.read_file(id, "/etc/group").await;
                    groups
                        .as_deref()
                        .and_then(|text| {
                            text.lines()
                                .map(|l| l.split(':').collect::<Vec<_>>())
                                .find(|f| f.len() > 2 && f[0] == g)
                                .and_then(|f| f[2].parse().ok())
                        })
                        .ok_or_else(|| {
                            format!(
                                "group `{g}` is not in the image's /etc/group; give `user` as UID:GID"
                            )
                        })?
                }
            },
        };
        Ok((uid, gid))
    }

    /// A text file of container `id` (created or running), through the archive API; `None`
    /// when it is missing or unreadable.
    async fn read_file(&self, id: &str, path: &str) -> Option<String> {
        let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            archive.extend_from_slice(&chunk.ok()?);
            if archive.len() > 4 << 20 {
                return None;
            }
        }
        archive::first_file(&archive).and_then(|b| String::from_utf8(b).ok())
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| self.error(&format!("starting container {id}"), e))
    }

    /// Stops gracefully: SIGTERM (or the image's stop signal), then SIGKILL after `grace`
    /// (`None`: the container's own stop timeout). A container already stopped or gone is fine.
    pub async fn stop_container(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<(), EngineError> {
        let opts = grace.map(|g| {
            let secs = i32::try_from(g.as_secs()).unwrap_or(i32::MAX);
            StopContainerOptionsBuilder::default().t(secs).build()
        });
        match self.docker.stop_container(id, opts).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("stopping container {id}"), e)),
        }
    }

    /// Removes a container (forcibly, so a running one is killed). A missing one is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing container {id}"), e)),
        }
    }

    /// The last `lines` lines of a container's stdout and stderr.
    pub async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, EngineError> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| self.error(&format!("reading logs of {id}"), e))?;
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(out)
    }

    /// Runs `cmd` (exec form) in the running container `id` through the exec API and waits at
    /// most `timeout` for it. A command still running then is left to finish on its own.
    pub async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome, EngineError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = format!("running `{}` in container {id}", cmd.join(" "));
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error(&action, e))?;
        let run = async {
            let mut output = String::new();
            if let StartExecResults::Attached {
                output: mut out, ..
            } = self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(|e| self.error(&action, e))?
            {
                while let Some(chunk) = out.next().await {
                    let chunk = chunk.map_err(|e| self.error(&action, e))?;
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| self.error(&action, e))?;
            Ok::<_, EngineError>(ExecOutcome {
                exit_code: inspect.exit_code,
                output,
                timed_out: false,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Ok(ExecOutcome {
                exit_code: None,
                output: String::new(),
                timed_out: true,
            }),
        }
    }
}

fn container_info(c: bollard::models::ContainerSummary) -> ContainerInfo {
    let status = c.status.unwrap_or_default();
    let mut ports: Vec<PublishedPort> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(PublishedPort {
                host_ip: p.ip.unwrap_or_default(),
                host_port: p.public_port?,
                container_port: p.private_port,
                protocol: p
                    .typ
                    .map(|t| t.to_string())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "tcp".into()),
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    let ips = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(net, e)| Some((net, e.ip_address.filter(|ip| !ip.is_empty())?)))
        .collect();
    let state = match c.state.map(|s| s.to_string()).as_deref() {
        Some("created") => RunState::Created,
        Some("running") => RunState::Running,
        Some("paused") => RunState::Paused,
        Some("restarting") => RunState::Restarting,
        Some("removing") => RunState::Removing,
        Some("exited") => RunState::Exited {
            code: exit_code_from_status(&status).unwrap_or(0),
        },
        Some("dead") => RunState::Dead,
        _ => RunState::Unknown,
    };
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: c.image.unwrap_or_default(),
        image_id: c.image_id.unwrap_or_default(),
        labels: c.labels.unwrap_or_default().into_iter().collect(),
        state,
        health: health_from_status(&status),
        created: c.created.unwrap_or(0),
        status,
        ports,
        ips,
    }
}

/// API 1.41 lists health only inside the status line: `Up 2 minutes (healthy)`.
fn health_from_status(status: &str) -> DockerHealth {
    if status.contains("(healthy)") {
        DockerHealth::Healthy
    } else if status.contains("(unhealthy)") {
        DockerHealth::Unhealthy
    } else if status.contains("(health: starting)") {
        DockerHealth::Starting
    } else {
        DockerHealth::None
    }
}

/// `Exited (137) 5 seconds ago` -> 137.
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            health_from_status("Up 2 minutes (healthy)"),
            DockerHealth::Healthy
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            DockerHealth::Starting
        );
        assert_eq!(
            health_from_status("Up 9 seconds (unhealthy)"),
            DockerHealth::Unhealthy
        );
        assert_eq!(health_from_status("Up 2 minutes"), DockerHealth::None);
        assert_eq!(
            exit_code_from_status("Exited (137) 5 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 2 minutes"), None);
    }
}
