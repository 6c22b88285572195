//! TLS in the real binary: `https://` and `wss://` on one port with a certificate the test makes
//! (a CA of its own, leaves for localhost), reloaded on SIGHUP and on a file change while a
//! socket stays open, and a pair that does not match refused with the old one kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use serde_json::json;
use wsauthn::softkey::SoftAuthenticator;

use crate::binary::Server;
use crate::helpers::*;

fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.build()
}

/// A certificate authority of the test's own.
pub(crate) struct Ca {
    key: PKey<Private>,
    cert: X509,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let key = p256();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(1).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name("wsauthn test CA")).unwrap();
        b.set_issuer_name(&name("wsauthn test CA")).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca {
            key,
            cert: b.build(),
        }
    }

    /// A server certificate for localhost and 127.0.0.1: (certificate PEM, key PEM, DER).
    pub(crate) fn leaf(&self, cn: &str, serial: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let key = p256();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        (
            cert.to_pem().unwrap(),
            key.private_key_to_pem_pkcs8().unwrap(),
            cert.to_der().unwrap(),
        )
    }

    /// A client config that trusts this CA only, speaking HTTP/1.1 (WebSockets need it).
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(
                self.cert.to_der().unwrap(),
            ))
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every connection does a full handshake, so it shows the certificate served now (a
        // resumed session would show the one it began with).
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

/// Writes a pair where the server reads it, each file replaced whole (a new file renamed in,
/// as certbot and friends do).
fn install(dir: &Path, cert: &[u8], key: &[u8]) {
    for (file, bytes) in [("cert.pem", cert), ("key.pem", key)] {
        let fresh = dir.join(format!("{file}.new"));
        std::fs::write(&fresh, bytes).unwrap();
        std::fs::rename(&fresh, dir.join(file)).unwrap();
    }
}

fn start_tls(dir: &Path) -> Server {
    let (cert, key): (PathBuf, PathBuf) = (dir.join("cert.pem"), dir.join("key.pem"));
    Server::start_with(&dir.join("data"), |cmd| {
        cmd.env("WSAUTHN__SERVER__TLS_CERT", &cert)
            .env("WSAUTHN__SERVER__TLS_KEY", &key);
    })
}

/// The leaf certificate (DER) a new TLS handshake with the server gets.
async fn served_certificate(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    actix_web::rt::task::spawn_blocking(move || {
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut conn = rustls::ClientConnection::new(config, name).unwrap();
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("TLS handshake");
        }
        conn.peer_certificates().unwrap()[0].to_vec()
    })
    .await
    .unwrap()
}

pub(crate) fn client(config: &Arc<rustls::ClientConfig>) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(config.clone()))
        .finish()
}

pub(crate) type Wss = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

pub(crate) async fn wss(
    config: &Arc<rustls::ClientConfig>,
    url: String,
    bearer: Option<&str>,
) -> Wss {
    wss_from(config, url, ORIGIN, bearer).await
}

/// As [`wss`], from a page on `origin`.
pub(crate) async fn wss_from(
    config: &Arc<rustls::ClientConfig>,
    url: String,
    origin: &str,
    bearer: Option<&str>,
) -> Wss {
    let mut req = client(config).ws(url).header("Origin", origin);
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    req.connect().await.expect("wss upgrade").1
}

pub(crate) async fn next_text(ws: &mut Wss) -> String {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        match frame {
            Frame::Text(bytes) => return String::from_utf8(bytes.to_vec()).unwrap(),
            Frame::Ping(bytes) => ws.send(Message::Pong(bytes)).await.unwrap(),
            _ => {}
        }
    }
}

pub(crate) async fn echoes(ws: &mut Wss, text: &str) {
    ws.send(Message::Text(text.to_owned().into()))
        .await
        .unwrap();
    assert_eq!(next_text(ws).await, text);
}

