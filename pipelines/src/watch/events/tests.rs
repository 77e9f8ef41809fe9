//! Derivation from status snapshots shaped like the ones Tekton writes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;

fn task_run(status: Value) -> TaskRun {
    serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "ci-test", "uid": "u1", "labels": {"tekton.dev/pipelineTask": "test"}},
        "spec": {"taskRef": {"name": "cargo"}, "serviceAccountName": ""},
        "status": status
    }))
    .unwrap()
}

fn waiting(name: &str) -> Value {
    json!({"name": name, "container": format!("step-{name}"), "waiting": {"reason": "PodInitializing"}})
}
fn running(name: &str) -> Value {
    json!({"name": name, "container": format!("step-{name}"), "running": {"startedAt": "2026-01-01T00:00:01Z"}})
}
fn done(name: &str, code: i32, reason: &str) -> Value {
    json!({"name": name, "container": format!("step-{name}"), "terminationReason": reason,
           "terminated": {"exitCode": code, "reason": reason, "startedAt": "2026-01-01T00:00:01Z",
                          "finishedAt": "2026-01-01T00:00:02Z", "message": if code == 0 { "" } else { "boom" }}})
}
fn cond(status: &str, reason: &str) -> Value {
    // Knative conditions: lastTransitionTime and message are optional.
    json!([{"type": "Succeeded", "status": status, "reason": reason}])
}

/// Delivers what is new, the way the follower does.
fn deliver(delivered: &mut BTreeSet<String>, tr: &TaskRun) -> Vec<String> {
    task_run_events(tr)
        .into_iter()
        .filter(|k| delivered.insert(k.key.clone()))
        .map(|k| k.event.to_string())
        .collect()
}

#[test]
fn steps_start_in_order_although_all_containers_run_at_once() {
    let snapshots = [
        json!({"podName": ""}),
        json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z", "conditions": cond("Unknown", "Pending"),
               "steps": [waiting("build"), waiting("test")]}),
        json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z", "conditions": cond("Unknown", "Running"),
               "steps": [running("build"), running("test")]}),
        json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z", "conditions": cond("Unknown", "Running"),
               "steps": [done("build", 0, "Completed"), running("test")]}),
        json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z", "conditions": cond("False", "Failed"),
               "steps": [done("build", 0, "Completed"), done("test", 101, "Error")]}),
    ];
    let mut delivered = BTreeSet::new();
    let per_snapshot: Vec<Vec<String>> = snapshots
        .iter()
        .map(|s| deliver(&mut delivered, &task_run(s.clone())))
        .collect();
    assert_eq!(
        per_snapshot,
        vec![
            vec![],
            vec!["▶ task test".to_string()],
            vec!["  … test/build".to_string()],
            vec!["  ✔ test/build".into(), "  … test/test".into()],
            vec![
                "  ✘ test/test exit 101 (Error): boom".into(),
                "✘ task test Failed".into()
            ],
        ]
    );
    // Replaying every snapshot (a relist, a restarted watch) delivers nothing again.
    for s in &snapshots {
        assert!(deliver(&mut delivered, &task_run(s.clone())).is_empty());
    }
}

#[test]
fn a_snapshot_seen_late_still_gives_every_transition_once_in_order() {
    let last = task_run(json!({"podName": "p", "startTime": "2026-01-01T00:00:00Z",
        "conditions": cond("True", "Succeeded"),
        "steps": [done("a", 0, "Completed"), done("b", 0, "Completed")]}));
    let events: Vec<String> = task_run_events(&last)
        .into_iter()
        .map(|k| k.event.to_string())
        .collect();
    assert_eq!(
        events,
        vec![
            "▶ task test",
            "  … test/a",
            "  ✔ test/a",
            "  … test/b",
            "  ✔ test/b",
            "■ task test Succeeded"
        ]
    );
}

