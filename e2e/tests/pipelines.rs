//! End-to-end tests of Keelson's Tekton layer against a real API server with Tekton's
//! real CRDs (config/300-crds of the pinned tektoncd/pipeline module). No Tekton controller
//! runs there: a test-side driver writes PipelineRun and TaskRun status the way Tekton
//! does, and the tests check every callback fires exactly once and in order, backoff
//! timing, cancellation, timeouts, and permanent vs transient failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/tekton.rs"]
mod tekton;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use keelson_e2e::ControlPlane;
use keelson_e2e::unique;
use keelson_pipelines::builder::{LABEL_ATTEMPT, LABEL_RETRY_OF, RunBuilder, Source};
use keelson_pipelines::model::{PipelineRun, TektonObject};
use keelson_pipelines::run::{
    CancelMode, CancelToken, Failure, RetryPolicy, RunError, Runner, cancellation, submit,
};
use keelson_pipelines::watch::{ConfigMapLog, Event, FollowOptions, follow};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tekton::{AttemptPlan, Driver, install_crds, namespace};

async fn setup(prefix: &str) -> (Client, Driver) {
    let client = ControlPlane::shared().clusters()[0].client().await.unwrap();
    install_crds(&client).await;
    let ns = unique(prefix);
    namespace(&client, &ns).await;
    let driver = Driver {
        client: client.clone(),
        namespace: ns,
    };
    (client, driver)
}

fn template(ns: &str) -> PipelineRun {
    RunBuilder::for_pipeline_name("rust-ci")
        .namespace(ns)
        .param("repo-url", "https://example.invalid/keelson")
        .param("revision", "0123456789abcdef0123456789abcdef01234567")
        .source(&Source {
            repository: "https://example.invalid/keelson".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            target: "staging".into(),
        })
        .build()
        .unwrap()
}

/// Records every event with the time it arrived.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Instant, Event)>>>);

impl Recorder {
    fn callbacks(&self) -> impl FnMut(&Event) + Send + use<> {
        let events = self.0.clone();
        move |e: &Event| events.lock().unwrap().push((Instant::now(), e.clone()))
    }

    /// The events as printed, without the runner's own submissions.
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| !matches!(e, Event::RunSubmitted { .. }))
            .map(|(_, e)| e.to_string())
            .collect()
    }

    fn events(&self) -> Vec<(Instant, Event)> {
        self.0.lock().unwrap().clone()
    }
}

fn no_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }
}

fn build_ok() -> Vec<AttemptPlan> {
    vec![AttemptPlan(vec![("compile", 0), ("package", 0)])]
}

fn test_flaky_then_ok() -> Vec<AttemptPlan> {
    vec![
        AttemptPlan(vec![("unit", 0), ("integration", 2)]),
        AttemptPlan(vec![("unit", 0), ("integration", 0)]),
    ]
}

const BUILD_EVENTS: &[&str] = &[
    "▶ task build",
    "  … build/compile",
    "  ✔ build/compile",
    "  … build/package",
    "  ✔ build/package",
    "■ task build Succeeded: All Steps have completed executing",
];

const TEST_EVENTS: &[&str] = &[
    "▶ task test",
    "  … test/unit",
    "  ✔ test/unit",
    "  … test/integration",
    "  ✘ test/integration exit 2 (Error): integration exited with code 2",
    "↻ task test retry 1 after Failed: \"step-integration\" exited with code 2",
    "  … test/unit (retry 1)",
    "  ✔ test/unit (retry 1)",
    "  … test/integration (retry 1)",
    "  ✔ test/integration (retry 1)",
    "■ task test Succeeded: All Steps have completed executing",
];

/// Plays a whole successful run: build, then a test task that Tekton retries once.
async fn play_successful_run(driver: &Driver, run: &PipelineRun) {
    driver.start_run(&run.name_any()).await;
    let build = driver.create_task_run(run, "build").await;
    assert!(driver.play_task_run(&build, &build_ok()).await);
    let test = driver.create_task_run(run, "test").await;
    assert!(driver.play_task_run(&test, &test_flaky_then_ok()).await);
    driver
        .finish_run(
            &run.name_any(),
            "True",
            "Succeeded",
            "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0",
        )
        .await;
}