pub(crate) async fn request(ws: &mut Wss, frame: serde_json::Value) -> serde_json::Value {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// Signs up over `wss://…/ws` and returns the token.
async fn sign_up(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> String {
    let mut ws = wss(config, format!("wss://localhost:{}/ws", addr.port()), None).await;
    let begin = json!({"type":"register.begin","username":"tess","token":true});
    let opts = request(&mut ws, begin).await;
    let credential = SoftAuthenticator::new()
        .register(&opts["publicKey"], ORIGIN)
        .unwrap();
    let finish =
        json!({"type":"register.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
    let result = request(&mut ws, finish).await;
    assert_eq!(result["verified"], "ok", "{result}");
    result["authentication"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn https_and_wss_share_the_port_and_a_sighup_reload_keeps_open_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert_a, key_a, der_a) = ca.leaf("localhost A", 2);
    install(dir.path(), &cert_a, &key_a);
    let server = start_tls(dir.path());
    let config = ca.client_config();
    let port = server.addr.port();

    let res = client(&config)
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(res.status(), 200);
    let plain = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not served on a TLS port");
    assert_eq!(served_certificate(server.addr, config.clone()).await, der_a);

    let token = sign_up(&config, server.addr).await;
    let echo_url = format!("wss://localhost:{port}/echo");
    let mut old = wss(&config, echo_url.clone(), Some(&token)).await;
    echoes(&mut old, "before the reload").await;

    let (cert_b, key_b, der_b) = ca.leaf("localhost B", 3);
    install(dir.path(), &cert_b, &key_b);
    server.signal("HUP");
    server.wait_for_line(|l| l.contains("tls certificate reloaded") && l.contains("localhost B"));

    assert_eq!(
        served_certificate(server.addr, config.clone()).await,
        der_b,
        "a new connection gets the new certificate"
    );
    echoes(&mut old, "after the reload").await;
    let mut new = wss(&config, echo_url, Some(&token)).await;
    echoes(&mut new, "on the new certificate").await;
    let closed: Vec<String> = server
        .lines()
        .into_iter()
        .filter(|l| l.contains("socket closed") && l.contains("/echo"))
        .collect();
    assert!(closed.is_empty(), "no echo socket was dropped: {closed:?}");
}

#[actix_web::test]
async fn a_changed_certificate_file_is_picked_up_and_a_mismatched_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert_a, key_a, _) = ca.leaf("localhost A", 2);
    install(dir.path(), &cert_a, &key_a);
    let server = start_tls(dir.path());
    let config = ca.client_config();

    // A certificate with another certificate's key: refused, the old pair stays.
    let (cert_b, _, _) = ca.leaf("localhost B", 3);
    install(dir.path(), &cert_b, &key_a);
    server.signal("HUP");
    let warning = server.wait_for_line(|l| l.contains("tls certificate not reloaded"));
    assert!(warning.contains("server.tls_key"), "{warning}");
    let der_a = X509::from_pem(&cert_a).unwrap().to_der().unwrap();
    assert_eq!(served_certificate(server.addr, config.clone()).await, der_a);

    // No signal: the files changing is enough.
    let (cert_c, key_c, der_c) = ca.leaf("localhost C", 4);
    install(dir.path(), &cert_c, &key_c);
    let line = server
        .wait_for_line(|l| l.contains("tls certificate reloaded") && l.contains("localhost C"));
    assert!(line.contains("file change"), "{line}");
    assert_eq!(served_certificate(server.addr, config).await, der_c);
}

#[test]
fn a_missing_certificate_file_stops_the_binary_naming_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::edge::wsauthn(&dir.path().join("data"));
    cmd.env("WSAUTHN__SERVER__TLS_CERT", dir.path().join("nope.pem"))
        .env("WSAUTHN__SERVER__TLS_KEY", dir.path().join("nope.key"));
    let output = crate::edge::run_to_exit(cmd);
    let stderr = crate::edge::stderr_of(&output);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("server.tls_cert"), "{stderr}");
    assert!(stderr.contains("nope.pem"), "{stderr}");
}
