//! Networks, volumes, images (pull, import, the marker image) and files in containers.

use super::*;

impl Engine {
    /// Networks carrying all of `labels`.
    pub async fn list_networks(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<Resource>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| self.error("listing networks", e))?;
        Ok(list
            .into_iter()
            .map(|n| Resource {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect())
    }

    /// Creates a bridge network.
    pub async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(req)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("creating network {name}"), e))
    }

    /// Removes a network; a missing one is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing network {name}"), e)),
        }
    }

    /// Volumes carrying all of `labels`.
    pub async fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<Resource>, EngineError> {
        let filters = label_filters(labels);
        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(|e| self.error("listing volumes", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Resource {
                id: v.name.clone(),
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Creates a named volume (idempotent on the engine's side).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("creating volume {name}"), e))
    }

    /// Removes a volume; a missing one is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.error(&format!("removing volume {name}"), e)),
        }
    }

    /// A local image, or `None` when the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => {
                let config = img.config.unwrap_or_default();
                let has_healthcheck = config
                    .healthcheck
                    .and_then(|h| h.test)
                    .is_some_and(|t| t.first().is_some_and(|k| k != "NONE"));
                Ok(Some(ImageInfo {
                    id: img.id.unwrap_or_default(),
                    repo_digests: img.repo_digests.unwrap_or_default(),
                    has_healthcheck,
                    labels: config.labels.unwrap_or_default().into_iter().collect(),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.error(&format!("inspecting image {reference}"), e)),
        }
    }

    /// Pulls `reference` (`repo:tag` or `repo@digest`), reporting progress to `on_event`.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
        on_event: &mut (dyn FnMut(PullEvent) + Send),
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let creds = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(opts), None, creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.error(&format!("pulling image {reference}"), e))?;
            let detail = info.progress_detail.unwrap_or_default();
            on_event(PullEvent {
                layer: info.id,
                status: info.status.unwrap_or_default(),
                current: detail.current.and_then(|c| u64::try_from(c).ok()),
                total: detail.total.and_then(|c| u64::try_from(c).ok()),
            });
        }
        Ok(())
    }

    /// Makes sure a file-less image named `name` exists (imported from an empty archive), for
    /// containers that are never started and only carry labels, such as the deploy lock.
    pub async fn ensure_marker_image(&self, name: &str) -> Result<(), EngineError> {
        if self.image(name).await?.is_some() {
            return Ok(());
        }
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(vec![
                "CMD [\"/marker\"]".to_string(),
                "LABEL io.deployer.marker=true".to_string(),
            ])
            .build();
        // An empty tar archive is two 512-byte zero blocks.
        let body = bollard::body_full(bytes::Bytes::from(vec![0u8; 1024]));
        let mut stream = self.docker.create_image(Some(opts), Some(body), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| self.error(&format!("importing marker image {name}"), e))?;
        }
        Ok(())
    }

    /// Creates a never-started container from the marker image, carrying `labels`. Creation
    /// is atomic: when the name is taken the result is [`EngineError::Conflict`].
    pub async fn create_marker(
        &self,
        image: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels.clone().into_iter().collect::<HashMap<_, _>>()),
            network_disabled: Some(true),
            ..Default::default()
        };
        self.create_from_marker(image, name, body).await
    }

    /// Creates a never-started container from the marker image with the volume `volume` mounted
    /// at `target`, so files in the volume can be read and written through the archive API
    /// ([`Engine::upload_archive`], [`Engine::download_file`]) without running anything.
    pub async fn create_volume_helper(
        &self,
        image: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        volume: &str,
        target: &str,
    ) -> Result<String, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels.clone().into_iter().collect::<HashMap<_, _>>()),
            network_disabled: Some(true),
            host_config: Some(bollard::models::HostConfig {
                mounts: Some(vec![bollard::models::Mount {
                    target: Some(target.to_string()),
                    source: Some(volume.to_string()),
                    typ: Some(bollard::models::MountType::VOLUME),
                    ..Default::default()
                }]),
                network_mode: Some("none".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_from_marker(image, name, body).await
    }

    /// Creates `name` from the marker image `image`, importing the image only when the engine
    /// does not have it: it nearly always does, and trying first saves an inspect per container.
    async fn create_from_marker(
        &self,
        image: &str,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        match self.create_container(name, body.clone()).await {
            Err(e) if e.is_not_found() => {
                self.ensure_marker_image(image).await?;
                self.create_container(name, body).await
            }
            other => other,
        }
    }

    /// Extracts the tar `archive` into directory `dir` of container `id` (running or not).
    pub async fn upload_archive(
        &self,
        id: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> Result<(), EngineError> {
        let opts = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(
                id,
                Some(opts),
                bollard::body_full(bytes::Bytes::from(archive)),
            )
            .await
            .map_err(|e| self.error(&format!("writing to {dir} in container {id}"), e))
    }

    /// The contents of the regular file `path` in container `id` (running or not), read
    /// through the archive API; `None` when it does not exist.
    pub async fn download_file(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let opts = bollard::query_parameters::DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut tar = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => tar.extend_from_slice(&chunk),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(e) => return Err(self.error(&format!("reading {path} in container {id}"), e)),
            }
        }
        first_file_of_tar(&tar)
            .map(Some)
            .ok_or_else(|| EngineError::Api {
                action: format!("reading {path} in container {id}"),
                detail: "the engine sent no regular file".into(),
            })
    }

    /// True when the named volume exists.
    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.error(&format!("inspecting volume {name}"), e)),
        }
    }

    /// Imports `archive` (a tar of the image's files) as the image `name`, with Dockerfile-like
    /// `changes` (`ENTRYPOINT [...]`, `LABEL k=v`).
    pub async fn import_image(
        &self,
        name: &str,
        archive: Vec<u8>,
        changes: Vec<String>,
    ) -> Result<(), EngineError> {
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(changes)
            .build();
        let body = bollard::body_full(bytes::Bytes::from(archive));
        let mut stream = self.docker.create_image(Some(opts), Some(body), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| self.error(&format!("importing image {name}"), e))?;
        }
        Ok(())
    }

    /// Joins a container to a network (already joined is fine).
    pub async fn connect_network(&self, network: &str, id: &str) -> Result<(), EngineError> {
        let req = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: None,
        };
        match self.docker.connect_network(network, req).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(self.error(&format!("joining {id} to network {network}"), e)),
        }
    }
}