#[tokio::test]
async fn every_step_callback_fires_exactly_once_and_in_order_across_watch_restarts() {
    let (client, driver) = setup("tekton-steps").await;
    let recorder = Recorder::default();
    // Watches time out every second: the watcher resumes from the last resourceVersion
    // several times during the run, replaying nothing.
    let runner = Runner::new(client.clone())
        .policy(no_retry())
        .durable(true)
        .follow_options(FollowOptions {
            watch_timeout_secs: Some(1),
        });
    let tekton = {
        let driver = driver.clone();
        tokio::spawn(async move {
            let run = driver.next_new_run(&mut Vec::new()).await;
            play_successful_run(&driver, &run).await;
            run.name_any()
        })
    };
    let report = runner
        .run(
            &template(&driver.namespace),
            &mut recorder.callbacks(),
            &mut CancelToken::never(),
        )
        .await
        .unwrap();
    let name = tekton.await.unwrap();
    assert!(report.failure().is_none(), "{:?}", report.failure());
    assert_eq!(report.attempts.len(), 1);
    let mut expected: Vec<String> = BUILD_EVENTS
        .iter()
        .chain(TEST_EVENTS)
        .map(|s| s.to_string())
        .collect();
    expected.push(format!(
        "pipelinerun {name} succeeded (Succeeded: Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0)"
    ));
    assert_eq!(recorder.lines(), expected);

    // The delivery log holds exactly the delivered transitions.
    let log: Api<ConfigMap> = Api::namespaced(client, &driver.namespace);
    let cm = log.get(&ConfigMapLog::name_for(&name)).await.unwrap();
    assert_eq!(cm.data.unwrap().len(), expected.len());
    assert_eq!(cm.metadata.owner_references.unwrap()[0].name, name);
}

