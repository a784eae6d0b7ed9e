//! HTTP clients for talking to other services of the fleet by name.
//!
//! Services reach each other by their names on the project network (`event-store`, `accounts`,
//! ...), which the engine's DNS maps to container addresses. A roll replaces a container, and
//! the replacement gets a new address; Docker's DNS answers with a TTL of 600 s. A resolver that
//! honours that TTL keeps dialling the stopped container for minutes after a roll. So names are
//! resolved afresh for every new connection: [`FreshResolver`] never caches an answer. Pooled
//! connections need no lookup, so this costs one local DNS query per new connection.
//!
//! Resolution uses hickory rather than the C library's `getaddrinfo`, because the services run as
//! static binaries in `FROM scratch` images.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::OnceCell;

/// A DNS resolver for reqwest that asks the system's name servers (`/etc/resolv.conf`, and
/// `/etc/hosts` first) on every lookup and caches nothing.
#[derive(Debug, Default, Clone)]
pub struct FreshResolver {
    // Built lazily: reqwest clients may be built outside a Tokio runtime.
    inner: Arc<OnceCell<TokioResolver>>,
}

impl FreshResolver {
    pub fn new() -> Self {
        Self::default()
    }
}

fn build_resolver() -> Result<TokioResolver, hickory_resolver::net::NetError> {
    let mut builder = TokioResolver::builder_tokio()?;
    let options = builder.options_mut();
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    builder.build()
}

impl Resolve for FreshResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let resolver = inner
                .get_or_try_init(|| async { build_resolver() })
                .await
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?;
            let lookup = resolver
                .lookup_ip(name.as_str())
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", name.as_str()))?;
            let addrs: Vec<IpAddr> = lookup.iter().collect();
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A client builder for calls to other services: names resolved afresh by [`FreshResolver`],
/// no Nagle delay, and idle pooled connections dropped after 30 s.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(FreshResolver::new()))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_localhost_from_the_hosts_file() {
        let resolver = FreshResolver::new();
        let name: Name = "localhost".parse().expect("a valid name");
        let addrs: Vec<SocketAddr> = resolver.resolve(name).await.expect("resolved").collect();
        assert!(
            addrs.iter().any(|a| a.ip().is_loopback()),
            "localhost resolves to a loopback address: {addrs:?}"
        );
    }

    #[tokio::test]
    async fn an_unknown_name_is_an_error_that_names_it() {
        let resolver = FreshResolver::new();
        let name: Name = "no-such-service.invalid".parse().expect("a valid name");
        let error = match resolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("no-such-service.invalid"), "{error}");
    }

    #[tokio::test]
    async fn a_client_built_with_it_reaches_a_server_by_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        });
        let client = client_builder().build().expect("client");
        let body = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "ok");
    }
}
