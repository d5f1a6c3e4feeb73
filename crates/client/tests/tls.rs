//! The client over TLS: a server behind a TLS-terminating balancer whose
//! certificate a private CA signed is reached with that CA added, and
//! refused without it. The endpoint answers `GET /health` over rustls with
//! a self-signed certificate made here.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An HTTPS endpoint on 127.0.0.1 (port 0) for `localhost` and
/// `127.0.0.1`; returns its port and its certificate in PEM.
async fn serve_tls() -> (u16, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let pem = certified.cert.pem();
    let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up here.
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let (status, body) = if request.starts_with(b"GET /health ") {
                    ("200 OK", r#"{"status":"ok","database":true}"#)
                } else {
                    (
                        "404 Not Found",
                        r#"{"error":{"code":"not_found","message":"no route","details":null}}"#,
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, pem)
}

#[tokio::test]
async fn an_https_server_is_reached_with_its_ca_added() {
    let (port, pem) = serve_tls().await;
    for host in ["localhost", "127.0.0.1"] {
        let client = tasker_client::Client::new(&format!("https://{host}:{port}"), None)
            .unwrap()
            .with_root_certificate(pem.as_bytes())
            .unwrap();
        let health = client.health().await.unwrap();
        assert_eq!(health.status, "ok");
        assert!(health.database);
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let (port, _) = serve_tls().await;
    let client = tasker_client::Client::new(&format!("https://localhost:{port}"), None).unwrap();
    let error = client.health().await.unwrap_err();
    assert!(error.is_transport(), "{error:?}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}

#[test]
fn a_bad_ca_certificate_is_refused_clearly() {
    let client = tasker_client::Client::new("https://localhost:1", None).unwrap();
    let error = client
        .with_root_certificate(b"not a certificate")
        .unwrap_err();
    assert!(
        matches!(error, tasker_client::Error::InvalidCertificate { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("invalid CA certificate"),
        "{error}"
    );
}