#[tokio::test]
async fn an_engine_restart_delivers_nothing_twice() {
    let (client, driver) = setup("tekton-restart").await;
    let run = submit(&client, &template(&driver.namespace)).await.unwrap();
    let name = run.name_any();
    driver.start_run(&name).await;
    let build = driver.create_task_run(&run, "build").await;
    assert!(driver.play_task_run(&build, &build_ok()).await);

    // First engine: follows until the build's events are delivered and recorded.
    let first = Recorder::default();
    let engine = {
        let (client, ns, name, run) = (
            client.clone(),
            driver.namespace.clone(),
            name.clone(),
            run.clone(),
        );
        let mut callbacks = first.callbacks();
        tokio::spawn(async move {
            let mut log = ConfigMapLog::load(client.clone(), &run).await.unwrap();
            follow(
                client,
                &ns,
                &name,
                &mut callbacks,
                &mut log,
                &FollowOptions::default(),
            )
            .await
        })
    };
    let logs: Api<ConfigMap> = Api::namespaced(client.clone(), &driver.namespace);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recorded = logs
            .get_opt(&ConfigMapLog::name_for(&name))
            .await
            .unwrap()
            .and_then(|cm| cm.data)
            .map_or(0, |d| d.len());
        if recorded == BUILD_EVENTS.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first engine recorded {recorded} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The engine dies.
    engine.abort();
    let _ = engine.await;
    assert_eq!(first.lines(), BUILD_EVENTS);

    // Tekton goes on meanwhile.
    let test = driver.create_task_run(&run, "test").await;
    assert!(driver.play_task_run(&test, &test_flaky_then_ok()).await);
    driver.finish_run(&name, "True", "Succeeded", "done").await;

    // A new engine picks the run up from its log: only what the first one did not deliver.
    let second = Recorder::default();
    let mut log = ConfigMapLog::load(client.clone(), &run).await.unwrap();
    assert_eq!(log.keys().len(), BUILD_EVENTS.len());
    let finished = follow(
        client,
        &driver.namespace,
        &name,
        &mut second.callbacks(),
        &mut log,
        &FollowOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(finished.condition().unwrap().status, "True");
    let mut expected: Vec<String> = TEST_EVENTS.iter().map(|s| s.to_string()).collect();
    expected.push(format!("pipelinerun {name} succeeded (Succeeded: done)"));
    assert_eq!(second.lines(), expected);
}

/// What the fake Tekton does with each attempt of a run.
#[derive(Clone, Copy, Debug)]
enum Plan {
    TaskFails,
    Succeeds,
    /// Tekton cannot resolve the Pipeline.
    MissingPipeline,
    TimesOut,
    /// Runs until Keelson cancels it.
    UntilCancelled,
}

/// Plays Tekton for every run the runner creates, by attempt (1-based).
fn fake_tekton(
    driver: &Driver,
    plans: Vec<Plan>,
) -> tokio::task::JoinHandle<Vec<(Instant, PipelineRun)>> {
    let driver = driver.clone();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut created = Vec::new();
        for plan in plans {
            let run = driver.next_new_run(&mut seen).await;
            created.push((Instant::now(), run.clone()));
            let name = run.name_any();
            driver.start_run(&name).await;
            match plan {
                Plan::Succeeds => {
                    let tr = driver.create_task_run(&run, "build").await;
                    assert!(driver.play_task_run(&tr, &build_ok()).await);
                    driver
                        .finish_run(&name, "True", "Succeeded", "all done")
                        .await;
                }
                Plan::TaskFails => {
                    let tr = driver.create_task_run(&run, "build").await;
                    let plan = vec![AttemptPlan(vec![("compile", 101), ("package", 0)])];
                    assert!(!driver.play_task_run(&tr, &plan).await);
                    driver
                        .finish_run(
                            &name,
                            "False",
                            "Failed",
                            "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0",
                        )
                        .await;
                }
                Plan::MissingPipeline => {
                    driver
                        .finish_run(&name, "False", "CouldntGetPipeline", "Error retrieving pipeline for pipelinerun: pipelines.tekton.dev \"rust-ci\" not found")
                        .await;
                }
                Plan::TimesOut => {
                    let tr = driver.create_task_run(&run, "build").await;
                    driver
                        .task_status(
                            &tr,
                            json!({"podName": format!("{tr}-pod"), "startTime": tekton::now(),
                            "conditions": tekton::cond("Unknown", "Running", "running"),
                            "steps": [tekton::running("compile")]}),
                        )
                        .await;
                    driver
                        .task_status(&tr, json!({"podName": format!("{tr}-pod"), "startTime": tekton::now(),
                            "completionTime": tekton::now(),
                            "conditions": tekton::cond("False", "TaskRunTimeout", "TaskRun \"x\" failed to finish within \"1s\""),
                            "steps": [tekton::terminated("compile", 1, "TaskRunTimeout")]}))
                        .await;
                    driver
                        .finish_run(
                            &name,
                            "False",
                            "PipelineRunTimeout",
                            &format!("PipelineRun \"{name}\" failed to finish within \"1s\""),
                        )
                        .await;
                }
                Plan::UntilCancelled => {
                    let tr = driver.create_task_run(&run, "build").await;
                    let pod = format!("{tr}-pod");
                    driver
                        .task_status(
                            &tr,
                            json!({"podName": pod, "startTime": tekton::now(),
                            "conditions": tekton::cond("Unknown", "Running", "running"),
                            "steps": [tekton::running("compile"), tekton::running("package")]}),
                        )
                        .await;
                    let status = driver.wait_spec_status(&name).await;
                    assert_eq!(status, "Cancelled");
                    // Tekton cancels the TaskRun (spec.status) and its pod's steps stop.
                    driver
                        .task_runs()
                        .patch(&tr, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"status": "TaskRunCancelled",
                            "statusMessage": "TaskRun cancelled as the PipelineRun it belongs to has been cancelled."}})))
                        .await
                        .unwrap();
                    driver
                        .task_status(&tr, json!({"podName": pod, "startTime": tekton::now(), "completionTime": tekton::now(),
                            "conditions": tekton::cond("False", "TaskRunCancelled", "TaskRun \"x\" was cancelled"),
                            "steps": [tekton::terminated("compile", 1, "TaskRunCancelled"),
                                      tekton::terminated("package", 1, "TaskRunCancelled")]}))
                        .await;
                    driver
                        .finish_run(
                            &name,
                            "False",
                            "Cancelled",
                            &format!("PipelineRun \"{name}\" was cancelled"),
                        )
                        .await;
                }
            }
        }
        created
    })
}

