//! Hostile and broken input, each as its own test: every answer is a 4xx, never a 5xx or a
//! hang, and nothing is queued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    SECRET, SHA2, config, form_body, push, raw, read_all, request, response, signed_headers, start,
};
use keelson_webhooks::signature;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn github_documented_signature_vector_over_http() {
    let server = start(config()).await;
    let body = b"Hello, World!";
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    // The signature holds (GitHub's vector), so the body is looked at: not JSON → 400, not 401.
    let (status, text) = server.post(&signed_headers("push", "v", sig), body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        server
            .metric("keelson_webhook_signature_failures_total")
            .await,
        0
    );
    let (status, _) = server
        .post(
            &signed_headers("push", "v", &sig.replace("e17", "e16")),
            body,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn signature_defects_get_401_and_nothing_is_processed() {
    let server = start(config()).await;
    let body = push("refs/heads/main", SHA2);
    let good = signature::sign(SECRET.as_bytes(), &body);
    let sha1_only = format!("sha1={}", &good[7..47]);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("X-Hub-Signature", sha1_only.clone())],
        vec![("X-Hub-Signature-256", String::new())],
        vec![("X-Hub-Signature-256", "sha256=".into())],
        vec![("X-Hub-Signature-256", good[7..].to_owned())],
        vec![("X-Hub-Signature-256", good.replace("sha256=", "sha1="))],
        vec![("X-Hub-Signature-256", good[..good.len() - 1].to_owned())],
        vec![("X-Hub-Signature-256", format!("{good}0"))],
        vec![("X-Hub-Signature-256", format!("sha256={}", "z".repeat(64)))],
        vec![("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))],
        vec![(
            "X-Hub-Signature-256",
            signature::sign(b"wrong secret", &body),
        )],
        vec![(
            "X-Hub-Signature-256",
            signature::sign(SECRET.as_bytes(), b"another body"),
        )],
    ];
    for (n, extra) in cases.iter().enumerate() {
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "same-id"),
        ];
        headers.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, text) = server.post(&headers, &body).await;
        assert_eq!(status, 401, "case {n}: {text}");
        assert!(
            !text.contains(&good[7..]),
            "the response echoes no signature"
        );
    }
    server.no_trigger().await;
    let failures = server
        .metric("keelson_webhook_signature_failures_total")
        .await;
    assert_eq!(failures, cases.len() as u64);
    // A refused delivery was not recorded: the same id, signed, is processed.
    assert_eq!(server.deliver("push", "same-id", &body).await.0, 202);
    assert_eq!(server.next_trigger().await.after, SHA2);
}

