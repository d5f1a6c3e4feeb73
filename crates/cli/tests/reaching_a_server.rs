//! The `tasker` binary reaching a real server: what it prints when the
//! server says no (a missing token once, naming `--token` / `TASKER_TOKEN`;
//! a missing namespace with the command that creates it; an unknown
//! template with the near ones), a `--server` given without a scheme, and a
//! server behind a TLS-terminating proxy whose CA `--ca-cert` names.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "test-admin-token-server-errors";

/// The binary with no `TASKER_*` variable of the caller's environment.
fn tasker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasker"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TASKER_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "warn").stdin(Stdio::null());
    command
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with auth on, on a fresh database, listening on port 0.
async fn start_server(db: &tasker_testkit::TestDatabase) -> Server {
    let mut child = tasker()
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .env("TASKER_AUTH_ADMIN_TOKENS", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tasker server");
    let stdout = child.stdout.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        address: String::new(),
    };
    loop {
        let line = seen
            .recv_timeout(Duration::from_secs(60))
            .expect("the server printed its address");
        if let Some(address) = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
        {
            server.address = address.to_owned();
            return server;
        }
    }
}

fn run(command: &mut Command) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run tasker");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn client(server: &str, token: Option<&str>) -> Command {
    let mut command = tasker();
    command.env("TASKER_SERVER", server);
    if let Some(token) = token {
        command.env("TASKER_TOKEN", token);
    }
    command
}

fn linear_template() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/linear.yaml")
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_say_what_to_do_and_a_bare_address_is_http() {
    let db = tasker_testkit::TestDatabase::create()
        .await
        .expect("test database (set TASKER_TEST_DATABASE_URL)");
    let server = start_server(&db).await;
    let address = server.address.as_str();

    // No token: the worker says the server's answer once, and how to send one.
    let mut worker = tasker();
    worker.args(["worker", "example", "--namespace", "default"]);
    worker.env("TASKER_SERVER", address);
    let (code, _, stderr) = run(&mut worker);
    assert_ne!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("unauthorized (HTTP 401)").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("Bearer <token>").count(), 1, "{stderr}");
    assert!(stderr.contains("--token or TASKER_TOKEN"), "{stderr}");
    let (_, _, stderr) = run(client(address, None).args(["namespace", "list"]));
    assert!(stderr.contains("--token or TASKER_TOKEN"), "{stderr}");

    // A server given without a scheme is reached over http.
    let bare = address.trim_start_matches("http://");
    let (code, stdout, stderr) = run(client(bare, Some(TOKEN)).args(["namespace", "list"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("default"), "{stdout}");

    // A template for a namespace that does not exist yet.
    let (code, _, stderr) = run(client(address, Some(TOKEN))
        .args(["template", "register"])
        .arg(linear_template()));
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("namespace \"examples\" not found")
            && stderr.contains("tasker namespace create examples"),
        "{stderr}"
    );

    // After creating it, a template asked for in the wrong namespace.
    run(client(address, Some(TOKEN)).args(["namespace", "create", "examples"]));
    let (code, _, stderr) = run(client(address, Some(TOKEN))
        .args(["template", "register"])
        .arg(linear_template()));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(client(address, Some(TOKEN)).args(["task", "create", "linear"]));
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("template default/linear not found; did you mean examples/linear?"),
        "{stderr}"
    );
}

/// A TLS-terminating proxy in front of `backend` (`host:port`), as a load
/// balancer would be: its certificate, for `localhost`, is self-signed and
/// made here. Returns its port and the certificate in PEM.
async fn tls_proxy(backend: String) -> (u16, String) {
    use std::sync::Arc;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut front) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut back) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
            });
        }
    });
    (port, pem)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_behind_tls_is_reached_with_its_ca_cert() {
    let db = tasker_testkit::TestDatabase::create()
        .await
        .expect("test database (set TASKER_TEST_DATABASE_URL)");
    let server = start_server(&db).await;
    let backend = server.address.trim_start_matches("http://").to_owned();
    let (port, pem) = tls_proxy(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let https = format!("https://localhost:{port}");

    let (code, stdout, stderr) = run(client(&https, Some(TOKEN))
        .args(["namespace", "list", "--ca-cert"])
        .arg(&ca));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("default"), "{stdout}");
    // The same through the environment.
    let (code, _, stderr) = run(client(&https, Some(TOKEN))
        .env("TASKER_CA_CERT", &ca)
        .args(["namespace", "create", "secure"]));
    assert_eq!(code, Some(0), "{stderr}");

    // Without the CA the certificate is not trusted: unreachable, exit 3.
    let (code, _, stderr) = run(client(&https, Some(TOKEN)).args(["namespace", "list"]));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("--ca-cert or TASKER_CA_CERT"),
        "says how to trust it: {stderr}"
    );

    // A file that holds no certificate is a usage error naming the flag.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "nothing here").unwrap();
    let (code, _, stderr) = run(client(&https, Some(TOKEN))
        .args(["namespace", "list", "--ca-cert"])
        .arg(&bad));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
}