#[tokio::test]
async fn a_failed_run_is_resubmitted_with_exponential_backoff_and_jitter() {
    let (client, driver) = setup("tekton-backoff").await;
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(800),
        max_delay: Duration::from_millis(1200),
        multiplier: 2.0,
        jitter: 0.25,
        retry_timeouts: false,
    };
    let tekton = fake_tekton(
        &driver,
        vec![Plan::TaskFails, Plan::TaskFails, Plan::Succeeds],
    );
    let recorder = Recorder::default();
    let report = Runner::new(client)
        .policy(policy.clone())
        .run(
            &template(&driver.namespace),
            &mut recorder.callbacks(),
            &mut CancelToken::never(),
        )
        .await
        .unwrap();
    let created = tekton.await.unwrap();
    assert!(report.failure().is_none(), "{:?}", report.failure());
    assert_eq!(report.attempts.len(), 3);
    assert!(matches!(
        report.attempts[0].failure,
        Some(Failure::Transient(_))
    ));

    // Each attempt is a new PipelineRun, labelled with its number and the first attempt.
    let first = created[0].1.name_any();
    for (i, (_, run)) in created.iter().enumerate() {
        let labels = run.labels();
        assert_eq!(labels[LABEL_ATTEMPT], (i + 1).to_string());
        if i > 0 {
            assert_eq!(labels[LABEL_RETRY_OF], first);
            assert!(run.name_any().starts_with(
                &format!("{}-", first.trim_end_matches(|c: char| c != '-').trim_end_matches('-'))
            ));
        }
    }

    // The delays grow exponentially (800 ms, then 1600 ms capped at 1200 ms), vary by at
    // most ±25 %, and are really waited before the next submission.
    let events = recorder.events();
    let resubmits: Vec<(Instant, Duration)> = events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::RunResubmitting { delay, .. } => Some((*at, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(resubmits.len(), 2, "{:#?}", recorder.lines());
    let bounds = [(600, 1000), (900, 1200)];
    for (i, ((at, delay), (lo, hi))) in resubmits.iter().zip(bounds).enumerate() {
        let ms = delay.as_millis();
        assert!(
            (lo..=hi).contains(&ms),
            "retry {} delay {ms} ms not in [{lo}, {hi}]",
            i + 1
        );
        let next_created = created[i + 1].0;
        let waited = next_created.duration_since(*at);
        assert!(
            waited >= *delay,
            "retry {} waited {waited:?} < {delay:?}",
            i + 1
        );
        assert!(
            waited < *delay + Duration::from_secs(3),
            "retry {} waited {waited:?}",
            i + 1
        );
    }
    let submitted: Vec<u32> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RunSubmitted { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(submitted, vec![1, 2, 3]);
    // Every attempt's events, each once, in order.
    let lines = recorder.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("pipelinerun "))
            .count(),
        3
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("✘ build/compile exit 101"))
            .count(),
        2
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| *l == "  - build/package skipped")
            .count(),
        2
    );
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let (client, driver) = setup("tekton-permanent").await;
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    // Tekton cannot find the Pipeline: permanent.
    let tekton = fake_tekton(&driver, vec![Plan::MissingPipeline]);
    let recorder = Recorder::default();
    let report = Runner::new(client.clone())
        .policy(policy.clone())
        .run(
            &template(&driver.namespace),
            &mut recorder.callbacks(),
            &mut CancelToken::never(),
        )
        .await
        .unwrap();
    tekton.await.unwrap();
    assert_eq!(report.attempts.len(), 1);
    assert!(
        matches!(report.failure(), Some(Failure::Permanent(r)) if r.starts_with("CouldntGetPipeline")),
        "{:?}",
        report.failure()
    );
    assert!(
        recorder
            .lines()
            .iter()
            .all(|l| !l.starts_with("↻ pipelinerun"))
    );

    // A validation error: nothing is sent.
    let mut invalid = template(&driver.namespace);
    invalid.spec.timeouts =
        Some(serde_json::from_value(json!({"pipeline": "10m", "tasks": "1h"})).unwrap());
    let err = Runner::new(client.clone())
        .policy(policy.clone())
        .run(
            &invalid,
            &mut recorder.callbacks(),
            &mut CancelToken::never(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Invalid(issues) if issues[0].path == ".spec.timeouts.tasks"),
        "{err}"
    );

    // Permission denied: a user without RBAC rights gets 403, which is not retried.
    let cp = ControlPlane::shared();
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions {
            context: Some(cp.clusters()[0].name().to_string()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    config.auth_info.impersonate = Some("keelson-e2e-nobody".into());
    let nobody = Client::try_from(config).unwrap();
    let started = Instant::now();
    let err = Runner::new(nobody)
        .policy(policy)
        .run(
            &template(&driver.namespace),
            &mut recorder.callbacks(),
            &mut CancelToken::never(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Api(kube::Error::Api(s)) if s.code == 403),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a permanent failure must not back off"
    );
    let runs: Vec<_> = driver.runs().list(&Default::default()).await.unwrap().items;
    assert_eq!(runs.len(), 1, "only the first run was ever created");
}

#[tokio::test]
async fn cancellation_goes_through_spec_status_and_stops_retries() {
    let (client, driver) = setup("tekton-cancel").await;
    let tekton = fake_tekton(&driver, vec![Plan::UntilCancelled]);
    let (handle, mut token) = cancellation();
    let recorder = Recorder::default();
    // Cancel as soon as the first step starts.
    let mut callbacks = {
        let mut record = recorder.callbacks();
        move |e: &Event| {
            record(e);
            if matches!(e, Event::StepStarted(_)) {
                handle.cancel(CancelMode::Cancel);
            }
        }
    };
    let report = Runner::new(client)
        .policy(RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        })
        .run(&template(&driver.namespace), &mut callbacks, &mut token)
        .await
        .unwrap();
    let created = tekton.await.unwrap();
    assert_eq!(report.attempts.len(), 1);
    assert!(
        matches!(report.failure(), Some(Failure::Cancelled(_))),
        "{:?}",
        report.failure()
    );
    let run = driver.runs().get(&created[0].1.name_any()).await.unwrap();
    assert_eq!(run.spec.status.as_deref(), Some("Cancelled"));
    let name = run.name_any();
    assert_eq!(
        recorder.lines(),
        vec![
            "▶ task build".to_string(),
            "  … build/compile".into(),
            "  ✘ build/compile exit 1 (TaskRunCancelled): compile exited with code 1".into(),
            "  - build/package skipped".into(),
            "✘ task build TaskRunCancelled: TaskRun \"x\" was cancelled".into(),
            format!(
                "pipelinerun {name} cancelled (Cancelled: PipelineRun \"{name}\" was cancelled)"
            ),
        ]
    );
}

