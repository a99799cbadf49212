//! The listener's protections against oversized, slow and too many clients.

use std::time::Duration;

use passlink_tests::{Stack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(stack: &Stack) -> String {
    stack.api_url.trim_start_matches("http://").to_owned()
}

/// Reads what the server sends until it closes or `wait` passes.
async fn read_some(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;

    let mut stream = TcpStream::connect(addr(&stack)).await.unwrap();
    let big = "x".repeat(40 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nhost: a\r\nx-big: {big}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_some(&mut stream, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "a 40 KiB header is refused: {answer:.80}"
    );

    // A chunked body has no length to check up front; it is cut off at the
    // limit all the same.
    let mut stream = TcpStream::connect(addr(&stack)).await.unwrap();
    let head = format!(
        "POST /v3alpha/users/u/webauthn/registration_link HTTP/1.1\r\nhost: a\r\n\
         authorization: Bearer {}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n",
        stack.tokens.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8192, " ".repeat(8192));
    for _ in 0..10 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let answer = read_some(&mut stream, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert!(answer.contains("REQ-BODY-TOO-LARGE"), "{answer}");
}

#[tokio::test]
async fn a_client_that_waits_to_send_hears_no_at_once() {
    let stack = Stack::start(StackOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let mut stream = TcpStream::connect(addr(&stack)).await.unwrap();
    let head = format!(
        "POST /v3alpha/users/u/webauthn/registration_link HTTP/1.1\r\nhost: a\r\n\
         authorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: 10000000\r\nexpect: 100-continue\r\n\r\n",
        stack.tokens.admin
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_some(&mut stream, Duration::from_secs(3))
        .await
        .unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "refused before the body: {answer:.200}"
    );
    assert!(!answer.contains("100 Continue"), "{answer:.200}");
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_HEADER_READ_TIMEOUT", "1s"),
    )
    .await;

    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(addr(&stack)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n")
        .await
        .unwrap();
    let answer = read_some(&mut slow, Duration::from_secs(5)).await;
    assert!(
        answer.is_some(),
        "the server closed the slow connection in time"
    );
    assert!(!answer.unwrap().contains("200 OK"));

    // An idle keep-alive connection goes the same way.
    let mut idle = TcpStream::connect(addr(&stack)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let first = read_some(&mut idle, Duration::from_secs(2)).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let closed = read_some(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(
        closed.as_deref(),
        Some(""),
        "the idle connection was closed"
    );
}

#[tokio::test]
async fn connections_that_never_ask_are_closed() {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_IDLE_TIMEOUT", "1s")
        .with_env("PASSLINK_HEADER_READ_TIMEOUT", "30s"),
    )
    .await;

    // Not a single byte: hyper's protocol detection would wait forever.
    let mut silent = TcpStream::connect(addr(&stack)).await.unwrap();
    let closed = read_some(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(
        closed.as_deref(),
        Some(""),
        "the silent connection was closed"
    );

    // HTTP/2 with prior knowledge: the preface and settings, then nothing.
    let mut h2 = TcpStream::connect(addr(&stack)).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = vec![0u8; 4096];
        loop {
            match h2.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the idle HTTP/2 connection was closed");
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let stack = Stack::start(
        StackOptions {
            workers: 0,
            ..Default::default()
        }
        .with_env("PASSLINK_MAX_CONNECTIONS", "2")
        .with_env("PASSLINK_HEADER_READ_TIMEOUT", "30s"),
    )
    .await;

    let mut first = TcpStream::connect(addr(&stack)).await.unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_some(&mut first, Duration::from_secs(2))
            .await
            .unwrap()
            .contains("200")
    );
    let mut second = TcpStream::connect(addr(&stack)).await.unwrap();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_some(&mut second, Duration::from_secs(2))
            .await
            .unwrap()
            .contains("200")
    );

    // Both slots are held by open keep-alive connections: a third waits.
    let mut third = TcpStream::connect(addr(&stack)).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_some(&mut third, Duration::from_secs(1))
            .await
            .is_none(),
        "no answer while the cap is reached"
    );

    drop(first);
    let answer = read_some(&mut third, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "answered once a slot is free: {answer}"
    );
}
