//! The container operations an apply carries out, as a trait: [`Engine`] implements it over
//! the Docker Engine API, and the apply tests implement it in memory.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use super::{
    ContainerDetails, ContainerInfo, Engine, EngineError, ImageInfo, PullAuth, PullEvent, Resource,
};
use crate::spec::ContainerSpec;

/// What the apply executor and its health gate need of an engine. Each method means what the
/// [`Engine`] method of the same name does.
pub trait ContainerEngine: Sync {
    /// Every container carrying all of `labels`.
    fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, EngineError>> + Send;
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerDetails, EngineError>> + Send;
    /// A local image, or `None` when the engine does not have it.
    fn image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;
    fn pull(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
        on_event: &mut (dyn FnMut(PullEvent) + Send),
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Volumes carrying all of `labels`.
    fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> impl Future<Output = Result<Vec<Resource>, EngineError>> + Send;
    /// A missing volume is fine; one a container still uses is an error.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Creates (does not start) the container `spec` describes, on all its networks (with the
    /// service's DNS alias only when `aliases`), with its secret files; returns the id.
    fn create_from_spec(
        &self,
        spec: &ContainerSpec,
        image: &str,
        image_digest: &str,
        suffix: &str,
        aliases: bool,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// A container already stopped or gone is fine.
    fn stop_container(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Forcibly; a missing container is fine.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Gives container `id` exactly `aliases` on `network` (by leaving and joining it again).
    fn set_aliases(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn logs_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
}

impl ContainerEngine for Engine {
    async fn list_containers(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        Engine::list_containers(self, labels).await
    }
    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        Engine::inspect_container(self, id).await
    }
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        Engine::image(self, reference).await
    }
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
        on_event: &mut (dyn FnMut(PullEvent) + Send),
    ) -> Result<(), EngineError> {
        Engine::pull(self, reference, auth, on_event).await
    }
    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        Engine::create_network(self, name, labels).await
    }
    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        Engine::create_volume(self, name, labels).await
    }
    async fn list_volumes(
        &self,
        labels: &[(&str, Option<&str>)],
    ) -> Result<Vec<Resource>, EngineError> {
        Engine::list_volumes(self, labels).await
    }
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        Engine::remove_volume(self, name).await
    }
    async fn create_from_spec(
        &self,
        spec: &ContainerSpec,
        image: &str,
        image_digest: &str,
        suffix: &str,
        aliases: bool,
    ) -> Result<String, EngineError> {
        Engine::create_from_spec(self, spec, image, image_digest, suffix, aliases).await
    }
    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        Engine::start_container(self, id).await
    }
    async fn stop_container(&self, id: &str, grace: Option<Duration>) -> Result<(), EngineError> {
        Engine::stop_container(self, id, grace).await
    }
    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        Engine::remove_container(self, id).await
    }
    async fn set_aliases(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        Engine::set_aliases(self, id, network, aliases).await
    }
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, EngineError> {
        Engine::logs_tail(self, id, lines).await
    }
}
