//! [`TcpProxy`]: a TCP forwarder a test controls, to put between a node
//! and its PostgreSQL and simulate an outage without touching the server
//! (which other tests share).
//!
//! ```text
//!  node ──▶ 127.0.0.1:<port> (TcpProxy) ──▶ target (PostgreSQL)
//!           cut():     every open connection closed, new ones refused
//!                      (the port stops listening, as a stopped server does)
//!           restore(): listening again on the same port, forwarding anew
//! ```
//!
//! It must never be pointed at anything but a test's own server, and it
//! only forwards bytes: it never reads or changes what passes through.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections to a target until cut; see the module docs.
/// Dropping it closes everything.
#[derive(Debug)]
pub struct TcpProxy {
    address: SocketAddr,
    target: String,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// The accept loop while the proxy forwards; `None` while cut.
    acceptor: Option<JoinHandle<()>>,
    /// Tells every forwarded connection to close (sent on cut).
    generation: watch::Sender<u64>,
}

impl TcpProxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `target`
    /// (`host:port`).
    pub async fn start(target: impl Into<String>) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (generation, _) = watch::channel(0);
        let proxy = TcpProxy {
            address,
            target: target.into(),
            state: Arc::new(Mutex::new(State {
                acceptor: None,
                generation,
            })),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// A proxy in front of the server of `url` (a `postgres://` URL with a
    /// host, port 5432 when it names none), and `url` pointed through it.
    pub async fn in_front_of(url: &str) -> anyhow::Result<(TcpProxy, String)> {
        let (host, port) = host_and_port(url)?;
        let proxy = TcpProxy::start(format!("{host}:{port}")).await?;
        let through = proxy.url_through(url)?;
        Ok((proxy, through))
    }

    /// Where clients connect: `127.0.0.1:<port>`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by this
    /// proxy's.
    pub fn url_through(&self, url: &str) -> anyhow::Result<String> {
        let scheme_end = url
            .find("://")
            .map(|i| i + 3)
            .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))?;
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let host_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
        Ok(format!(
            "{}{}{}{}",
            &url[..scheme_end],
            &rest[..host_start],
            self.address,
            &rest[authority_end..]
        ))
    }

    /// Closes every open connection and refuses new ones until
    /// [`restore`](Self::restore). Returns once the port stopped listening.
    pub async fn cut(&self) {
        if let Some(acceptor) = self.cut_now() {
            // The listener, owned by the loop, is closed once it is dropped.
            let _ = acceptor.await;
        }
    }

    /// Starts cutting; returns the accept loop to wait for.
    fn cut_now(&self) -> Option<JoinHandle<()>> {
        let mut state = self.state.lock().expect("proxy state");
        let acceptor = state.acceptor.take();
        if let Some(acceptor) = &acceptor {
            acceptor.abort();
        }
        state.generation.send_modify(|g| *g += 1);
        acceptor
    }

    /// Listens again on the same port. Fails if something else took the
    /// port meanwhile.
    pub fn restore(&self) -> anyhow::Result<()> {
        if self.state.lock().expect("proxy state").acceptor.is_some() {
            return Ok(());
        }
        let socket = TcpSocket::new_v4()?;
        // The port's old connections may linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(self.address)?;
        let listener = socket.listen(1024)?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let mut state = self.state.lock().expect("proxy state");
        let closing = state.generation.subscribe();
        state.acceptor = Some(tokio::spawn(accept_loop(listener, target, closing)));
    }
}

/// The host and port of a `scheme://[user[:password]@]host[:port]/...` URL.
fn host_and_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))?;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse()?),
        None => (host_port.to_owned(), 5432),
    };
    anyhow::ensure!(
        !host.is_empty(),
        "{url} names no host; a proxy forwards TCP only"
    );
    Ok((host, port))
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut_now();
    }
}

async fn accept_loop(listener: TcpListener, target: String, closing: watch::Receiver<u64>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        let mut closing = closing.clone();
        closing.mark_unchanged();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = copy_bidirectional(&mut client, &mut server) => {}
                _ = closing.changed() => {}
            }
            // Dropping both ends closes them.
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let proxy = TcpProxy::start("127.0.0.1:9").await.unwrap();
            let port = proxy.address().port();
            assert_eq!(
                proxy
                    .url_through("postgres://postgres@127.0.0.1:5432/db?sslmode=disable")
                    .unwrap(),
                format!("postgres://postgres@127.0.0.1:{port}/db?sslmode=disable")
            );
            assert_eq!(
                proxy.url_through("postgres://localhost/db").unwrap(),
                format!("postgres://127.0.0.1:{port}/db")
            );
            assert_eq!(
                host_and_port("postgres://u:p@db.internal:6543/x").unwrap(),
                ("db.internal".to_owned(), 6543)
            );
            assert_eq!(
                host_and_port("postgres://localhost/x").unwrap(),
                ("localhost".to_owned(), 5432)
            );
        });
    }

    /// An echo server behind the proxy: bytes pass, a cut closes the open
    /// connection and refuses new ones, a restore forwards again.
    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_address = echo.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let proxy = TcpProxy::start(echo_address.to_string()).await.unwrap();
        let mut open = TcpStream::connect(proxy.address()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.cut().await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            open.read_to_end(&mut rest),
        )
        .await
        .expect("the cut closes open connections");
        assert!(read.is_err() || rest.is_empty(), "nothing more arrives");
        let refused = TcpStream::connect(proxy.address()).await;
        assert!(refused.is_err(), "a cut proxy refuses connections");

        proxy.restore().unwrap();
        let mut again = TcpStream::connect(proxy.address()).await.unwrap();
        again.write_all(b"pong").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
}