#[tokio::test]
async fn content_types() {
    let server = start(config()).await;
    let json = push("refs/heads/main", SHA2);
    for (n, content_type) in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
    ]
    .iter()
    .enumerate()
    {
        let sig = signature::sign(SECRET.as_bytes(), &json);
        let id = format!("ct-{n}");
        let mut headers = signed_headers("push", &id, &sig).to_vec();
        headers[0] = ("Content-Type", content_type);
        assert_eq!(
            server.post(&headers, &json).await.0,
            415,
            "{content_type:?}"
        );
    }
    // No Content-Type at all.
    let sig = signature::sign(SECRET.as_bytes(), &json);
    assert_eq!(
        server
            .post(&signed_headers("push", "x", &sig)[1..], &json)
            .await
            .0,
        415
    );
    // The form flavour, signed over the encoded body as sent.
    let form = form_body(&json);
    let sig = signature::sign(SECRET.as_bytes(), &form);
    let mut headers = signed_headers("push", "form-1", &sig).to_vec();
    headers[0] = ("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(server.post(&headers, &form).await.0, 202);
    assert_eq!(server.next_trigger().await.after, SHA2);
    // Signing the decoded JSON instead of the raw form body is wrong.
    let sig = signature::sign(SECRET.as_bytes(), &json);
    let mut headers = signed_headers("push", "form-2", &sig).to_vec();
    headers[0] = ("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(server.post(&headers, &form).await.0, 401);
}

#[tokio::test]
async fn malformed_payloads_get_4xx_never_5xx() {
    let server = start(config()).await;
    let mut missing_after: serde_json::Value =
        serde_json::from_slice(&push("refs/heads/main", SHA2)).unwrap();
    missing_after.as_object_mut().unwrap().remove("after");
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("application/json", "push", b"{\"ref\": ".to_vec(), 400),
        ("application/json", "push", b"not json".to_vec(), 400),
        ("application/json", "push", b"[1, 2, 3]".to_vec(), 400),
        ("application/json", "ping", b"[]".to_vec(), 400),
        ("application/json", "push", b"".to_vec(), 400),
        ("application/json", "push", b"null".to_vec(), 400),
        ("application/json", "push", b"{}".to_vec(), 422),
        (
            "application/json",
            "push",
            serde_json::to_vec(&missing_after).unwrap(),
            422,
        ),
        ("application/json", "push", push("main", SHA2), 422),
        (
            "application/json",
            "push",
            push("refs/heads/main", "HEAD"),
            422,
        ),
        (
            "application/json",
            "pull_request",
            b"{\"action\": \"opened\"}".to_vec(),
            422,
        ),
        (
            "application/json",
            "push",
            b"{\"ref\": \"refs/heads/\xff\"}".to_vec(),
            400,
        ),
        (
            "application/json",
            "issues",
            b"{\"a\": \"\xc3\x28\"}".to_vec(),
            400,
        ),
        (
            "application/json",
            "push",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            400,
        ),
        (
            "application/json",
            "issues",
            format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(65), "}".repeat(65)).into_bytes(),
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            "push",
            b"payload=%7B%FF%7D".to_vec(),
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            "push",
            b"payload=%7".to_vec(),
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            "push",
            b"nopayload=1".to_vec(),
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            "push",
            push("refs/heads/main", SHA2),
            400,
        ),
    ];
    for (n, (content_type, event, body, want)) in cases.iter().enumerate() {
        let sig = signature::sign(SECRET.as_bytes(), body);
        let id = format!("bad-{n}");
        let mut headers = signed_headers(event, &id, &sig).to_vec();
        headers[0] = ("Content-Type", content_type);
        let (status, text) = server.post(&headers, body).await;
        assert_eq!(status, *want, "case {n}: {text}");
    }
    server.no_trigger().await;
    // The server is still fine.
    assert_eq!(server.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn missing_github_headers_get_400() {
    let server = start(config()).await;
    let body = push("refs/heads/main", SHA2);
    let sig = signature::sign(SECRET.as_bytes(), &body);
    let h = signed_headers("push", "id", &sig);
    let without = |skip: usize| {
        h.iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| *h)
            .collect::<Vec<_>>()
    };
    assert_eq!(server.post(&without(1), &body).await.0, 400); // X-GitHub-Event
    assert_eq!(server.post(&without(2), &body).await.0, 400); // X-GitHub-Delivery
    let mut bad_event = h.to_vec();
    bad_event[1].1 = "push; rm -rf /";
    assert_eq!(server.post(&bad_event, &body).await.0, 400);
    server.no_trigger().await;
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let server = start(config()).await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let req = format!(
            "{method} /hooks/github HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let (status, _) = response(&raw(server.addr, req.as_bytes()).await);
        assert_eq!(status, 405, "{method}");
    }
    assert_eq!(server.get("/hooks/gitlab").await.0, 405);
    assert_eq!(server.get("/hooks/gogs").await.0, 404);
    let (status, _) = response(
        &raw(
            server.addr,
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
        .await,
    );
    assert_eq!(status, 405);
    // Not HTTP at all: refused by the HTTP layer, the server carries on.
    let (status, _) = response(
        &raw(
            server.addr,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        )
        .await,
    );
    assert!(status == 0 || status == 400, "{status}");
    assert_eq!(server.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn body_over_the_limit_is_refused_without_being_read() {
    let server = start(config()).await;
    // 25 MiB + 1 announced: answered at once, though not a byte of the body was sent.
    let head = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        25 * 1024 * 1024 + 1
    );
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (status, _) = response(&read_all(&mut stream, Duration::from_secs(5)).await);
    assert_eq!(status, 413);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unsigned_uploads_past_the_body_budget_get_503_and_signed_deliveries_still_pass() {
    let mut config = config();
    config.limits.max_body_bytes = 4 * 1024 * 1024;
    config.limits.max_inflight_body_bytes = 10 * 1024 * 1024;
    config.limits.body_read_timeout = Duration::from_secs(5);
    let server = start(config).await;
    // Two uploads that announce 4 MiB and send half: they hold 8 MiB of the 10 MiB budget.
    let head = |len: usize| {
        format!(
            "POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let mut uploads = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(head(4 * 1024 * 1024).as_bytes()).await.unwrap();
        s.write_all(&vec![b' '; 2 * 1024 * 1024]).await.unwrap();
        uploads.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third one does not fit: 503 before a byte of its body is read.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(head(4 * 1024 * 1024).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let (status, text) = response(&read_all(&mut third, Duration::from_secs(3)).await);
    assert_eq!(status, 503, "{text}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // A small signed push still fits in what is left, and is queued.
    let (status, text) = server
        .deliver("push", "fits", &push("refs/heads/main", SHA2))
        .await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(server.next_trigger().await.git_ref, "refs/heads/main");
    // The stalled uploads time out and give their bytes back.
    for mut s in uploads {
        let (status, _) = response(&read_all(&mut s, Duration::from_secs(8)).await);
        assert_eq!(status, 408);
    }
    let mut again = TcpStream::connect(server.addr).await.unwrap();
    again
        .write_all(head(4 * 1024 * 1024).as_bytes())
        .await
        .unwrap();
    again.write_all(&vec![b' '; 4 * 1024 * 1024]).await.unwrap();
    let (status, _) = response(&read_all(&mut again, Duration::from_secs(5)).await);
    assert_eq!(
        status, 401,
        "the budget is free again: the body is read, then refused unsigned"
    );
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let mut config = config();
    config.limits.max_body_bytes = 64 * 1024;
    let server = start(config).await;
    let mut req = b"POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = response(&raw(server.addr, &req).await);
    assert_eq!(status, 413);
}

#[tokio::test]
async fn body_at_githubs_25_mb_cap_is_accepted_when_the_operator_allows_it() {
    let mut config = config();
    config.limits.max_body_bytes = keelson_webhooks::GITHUB_MAX_BODY_BYTES;
    let server = start(config).await;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&push("refs/heads/big", SHA2)).unwrap();
    let limit = 25 * 1024 * 1024;
    let filler = limit - push("refs/heads/big", SHA2).len() - r#","padding":"""#.len();
    payload["padding"] = serde_json::Value::String("x".repeat(filler));
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(body.len(), limit);
    let (status, text) = server.deliver("push", "big", &body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(server.next_trigger().await.git_ref, "refs/heads/big");
}

#[tokio::test]
async fn truncated_body_gets_400() {
    let server = start(config()).await;
    let body = push("refs/heads/main", SHA2);
    let sig = signature::sign(SECRET.as_bytes(), &body);
    let mut req = request(&signed_headers("push", "t", &sig), &body);
    req.truncate(req.len() - body.len() / 2);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&req).await.unwrap();
    stream.shutdown().await.unwrap(); // the client is done sending: the body ends early
    let (status, _) = response(&read_all(&mut stream, Duration::from_secs(5)).await);
    assert_eq!(status, 400);
    server.no_trigger().await;
}

#[tokio::test]
async fn slow_body_is_cut_off() {
    let server = start(config()).await; // body read timeout: 1 s
    let body = push("refs/heads/main", SHA2);
    let sig = signature::sign(SECRET.as_bytes(), &body);
    let req = request(&signed_headers("push", "slow", &sig), &body);
    let (mut read, mut write) = TcpStream::connect(server.addr).await.unwrap().into_split();
    let started = Instant::now();
    write
        .write_all(&req[..req.len() - body.len() + 10])
        .await
        .unwrap();
    // Dribble a byte every 200 ms: the body would take a minute.
    let dribble = tokio::spawn(async move {
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    dribble.abort();
    assert_eq!(response(&answer).0, 408);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    server.no_trigger().await;
}

#[tokio::test]
async fn slow_head_is_cut_off() {
    let server = start(config()).await; // head read timeout: 1 s
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /hooks/github HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let _ = read_all(&mut stream, Duration::from_secs(4)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn idle_connections_do_not_hold_the_receiver() {
    let mut config = config();
    config.limits.connection.max_connections = 4;
    let server = start(config).await;
    // Four silent connections take every slot; the head timeout frees them.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let server = start(config()).await; // head read timeout: 1 s
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Kept alive, then silent: the connection does not stay open for ever.
    let started = Instant::now();
    let _ = read_all(&mut stream, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn huge_headers_get_431() {
    let server = start(config()).await;
    let huge = "a".repeat(100 * 1024);
    let req = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\nContent-Length: 0\r\n\r\n"
    );
    let (status, _) = response(&raw(server.addr, req.as_bytes()).await);
    assert_eq!(status, 431);
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("POST /hooks/github HTTP/1.1\r\nHost: t\r\n{many}Content-Length: 0\r\n\r\n");
    let (status, _) = response(&raw(server.addr, req.as_bytes()).await);
    assert_eq!(status, 431);
    assert_eq!(server.get("/healthz").await.0, 200);
}
