//! Connecting to a service's upstream: TCP, and TLS for https.

use super::io::Stream;
use crate::config::{Scheme, Upstream};
use crate::model::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer from {addr} within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0:?} is not a valid TLS server name")]
    BadName(String),
}

impl ConnectError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::Io { source, .. } => ErrorKind::of_io(source),
            ConnectError::Timeout { .. } => ErrorKind::Timeout,
            ConnectError::Tls { .. } | ConnectError::BadName(_) => ErrorKind::Tls,
        }
    }
}

pub struct Connector {
    pub upstream: Upstream,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl Connector {
    pub fn new(upstream: Upstream, tls: Option<Arc<ClientConfig>>, timeout: Duration) -> Self {
        Self {
            upstream,
            tls,
            timeout,
        }
    }

    pub async fn connect(&self) -> Result<Stream, ConnectError> {
        let addr = format!("{}:{}", self.upstream.host, self.upstream.port);
        let connect = async {
            let tcp = TcpStream::connect((self.upstream.host.as_str(), self.upstream.port))
                .await
                .map_err(|source| ConnectError::Io {
                    addr: addr.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            match (self.upstream.scheme, &self.tls) {
                (Scheme::Https, Some(config)) => {
                    let name = rustls_pki_types::ServerName::try_from(self.upstream.host.clone())
                        .map_err(|_| ConnectError::BadName(self.upstream.host.clone()))?;
                    let tls = TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|source| ConnectError::Tls {
                            addr: addr.clone(),
                            source,
                        })?;
                    Ok(Stream::TlsClient(Box::new(tls)))
                }
                _ => Ok(Stream::Plain(tcp)),
            }
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                addr,
                secs: self.timeout.as_secs(),
            }),
        }
    }
}
