//! Submitting PipelineRuns, following them, cancelling them, and re-submitting failed
//! ones with Keelson's retry policy.

mod retry;

use std::collections::BTreeMap;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use tokio::sync::watch;

pub use retry::{Failure, RetryPolicy, classify_api_error, classify_ending, classify_run};

use crate::builder::{LABEL_ATTEMPT, LABEL_RETRY_OF};
use crate::model::{FieldIssue, PipelineRun, spec_status};
use crate::validate::validate_pipeline_run;
use crate::watch::{
    Callbacks, ConfigMapLog, DeliveryLog, Ending, Event, FollowOptions, MemoryLog, WatchError,
    follow,
};

/// The field manager of everything Keelson writes.
pub const FIELD_MANAGER: &str = "keelson";

/// Submitting or following a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run breaks Tekton's rules: nothing was sent.
    #[error("invalid PipelineRun: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldIssue>),
    /// A request to the API server failed.
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
    /// Following the run failed.
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// How to stop a run (`PipelineRun.spec.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// Stop everything now, `finally` tasks included (`Cancelled`).
    Cancel,
    /// Cancel running tasks, then run `finally` (`CancelledRunFinally`).
    CancelRunFinally,
    /// Start nothing new, let running tasks finish, then run `finally`
    /// (`StoppedRunFinally`).
    StopRunFinally,
}

impl CancelMode {
    /// The `spec.status` value.
    pub fn spec_status(self) -> &'static str {
        match self {
            CancelMode::Cancel => spec_status::CANCELLED,
            CancelMode::CancelRunFinally => spec_status::CANCELLED_RUN_FINALLY,
            CancelMode::StopRunFinally => spec_status::STOPPED_RUN_FINALLY,
        }
    }
}

/// Asks a [`Runner`] to cancel the run it follows (and to retry no more).
#[derive(Debug, Clone)]
pub struct CancelHandle(watch::Sender<Option<CancelMode>>);

/// What a [`Runner`] listens to for cancellation.
#[derive(Debug, Clone)]
pub struct CancelToken(watch::Receiver<Option<CancelMode>>);

/// A connected cancel handle and token.
pub fn cancellation() -> (CancelHandle, CancelToken) {
    let (tx, rx) = watch::channel(None);
    (CancelHandle(tx), CancelToken(rx))
}

impl CancelHandle {
    /// Requests cancellation.
    pub fn cancel(&self, mode: CancelMode) {
        self.0.send_replace(Some(mode));
    }
}

impl CancelToken {
    /// A token that is never cancelled.
    pub fn never() -> Self {
        cancellation().1
    }

    fn requested(&self) -> Option<CancelMode> {
        *self.0.borrow()
    }

    /// Waits until cancellation is requested (forever if the handle is gone).
    async fn wait(&mut self) -> CancelMode {
        loop {
            if let Some(mode) = self.requested() {
                return mode;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Creates a PipelineRun after checking it; the API server validates fields strictly
/// (`fieldValidation=Strict`), so an unknown field is an error rather than dropped.
pub async fn submit(client: &Client, run: &PipelineRun) -> Result<PipelineRun, RunError> {
    let issues = validate_pipeline_run(run);
    if !issues.is_empty() {
        return Err(RunError::Invalid(issues));
    }
    let namespace = run
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let url = format!(
        "{}?fieldValidation=Strict&fieldManager={FIELD_MANAGER}",
        PipelineRun::url_path(&(), Some(&namespace))
    );
    let body = serde_json::to_vec(run).map_err(|e| RunError::Api(kube::Error::SerdeError(e)))?;
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| RunError::Api(kube::Error::HttpError(e)))?;
    client.request(request).await.map_err(RunError::Api)
}

/// Cancels (or stops) a run through its `spec.status`.
pub async fn cancel(
    client: &Client,
    namespace: &str,
    name: &str,
    mode: CancelMode,
) -> Result<(), RunError> {
    let api: Api<PipelineRun> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"spec": {"status": mode.spec_status()}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(RunError::Api)?;
    Ok(())
}

/// One submission of a run.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The PipelineRun's name (empty if it was never created).
    pub name: String,
    /// How it failed (`None`: it succeeded).
    pub failure: Option<Failure>,
    /// The finished run, when it was created and followed to its end.
    pub run: Option<PipelineRun>,
}

/// Every attempt of a run; the last one's result is the run's.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The attempts, in order.
    pub attempts: Vec<Attempt>,
}

impl RunReport {
    /// How the last attempt failed (`None`: the run succeeded).
    pub fn failure(&self) -> Option<&Failure> {
        self.attempts.last().and_then(|a| a.failure.as_ref())
    }

    /// The last attempt's finished run.
    pub fn last_run(&self) -> Option<&PipelineRun> {
        self.attempts.last().and_then(|a| a.run.as_ref())
    }
}

/// Submits runs, follows them to their end and re-submits failed ones.
#[derive(Clone)]
pub struct Runner {
    client: Client,
    policy: RetryPolicy,
    follow: FollowOptions,
    durable: bool,
}

impl Runner {
    /// A runner with the default policy, delivery log kept in memory.
    pub fn new(client: Client) -> Self {
        Runner {
            client,
            policy: RetryPolicy::default(),
            follow: FollowOptions::default(),
            durable: false,
        }
    }