#[tokio::test]
async fn a_run_that_exceeds_its_timeout_is_reported_as_such() {
    let (client, driver) = setup("tekton-timeout").await;
    let tekton = fake_tekton(&driver, vec![Plan::TimesOut]);
    let recorder = Recorder::default();
    let mut run = template(&driver.namespace);
    run.spec.timeouts = Some(serde_json::from_value(json!({"pipeline": "1s"})).unwrap());
    let report = Runner::new(client)
        .policy(RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        })
        .run(&run, &mut recorder.callbacks(), &mut CancelToken::never())
        .await
        .unwrap();
    tekton.await.unwrap();
    assert_eq!(
        report.attempts.len(),
        1,
        "timeouts are not retried by default"
    );
    assert!(
        matches!(report.failure(), Some(Failure::TimedOut(_))),
        "{:?}",
        report.failure()
    );
    let events = recorder.events();
    let (_, last) = events.last().unwrap();
    assert!(matches!(
        events[0].1,
        Event::RunSubmitted { attempt: 1, .. }
    ));
    match last {
        Event::PipelineRunFinished { ending, .. } => assert!(ending.timed_out()),
        other => panic!("last event {other}"),
    }
    assert!(
        recorder
            .lines()
            .iter()
            .any(|l| l == "  ✘ build/compile exit 1 (TaskRunTimeout): compile exited with code 1")
    );
}

