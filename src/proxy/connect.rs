//! The connections toward upstreams: TCP, and TLS over it for `https` upstreams (OpenSSL,
//! verified against the system's certificate store, which `SSL_CERT_FILE` or `SSL_CERT_DIR`
//! can replace; the host name is checked).
//!
//! Why not awc's own TLS: its `openssl` feature loads the certificate store on every
//! `awc::Client::new()` (15 ms here), in every crate of the process that makes an awc client.
//! This connector loads it once per worker, and only when an upstream is `https`. awc is given
//! `http` URLs for every upstream; this connector knows which host and port speak TLS.
//!
//! Invariant: a connection to a host and port named by an `https` upstream is TLS, whatever
//! URL scheme awc was given, or it is not made.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_tls::connect::openssl::reexports::{AsyncSslStream, SslConnector, SslMethod};
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector, ConnectorService};
use actix_web::dev::Service;
use actix_web::http::Uri;
use actix_web::rt::net::{ActixStream, Ready, TcpStream};
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection to an upstream.
pub enum UpstreamIo {
    Plain(TcpStream),
    Tls(Box<AsyncSslStream<TcpStream>>),
}

impl fmt::Debug for UpstreamIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamIo::Plain(_) => "UpstreamIo::Plain",
            UpstreamIo::Tls(_) => "UpstreamIo::Tls",
        })
    }
}

impl UpstreamIo {
    fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamIo::Plain(tcp) => tcp,
            UpstreamIo::Tls(tls) => tls.get_ref(),
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            UpstreamIo::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            UpstreamIo::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            UpstreamIo::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            UpstreamIo::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}

impl ActixStream for UpstreamIo {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(self.tcp(), cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(self.tcp(), cx)
    }
}

/// `host` and `port` as a connection names them (IPv6 without brackets).
fn key(host: &str, port: u16) -> (String, u16) {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host.to_ascii_lowercase(), port)
}

/// The host and port of every `https` upstream, and the TLS client for them.
struct Tls {
    secure: HashSet<(String, u16)>,
    client: SslConnector,
}

/// The connector awc uses toward the upstreams.
#[derive(Clone)]
pub struct UpstreamConnector {
    tcp: ConnectorService,
    tls: Option<Rc<Tls>>,
}

impl UpstreamConnector {
    /// `secure`: the `https` upstreams (their hosts and ports).
    pub fn new(secure: impl IntoIterator<Item = (String, u16)>) -> io::Result<Self> {
        let secure: HashSet<_> = secure.into_iter().map(|(h, p)| key(&h, p)).collect();
        let tls = match secure.is_empty() {
            true => None,
            false => {
                let connector = SslConnector::builder(SslMethod::tls())
                    .map_err(io::Error::other)?
                    .build();
                Some(Rc::new(Tls {
                    secure,
                    client: connector,
                }))
            }
        };
        Ok(UpstreamConnector {
            tcp: Connector::default().service(),
            tls,
        })
    }
}

impl Service<ConnectInfo<Uri>> for UpstreamConnector {
    type Response = Connection<Uri, UpstreamIo>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, ConnectError>>;

    actix_web::dev::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let tls = self
            .tls
            .clone()
            .filter(|tls| tls.secure.contains(&key(req.hostname(), req.port())));
        let tcp = self.tcp.call(req);
        Box::pin(async move {
            let connection = tcp.await?;
            let Some(tls) = tls else {
                let (tcp, connection) = connection.replace_io(());
                return Ok(connection.replace_io(UpstreamIo::Plain(tcp)).1);
            };
            let (tcp, connection) = connection.replace_io(());
            let ssl = tls
                .client
                .configure()
                .and_then(|c| c.into_ssl(connection.hostname()))
                .map_err(|e| ConnectError::Io(io::Error::other(e)))?;
            let mut stream =
                AsyncSslStream::new(ssl, tcp).map_err(|e| ConnectError::Io(io::Error::other(e)))?;
            Pin::new(&mut stream)
                .connect()
                .await
                .map_err(|e| ConnectError::Io(io::Error::other(e)))?;
            Ok(connection.replace_io(UpstreamIo::Tls(Box::new(stream))).1)
        })
    }
}
