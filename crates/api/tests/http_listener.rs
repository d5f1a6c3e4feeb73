//! Behaviour only a real connection shows: a server on a real listener,
//! spoken to over TCP.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::{ADMIN, test_app_with};
use tasker_engine::EngineConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `app` on 127.0.0.1:0; the task ends with the test.
async fn serve(app: &support::TestApp) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let state = app.state.clone();
    tokio::spawn(tasker_api::serve(
        listener,
        state,
        std::future::pending::<()>(),
    ));
    address
}

/// Reads one HTTP/1.1 response (with a Content-Length) off `stream`.
async fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read the response");
        assert!(n > 0, "connection closed before a response: {buffer:?}");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.expect("read the body");
        assert!(n > 0, "connection closed inside the body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap();
    buffer.drain(..header_end + length);
    assert!(buffer.is_empty(), "nothing after the response");
    (status, body)
}

const LIMIT: usize = 64 * 1024;

async fn small_limit_app() -> support::TestApp {
    let engine = EngineConfig {
        max_payload_bytes: 16 * 1024,
        ..EngineConfig::default()
    };
    test_app_with(engine, |c| c.max_body_bytes = LIMIT).await
}

/// A body over `max_body_bytes` is read to its end and answered with the 413
/// JSON error, and the connection stays usable: without draining, the
/// unread body resets the connection and the client never sees the 413.
#[tokio::test]
async fn an_oversized_body_is_answered_with_413_not_a_reset() {
    let app = small_limit_app().await;
    let address = serve(&app).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let body = format!(
        "{{\"template\":\"linear\",\"context\":{{\"blob\":\"{}\"}}}}",
        "x".repeat(4 * 1024 * 1024)
    );
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nHost: tasker\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(body.as_bytes())
        .await
        .expect("the server reads the whole body");
    let (status, reply) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");

    // Without a Content-Length (chunked), the limit is found while reading.
    let mut chunked = format!(
        "POST /v1/tasks HTTP/1.1\r\nHost: tasker\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let piece = "y".repeat(32 * 1024);
    for _ in 0..64 {
        chunked.push_str(&format!("{:x}\r\n{piece}\r\n", piece.len()));
    }
    chunked.push_str("0\r\n\r\n");
    stream
        .write_all(chunked.as_bytes())
        .await
        .expect("the connection is still open and read");
    let (status, reply) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");

    // And the same connection still serves requests.
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: tasker\r\n\r\n")
        .await
        .unwrap();
    let (status, reply) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{reply}");
}

/// A client that asks before sending (`Expect: 100-continue`) is refused
/// at once and need not send the body.
#[tokio::test]
async fn an_oversized_body_announced_with_expect_is_refused_before_it_is_sent() {
    let app = small_limit_app().await;
    let address = serve(&app).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nHost: tasker\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        10 * LIMIT
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, reply) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");
}

/// `GET /v1/steps/{id}` through the typed client over real HTTP.
#[tokio::test]
async fn the_client_reads_a_step_by_id() {
    let app = support::test_app().await;
    app.register_yaml(&support::template("default", "linear", support::LINEAR))
        .await;
    let task = app
        .create_task("default", "linear", serde_json::json!({}))
        .await;
    let address = serve(&app).await;
    let client = tasker_client::Client::new(&format!("http://{address}"), Some(ADMIN.into()))
        .expect("a client");
    let task_id = task["id"].as_str().unwrap().parse().unwrap();
    let steps = client.task_steps(task_id).await.unwrap();
    let step = client.step_get(steps[1].id).await.unwrap();
    assert_eq!(step, steps[1]);

    let missing = uuid::Uuid::now_v7();
    let error = client.step_get(missing).await.unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(404), Some("not_found"))
    );
    assert!(error.to_string().contains(&missing.to_string()), "{error}");
}
