//! [`SilentProxy`]: forwards TCP to PostgreSQL until cut; then every
//! connection, open or new, hangs without an answer, as behind a failed
//! network path (where the testkit's proxy refuses connections instead).
//! For tests only; it never reads what passes through.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct SilentProxy {
    pub address: SocketAddr,
    cut: watch::Sender<bool>,
}

impl SilentProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let already_cut = *cut.borrow();
                    if already_cut {
                        // Accepted, never answered (the client is held
                        // open by this task, which never ends).
                        std::future::pending::<()>().await;
                    }
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                            let _ = client.shutdown().await;
                        }
                        () = async { drop(cut.wait_for(|cut| *cut).await) } => {
                            // Keep both ends open and silent.
                            let _held = (client, server);
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self { address, cut }
    }

    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}