#[test]
fn a_retry_does_not_refire_the_previous_attempts_steps() {
    let failed_attempt = json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z",
        "conditions": cond("False", "Failed"),
        "steps": [done("build", 0, "Completed"), done("test", 1, "Error")]});
    let mut delivered = BTreeSet::new();
    // Attempt 0 is seen while running only.
    let first = deliver(
        &mut delivered,
        &task_run(
            json!({"podName": "ci-test-pod", "startTime": "2026-01-01T00:00:00Z",
            "conditions": cond("Unknown", "Running"), "steps": [running("build"), running("test")]}),
        ),
    );
    assert_eq!(first, vec!["▶ task test", "  … test/build"]);
    // Tekton archives the attempt but leaves `steps` as they were, with podName "".
    let mut archived = failed_attempt.clone();
    archived["conditions"] = cond("Unknown", "ToBeRetried");
    archived["retriesStatus"] = json!([failed_attempt.clone()]);
    archived["podName"] = json!("");
    archived.as_object_mut().unwrap().remove("startTime");
    assert_eq!(
        deliver(&mut delivered, &task_run(archived.clone())),
        vec![
            "  ✔ test/build",
            "  … test/test",
            "  ✘ test/test exit 1 (Error): boom",
            "↻ task test retry 1 after Failed",
        ]
    );
    // The new pod reports: attempt 1's steps, keyed by attempt, fire afresh.
    let mut second = archived.clone();
    second["podName"] = json!("ci-test-pod-retry1");
    second["conditions"] = cond("Unknown", "Running");
    second["steps"] = json!([running("build"), running("test")]);
    assert_eq!(
        deliver(&mut delivered, &task_run(second.clone())),
        vec!["  … test/build (retry 1)"]
    );
    second["conditions"] = cond("True", "Succeeded");
    second["steps"] = json!([done("build", 0, "Completed"), done("test", 0, "Completed")]);
    assert_eq!(
        deliver(&mut delivered, &task_run(second)),
        vec![
            "  ✔ test/build (retry 1)",
            "  … test/test (retry 1)",
            "  ✔ test/test (retry 1)",
            "■ task test Succeeded"
        ]
    );
}

#[test]
fn skipped_continued_and_timed_out_steps() {
    let tr = task_run(json!({"podName": "p", "startTime": "2026-01-01T00:00:00Z",
        "conditions": cond("False", "TaskRunTimeout"),
        "steps": [done("lint", 1, "Continued"), done("slow", 0, "TimeoutExceeded"), done("after", 0, "Skipped")]}));
    let events: Vec<String> = task_run_events(&tr)
        .into_iter()
        .map(|k| k.event.to_string())
        .collect();
    assert_eq!(
        events,
        vec![
            "▶ task test",
            "  … test/lint",
            "  ✘ test/lint exit 1 (Continued): boom",
            "  … test/slow",
            "  ✘ test/slow exit 0 (TimeoutExceeded)",
            "  - test/after skipped",
            "✘ task test TaskRunTimeout"
        ]
    );
}

#[test]
fn keys_are_valid_config_map_keys_and_unique() {
    let tr = task_run(json!({"podName": "p", "startTime": "2026-01-01T00:00:00Z",
        "conditions": cond("True", "Succeeded"), "steps": [done("a", 0, "Completed")]}));
    let keys: Vec<String> = task_run_events(&tr).into_iter().map(|k| k.key).collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len());
    for k in &keys {
        assert!(
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
            "{k}"
        );
    }
}

#[test]
fn pipeline_run_end_says_timeout_and_cancellation() {
    let run = |reason: &str, status: &str| -> PipelineRun {
        serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "r", "uid": "p1"},
            "spec": {"pipelineRef": {"name": "p"}},
            "status": {"conditions": [{"type": "Succeeded", "status": status, "reason": reason,
                                       "message": "m", "lastTransitionTime": null}]}
        }))
        .unwrap()
    };
    assert!(pipeline_run_event(&run("Running", "Unknown")).is_none());
    let t = pipeline_run_event(&run("PipelineRunTimeout", "False")).unwrap();
    assert_eq!(t.key, "p1.finished");
    assert_eq!(
        t.event.to_string(),
        "pipelinerun r timed out (PipelineRunTimeout: m)"
    );
    let c = pipeline_run_event(&run("Cancelled", "False")).unwrap();
    assert_eq!(
        c.event.to_string(),
        "pipelinerun r cancelled (Cancelled: m)"
    );
    let s = pipeline_run_event(&run("Succeeded", "True")).unwrap();
    assert_eq!(
        s.event.to_string(),
        "pipelinerun r succeeded (Succeeded: m)"
    );
}

#[test]
fn steps_after_a_failure_never_ran() {
    // Cancelled while `work` ran: `work` failed, `later` was killed before it started.
    let tr = task_run(json!({"podName": "p", "startTime": "2026-01-01T00:00:00Z",
        "conditions": cond("False", "TaskRunCancelled"),
        "steps": [done("prepare", 0, "Completed"), done("work", 1, "TaskRunCancelled"), done("later", 1, "TaskRunCancelled")]}));
    let events: Vec<String> = task_run_events(&tr)
        .into_iter()
        .map(|k| k.event.to_string())
        .collect();
    assert_eq!(
        events,
        vec![
            "▶ task test",
            "  … test/prepare",
            "  ✔ test/prepare",
            "  … test/work",
            "  ✘ test/work exit 1 (TaskRunCancelled): boom",
            "  - test/later skipped",
            "✘ task test TaskRunCancelled"
        ]
    );
}