/// The data of the first regular file in a tar archive (PAX and GNU extension headers are
/// skipped); `None` when there is none or the archive is cut short.
pub fn first_file_of_tar(tar: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .ok()?;
        let size = usize::try_from(size).ok()?;
        let data = at + 512;
        if matches!(header[156], b'0' | 0) {
            return tar.get(data..data.checked_add(size)?).map(<[u8]>::to_vec);
        }
        at = data + size.div_ceil(512) * 512;
    }
    None
}

/// A ustar archive holding one regular file `name` (readable by its owner only when `mode` says
/// so).
pub fn tar_one_file(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    let mut out = Vec::with_capacity(512 + data.len() + 1536);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_to_a_tar_reads_back_past_a_pax_header() {
        let data = b"{\"records\": []}".repeat(100);
        let plain = tar_one_file("history.json", &data, 0o600);
        assert_eq!(first_file_of_tar(&plain), Some(data.clone()));
        // The engine may put a PAX header before the file.
        let mut pax = tar_one_file("PaxHeaders/history.json", b"20 mtime=1.5\n", 0o644);
        pax[156] = b'x';
        pax.truncate(1024);
        pax.extend_from_slice(&plain);
        assert_eq!(first_file_of_tar(&pax), Some(data));
        assert_eq!(first_file_of_tar(&[0u8; 1024]), None);
        assert_eq!(first_file_of_tar(&plain[..600]), None);
    }
}
