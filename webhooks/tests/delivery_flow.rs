//! What happens to deliveries that get through: acknowledged and ignored events, duplicates,
//! coalescing bursts, a full queue, metrics and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SHA1, SHA2, config, push, start};

#[tokio::test]
async fn unknown_and_future_events_are_acknowledged_and_ignored() {
    let server = start(config()).await;
    for (n, event) in [
        "issues",
        "star",
        "some_event_github_adds_in_2030",
        "Weird-Name.v2",
    ]
    .iter()
    .enumerate()
    {
        let (status, text) = server
            .deliver(event, &format!("u-{n}"), br#"{"action":"created","zen":1}"#)
            .await;
        assert_eq!(
            (status, text.as_str()),
            (200, r#"{"outcome":"ignored"}"#),
            "{event}"
        );
    }
    // A pull request action that does not change the head.
    let (status, _) = server
        .deliver("pull_request", "pr-closed", br#"{"action":"closed"}"#)
        .await;
    assert_eq!(status, 200);
    server.no_trigger().await;
    let ignored = server
        .metric(r#"keelson_webhook_deliveries_total{host="github",event="star",outcome="ignored"}"#)
        .await;
    assert_eq!(ignored, 1);
}

#[tokio::test]
async fn duplicate_deliveries_trigger_once() {
    let server = start(config()).await;
    let body = push("refs/heads/main", SHA2);
    assert_eq!(
        server.deliver("push", "dup-1", &body).await,
        (202, r#"{"outcome":"queued"}"#.into())
    );
    assert_eq!(server.next_trigger().await.delivery, "dup-1");
    for _ in 0..3 {
        // GitHub's redelivery keeps the id, even after the first was taken.
        assert_eq!(
            server.deliver("push", "dup-1", &body).await,
            (200, r#"{"outcome":"duplicate"}"#.into())
        );
    }
    server.no_trigger().await;
    assert_eq!(server.metric("keelson_webhook_duplicates_total").await, 3);
}

#[tokio::test]
async fn burst_to_one_ref_coalesces_to_the_newest_sha() {
    let server = start(config()).await;
    let shas: Vec<String> = (0..50).map(|i| format!("{i:040x}")).collect();
    for (i, sha) in shas.iter().enumerate() {
        let (status, text) = server
            .deliver("push", &format!("burst-{i}"), &push("refs/heads/main", sha))
            .await;
        let want = if i == 0 { "queued" } else { "coalesced" };
        assert_eq!((status, text), (202, format!(r#"{{"outcome":"{want}"}}"#)));
    }
    // Another ref and another repository are not folded in.
    server
        .deliver("push", "other-ref", &push("refs/heads/dev", SHA1))
        .await;
    let t = server.next_trigger().await;
    assert_eq!(
        (t.git_ref.as_str(), t.after.as_str(), t.before.as_str()),
        ("refs/heads/main", shas[49].as_str(), SHA1)
    );
    assert_eq!((t.coalesced, t.delivery.as_str()), (49, "burst-49"));
    assert_eq!(server.next_trigger().await.git_ref, "refs/heads/dev");
    server.no_trigger().await;
    assert_eq!(server.metric("keelson_webhook_coalesced_total").await, 49);
}

#[tokio::test]
async fn concurrent_burst_coalesces() {
    let server = start(config()).await;
    let sends: Vec<_> = (0..40)
        .map(|i| {
            let body = push("refs/heads/main", &format!("{i:040x}"));
            tokio::spawn(common::deliver_to(
                server.addr,
                "push",
                Box::leak(format!("c-{i}").into_boxed_str()),
                Box::leak(body.into_boxed_slice()),
            ))
        })
        .collect();
    for send in sends {
        assert_eq!(send.await.unwrap().0, 202);
    }
    let t = server.next_trigger().await;
    assert_eq!(t.coalesced, 39);
    server.no_trigger().await;
}

#[tokio::test]
async fn full_queue_answers_503_and_a_redelivery_is_taken_later() {
    let mut config = config();
    config.queue_capacity = 1;
    let server = start(config).await;
    assert_eq!(
        server
            .deliver("push", "q-1", &push("refs/heads/a", SHA2))
            .await
            .0,
        202
    );
    assert_eq!(server.get("/readyz").await.0, 503);
    assert_eq!(
        server
            .deliver("push", "q-2", &push("refs/heads/b", SHA2))
            .await
            .0,
        503
    );
    assert_eq!(server.next_trigger().await.git_ref, "refs/heads/a");
    assert_eq!(server.get("/readyz").await.0, 200);
    // GitHub redelivers q-2 with the same id: not a duplicate, since it was not taken.
    assert_eq!(
        server
            .deliver("push", "q-2", &push("refs/heads/b", SHA2))
            .await
            .0,
        202
    );
    assert_eq!(server.next_trigger().await.git_ref, "refs/heads/b");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = start(config()).await;
    assert_eq!(server.get("/healthz").await, (200, "ok\n".into()));
    assert_eq!(server.get("/readyz").await, (200, "ready\n".into()));
    server
        .deliver("ping", "p-1", br#"{"zen":"Keep it logically awesome."}"#)
        .await;
    server
        .deliver("push", "m-1", &push("refs/heads/main", SHA2))
        .await;
    server
        .deliver("push", "m-1", &push("refs/heads/main", SHA2))
        .await;
    server
        .post(
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
            ],
            b"{}",
        )
        .await;
    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        r#"keelson_webhook_deliveries_total{host="github",event="ping",outcome="ping"} 1"#,
        r#"keelson_webhook_deliveries_total{host="github",event="push",outcome="duplicate"} 1"#,
        r#"keelson_webhook_deliveries_total{host="github",event="push",outcome="queued"} 1"#,
        r#"keelson_webhook_deliveries_total{host="github",event="unknown",outcome="unauthorized"} 1"#,
        "keelson_webhook_signature_failures_total 1",
        "keelson_webhook_duplicates_total 1",
        "keelson_webhook_queue_depth 1",
        r#"keelson_webhook_request_duration_seconds_bucket{le="+Inf"} 4"#,
        "keelson_webhook_request_duration_seconds_count 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn shutdown_closes_the_trigger_stream_after_draining() {
    let server = start(config()).await;
    server
        .deliver("push", "s-1", &push("refs/heads/main", SHA2))
        .await;
    let triggers = server.triggers.clone();
    server.shutdown().await;
    assert_eq!(triggers.recv().await.unwrap().after, SHA2);
    assert!(triggers.recv().await.is_none());
}