    /// The retry policy.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How runs are watched.
    pub fn follow_options(mut self, options: FollowOptions) -> Self {
        self.follow = options;
        self
    }

    /// Keep the delivery log in a ConfigMap per run, so that a restarted engine does not
    /// deliver an event twice.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Submits `template` and follows it; re-submits it after transient failures
    /// following the policy. Events go to `callbacks`; a cancellation request cancels
    /// the current run through `spec.status` and stops retrying.
    pub async fn run<C: Callbacks>(
        &self,
        template: &PipelineRun,
        callbacks: &mut C,
        cancel: &mut CancelToken,
    ) -> Result<RunReport, RunError> {
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut first_name: Option<String> = None;
        for number in 1..=self.policy.max_attempts.max(1) {
            let mut run = template.clone();
            let labels = run.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.insert(LABEL_ATTEMPT.into(), number.to_string());
            if let Some(first) = &first_name {
                labels.insert(LABEL_RETRY_OF.into(), first.clone());
                // Every attempt is a new PipelineRun.
                run.metadata.generate_name = Some(format!("{}-", base_name(template)));
                run.metadata.name = None;
            }
            let failure = match submit(&self.client, &run).await {
                Err(RunError::Api(e)) => {
                    let failure = classify_api_error(&e);
                    if !failure.retryable(&self.policy) {
                        return Err(RunError::Api(e));
                    }
                    attempts.push(Attempt {
                        name: String::new(),
                        failure: Some(failure.clone()),
                        run: None,
                    });
                    failure
                }
                Err(other) => return Err(other),
                Ok(created) => {
                    let name = created.metadata.name.clone().unwrap_or_default();
                    first_name.get_or_insert_with(|| name.clone());
                    callbacks.on_event(&Event::RunSubmitted {
                        namespace: created.metadata.namespace.clone().unwrap_or_default(),
                        name: name.clone(),
                        attempt: number,
                    });
                    let finished = self.follow_one(&created, callbacks, cancel).await?;
                    let failure = classify_run(&finished);
                    attempts.push(Attempt {
                        name,
                        failure: failure.clone(),
                        run: Some(finished),
                    });
                    match failure {
                        None => return Ok(RunReport { attempts }),
                        Some(f) => f,
                    }
                }
            };
            if !failure.retryable(&self.policy)
                || number == self.policy.max_attempts
                || cancel.requested().is_some()
            {
                break;
            }
            let delay = self.policy.jittered_delay(number);
            callbacks.on_event(&Event::RunResubmitting {
                previous: attempts.last().map(|a| a.name.clone()).unwrap_or_default(),
                attempt: number + 1,
                delay,
                reason: failure.reason().to_string(),
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = cancel.wait() => break,
            }
        }
        Ok(RunReport { attempts })
    }

    /// Follows one created run to its end, cancelling it when asked.
    async fn follow_one<C: Callbacks>(
        &self,
        created: &PipelineRun,
        callbacks: &mut C,
        cancel: &mut CancelToken,
    ) -> Result<PipelineRun, RunError> {
        if self.durable {
            let mut log = ConfigMapLog::load(self.client.clone(), created).await?;
            self.follow_with(created, callbacks, cancel, &mut log).await
        } else {
            self.follow_with(created, callbacks, cancel, &mut MemoryLog::default())
                .await
        }
    }

    async fn follow_with<C: Callbacks, L: DeliveryLog>(
        &self,
        created: &PipelineRun,
        callbacks: &mut C,
        cancel: &mut CancelToken,
        log: &mut L,
    ) -> Result<PipelineRun, RunError> {
        let namespace = created.metadata.namespace.clone().unwrap_or_default();
        let name = created.metadata.name.clone().unwrap_or_default();
        let following = follow(
            self.client.clone(),
            &namespace,
            &name,
            callbacks,
            log,
            &self.follow,
        );
        let mut following = std::pin::pin!(following);
        let mut cancelled = false;
        loop {
            tokio::select! {
                result = &mut following => return Ok(result?),
                mode = cancel.wait(), if !cancelled => {
                    cancelled = true;
                    tracing::info!(run = %name, mode = mode.spec_status(), "cancelling");
                    self::cancel(&self.client, &namespace, &name, mode).await?;
                }
            }
        }
    }
}

/// The name new attempts are generated from.
fn base_name(template: &PipelineRun) -> String {
    let meta = &template.metadata;
    meta.name
        .clone()
        .or_else(|| meta.generate_name.clone())
        .unwrap_or_else(|| "run".into())
        .trim_end_matches('-')
        .to_string()
}

/// The ending a failure stands for, for display.
pub fn ending_of(run: &PipelineRun) -> Option<Ending> {
    let c = run.condition()?;
    Some(Ending {
        succeeded: c.status == "True",
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}
