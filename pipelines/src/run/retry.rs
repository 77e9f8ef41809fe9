//! Keelson's retry policy for whole runs, and which failures it retries.
//!
//! Tekton retries a task immediately (`retries`); Keelson re-submits a failed PipelineRun
//! with exponential backoff and jitter, a cap and a maximum number of attempts. Failures
//! a new attempt cannot fix are permanent and never retried.

use std::time::Duration;

use crate::model::PipelineRun;
use crate::watch::Ending;

/// Exponential backoff with jitter, a cap and a maximum number of attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (1: never retry).
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub initial_delay: Duration,
    /// The largest delay.
    pub max_delay: Duration,
    /// Each retry waits this much longer than the previous one.
    pub multiplier: f64,
    /// The delay varies by up to this fraction either way (0.2: ±20 %).
    pub jitter: f64,
    /// Whether a run that exceeded its own timeout is retried.
    pub retry_timeouts: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(600),
            multiplier: 2.0,
            jitter: 0.2,
            retry_timeouts: false,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first), without jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        Duration::from_secs_f64(secs.min(self.max_delay.as_secs_f64()))
    }

    /// The delay before retry number `retry`, with `unit` (uniform in [0, 1)) picking the
    /// jitter; never above `max_delay`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let base = self.base_delay(retry).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * factor).min(self.max_delay.as_secs_f64()))
    }

    /// The delay before retry number `retry`, with random jitter.
    pub fn jittered_delay(&self, retry: u32) -> Duration {
        self.delay(retry, rand::random::<f64>())
    }
}

/// Why a run (or its submission) did not succeed, and whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A new attempt would fail the same way (invalid, missing Pipeline or Task, denied).
    Permanent(String),
    /// A new attempt may succeed (a task failed, the API server was unavailable).
    Transient(String),
    /// The run exceeded its own timeout.
    TimedOut(String),
    /// The run was cancelled through `spec.status`.
    Cancelled(String),
}

impl Failure {
    /// Whether `policy` retries it.
    pub fn retryable(&self, policy: &RetryPolicy) -> bool {
        match self {
            Failure::Transient(_) => true,
            Failure::TimedOut(_) => policy.retry_timeouts,
            Failure::Permanent(_) | Failure::Cancelled(_) => false,
        }
    }

    /// What happened.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Permanent(r)
            | Failure::Transient(r)
            | Failure::TimedOut(r)
            | Failure::Cancelled(r) => r,
        }
    }
}

/// PipelineRun reasons Tekton gives when the run could never work as written.
const PERMANENT_REASONS: &[&str] = &[
    "CouldntGetPipeline",
    "CouldntGetTask",
    "PipelineValidationFailed",
    "TaskRunValidationFailed",
    "TaskValidationFailed",
    "ParameterMissing",
    "ParameterTypeMismatch",
    "ObjectParameterMissKeys",
    "ParamArrayIndexingInvalid",
    "InvalidWorkspaceBindings",
    "InvalidTaskRunSpecs",
    "InvalidPipelineResourceBindings",
    "PipelineInvalidGraph",
    "InvalidTaskResultReference",
    "InvalidPipelineResultReference",
    "InvalidMatrixParameterTypes",
    "RequiredWorkspaceMarkedOptional",
    "InvalidParamValue",
    "ResourceVerificationFailed",
    "CELEvaluationFailed",
    "CouldntGetPipelineResult",
];

/// How a finished run failed (`None`: it succeeded).
pub fn classify_ending(ending: &Ending) -> Option<Failure> {
    if ending.succeeded {
        return None;
    }
    let reason = ending.reason.clone().unwrap_or_else(|| "Failed".into());
    let text = match &ending.message {
        Some(m) => format!("{reason}: {m}"),
        None => reason.clone(),
    };
    Some(if ending.timed_out() {
        Failure::TimedOut(text)
    } else if ending.cancelled() {
        Failure::Cancelled(text)
    } else if PERMANENT_REASONS.contains(&reason.as_str()) {
        Failure::Permanent(text)
    } else {
        Failure::Transient(text)
    })
}

/// How a finished run failed (`None`: it succeeded or has not finished).
pub fn classify_run(run: &PipelineRun) -> Option<Failure> {
    let condition = run.condition()?;
    if condition.status == "Unknown" {
        return None;
    }
    classify_ending(&Ending {
        succeeded: condition.status == "True",
        reason: condition.reason.clone(),
        message: condition.message.clone(),
    })
}

/// Whether a failed request to the API server is worth repeating.
pub fn classify_api_error(error: &kube::Error) -> Failure {
    match error {
        kube::Error::Api(s) => {
            let text = format!("{} ({}): {}", s.reason, s.code, s.message);
            match s.code {
                // Invalid, denied, unknown resource (no Tekton CRDs), bad request.
                400 | 401 | 403 | 404 | 405 | 409 | 422 => Failure::Permanent(text),
                _ => Failure::Transient(text),
            }
        }
        other => Failure::Transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jitters_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.25,
            retry_timeouts: false,
        };
        let base: Vec<u64> = (1..=6).map(|r| p.base_delay(r).as_secs()).collect();
        assert_eq!(base, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(3));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(5));
        // Jitter never goes above the cap.
        assert_eq!(p.delay(6, 1.0), Duration::from_secs(10));
        for _ in 0..100 {
            let d = p.jittered_delay(2);
            assert!(d >= Duration::from_millis(1500) && d <= Duration::from_millis(2500));
        }
    }

    #[test]
    fn failures_are_classified() {
        let ending = |ok: bool, reason: &str| Ending {
            succeeded: ok,
            reason: Some(reason.into()),
            message: None,
        };
        let p = RetryPolicy::default();
        assert_eq!(classify_ending(&ending(true, "Succeeded")), None);
        let cases = [
            ("Failed", true),
            ("CouldntGetTask", false),
            ("CouldntGetPipeline", false),
            ("PipelineValidationFailed", false),
            ("PipelineRunTimeout", false),
            ("Cancelled", false),
            ("StoppedRunFinally", false),
        ];
        for (reason, retry) in cases {
            let f = classify_ending(&ending(false, reason)).unwrap();
            assert_eq!(f.retryable(&p), retry, "{reason}");
        }
        assert!(matches!(
            classify_ending(&ending(false, "PipelineRunTimeout")),
            Some(Failure::TimedOut(_))
        ));
        let with_timeouts = RetryPolicy {
            retry_timeouts: true,
            ..RetryPolicy::default()
        };
        assert!(
            classify_ending(&ending(false, "PipelineRunTimeout"))
                .unwrap()
                .retryable(&with_timeouts)
        );
    }
}