#[tokio::test]
async fn the_projects_pipelines_are_accepted_by_the_real_crds() {
    // What `keelson pipeline check` passes, the API server stores (strict field
    // validation), and it reads back into the same typed objects.
    let (client, driver) = setup("tekton-defs").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tekton");
    let report = keelson::pipelines::check_paths(&[dir]).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    for (_, object) in &report.objects {
        let mut value = object.to_value();
        value["metadata"]["namespace"] = json!(driver.namespace);
        let kind = object.kind();
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("tekton.dev", "v1", kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client.clone(), &driver.namespace, &ar);
        let name = object
            .metadata()
            .name
            .clone()
            .unwrap_or_else(|| unique("run"));
        value["metadata"]["name"] = json!(name);
        value["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("generateName");
        let stored = api
            .patch(
                &name,
                &PatchParams::apply("keelson").validation_strict(),
                &Patch::Apply(&value),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind}/{name}: {e}"));
        let back = TektonObject::from_value(&serde_json::to_value(&stored).unwrap()).unwrap();
        assert_eq!(back.kind(), kind);
        let spec = |v: &serde_json::Value| v["spec"].clone();
        assert_eq!(
            spec(&back.to_value()),
            spec(&value),
            "{kind}/{name} spec changed in the API server"
        );
    }
}

/// Applies the project's own Pipeline and Tasks (pipelines/tekton) to a namespace.
async fn apply_project_definitions(client: &Client, ns: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tekton");
    let report = keelson::pipelines::check_paths(&[dir]).unwrap();
    for (_, object) in &report.objects {
        let kind = object.kind();
        if kind == "PipelineRun" {
            continue;
        }
        let mut value = object.to_value();
        value["metadata"]["namespace"] = json!(ns);
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("tekton.dev", "v1", kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let name = object.metadata().name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("keelson").validation_strict(),
            &Patch::Apply(&value),
        )
        .await
        .unwrap();
    }
}

/// Plays the project's rust-ci Pipeline: clone, fmt, clippy, test (which Tekton retries
/// once), deploy-gate, finally summary.
async fn play_rust_ci(driver: &Driver, run: &PipelineRun) {
    let name = run.name_any();
    driver.start_run(&name).await;
    let one = |step: &'static str| vec![AttemptPlan(vec![(step, 0)])];
    for task in ["clone", "fmt", "clippy"] {
        let step = if task == "clone" { "clone" } else { "cargo" };
        let tr = driver.create_task_run(run, task).await;
        assert!(driver.play_task_run(&tr, &one(step)).await);
    }
    let tr = driver.create_task_run(run, "test").await;
    let flaky = vec![
        AttemptPlan(vec![("cargo", 101)]),
        AttemptPlan(vec![("cargo", 0)]),
    ];
    assert!(driver.play_task_run(&tr, &flaky).await);
    for (task, step) in [("deploy-gate", "compare"), ("summary", "print")] {
        let tr = driver.create_task_run(run, task).await;
        assert!(driver.play_task_run(&tr, &one(step)).await);
    }
    driver
        .finish_run(
            &name,
            "True",
            "Succeeded",
            "Tasks Completed: 6 (Failed: 0, Cancelled 0), Skipped: 0",
        )
        .await;
}

#[tokio::test]
async fn pipeline_run_submits_a_checked_run_and_prints_every_step() {
    use keelson::pipelines::{RunOptions, RunPipelineError, RunSummary, run_pipeline};
    let (client, driver) = setup("tekton-cli").await;
    apply_project_definitions(&client, &driver.namespace).await;
    let options = RunOptions {
        pipeline: "rust-ci".into(),
        namespace: Some(driver.namespace.clone()),
        params: vec![
            (
                "repo-url".into(),
                "https://github.com/keelson-dev/keelson".into(),
            ),
            ("revision".into(), "4f9c2e1".into()),
        ],
        workspaces: vec![keelson_pipelines::model::WorkspaceBinding::empty_dir(
            "source",
        )],
        service_account: None,
        timeout: Some("1h".into()),
        source: None,
        definitions: Vec::new(),
        watch: true,
        policy: no_retry(),
    };

    // A misspelt param is refused before anything is sent, naming what the Pipeline takes.
    let mut misspelt = options.clone();
    misspelt.params[1].0 = "revison".into();
    let err = run_pipeline(client.clone(), &misspelt, &mut Vec::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RunPipelineError::Invalid(_)));
    assert!(text.contains(".spec.params[1].name: the pipeline declares no param \"revison\" (it declares: repo-url, revision, target)"), "{text}");
    assert!(text.contains("required param \"revision\""), "{text}");
    assert!(
        driver
            .runs()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let tekton = {
        let driver = driver.clone();
        tokio::spawn(async move {
            let run = driver.next_new_run(&mut Vec::new()).await;
            play_rust_ci(&driver, &run).await;
            run
        })
    };
    let mut out = Vec::new();
    let summary = run_pipeline(client.clone(), &options, &mut out)
        .await
        .unwrap();
    let run = tekton.await.unwrap();
    let name = run.name_any();
    assert_eq!(summary, RunSummary::Succeeded(name.clone()));
    let text = String::from_utf8(out).unwrap();
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "pipelinerun {}/{name} submitted (attempt 1)",
            driver.namespace
        )
    );
    assert!(lines.contains(&"  ✘ test/cargo exit 101 (Error): cargo exited with code 101"));
    assert!(lines.contains(&"  ✔ test/cargo (retry 1)"));
    assert!(lines.contains(&"  ✔ deploy-gate/compare"));
    assert_eq!(lines.iter().filter(|l| l.starts_with("▶ task ")).count(), 6);
    assert_eq!(
        *lines.last().unwrap(),
        format!(
            "pipelinerun {name} succeeded (Succeeded: Tasks Completed: 6 (Failed: 0, Cancelled 0), Skipped: 0)"
        )
    );
    // The submitted run: typed params, the workspace, the timeout as written.
    assert_eq!(
        serde_json::to_value(&run.spec.params).unwrap(),
        json!([{"name": "repo-url", "value": "https://github.com/keelson-dev/keelson"}, {"name": "revision", "value": "4f9c2e1"}])
    );
    assert_eq!(run.spec.timeouts.unwrap().pipeline.unwrap().as_str(), "1h");

    // Without --watch: submitted, not followed.
    let quiet = RunOptions {
        watch: false,
        ..options
    };
    let mut out = Vec::new();
    let summary = run_pipeline(client, &quiet, &mut out).await.unwrap();
    let RunSummary::Submitted(second) = summary else {
        panic!("{summary:?}")
    };
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("pipelinerun {}/{second} created\n", driver.namespace)
    );
}
