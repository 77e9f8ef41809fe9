//! Readiness in the style of kstatus: workloads rolled out, claims bound, CRDs
//! established, and for everything else the observedGeneration and Ready/Stalled
//! conditions.

use serde_json::Value;

/// What an object's status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// Not yet; the reason.
    Progressing(String),
    /// Will not get there by waiting; the reason.
    Failed(String),
}

fn int(v: &Value, path: &str) -> i64 {
    v.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn is_true(c: Option<&Value>) -> bool {
    c.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True")
}

/// The health of a live object.
pub fn health(obj: &Value) -> Health {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let generation = int(obj, "/metadata/generation");
    let observed = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if is_true(condition(obj, "Stalled")) {
        let msg = condition(obj, "Stalled")
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("stalled");
        return Health::Failed(msg.to_string());
    }
    let stale = |what: &str| Health::Progressing(format!("{what}: status not observed yet"));
    match kind {
        "Deployment" => {
            if observed.is_none_or(|o| o < generation) {
                return stale("Deployment");
            }
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if let Some(c) = condition(obj, "Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
            {
                return Health::Failed("progress deadline exceeded".into());
            }
            let updated = int(obj, "/status/updatedReplicas");
            let available = int(obj, "/status/availableReplicas");
            if updated < want || available < want {
                return Health::Progressing(format!("{available}/{want} replicas available"));
            }
            Health::Ready
        }
        "StatefulSet" => {
            if observed.is_none_or(|o| o < generation) {
                return stale("StatefulSet");
            }
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = int(obj, "/status/readyReplicas");
            let current = obj.pointer("/status/currentRevision");
            let update = obj.pointer("/status/updateRevision");
            if ready < want || current != update {
                return Health::Progressing(format!("{ready}/{want} replicas ready"));
            }
            Health::Ready
        }
        "DaemonSet" => {
            if observed.is_none_or(|o| o < generation) {
                return stale("DaemonSet");
            }
            let want = int(obj, "/status/desiredNumberScheduled");
            let ready = int(obj, "/status/numberReady");
            if ready < want {
                return Health::Progressing(format!("{ready}/{want} pods ready"));
            }
            Health::Ready
        }
        "Job" => {
            if is_true(condition(obj, "Failed")) {
                return Health::Failed("job failed".into());
            }
            if is_true(condition(obj, "Complete")) {
                Health::Ready
            } else {
                Health::Progressing("job running".into())
            }
        }
        "PersistentVolumeClaim" => match obj.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => Health::Ready,
            Some("Lost") => Health::Failed("claim lost".into()),
            other => Health::Progressing(format!("phase {}", other.unwrap_or("unknown"))),
        },
        "CustomResourceDefinition" => {
            if is_true(condition(obj, "Established")) {
                Health::Ready
            } else {
                Health::Progressing("not established".into())
            }
        }
        _ => {
            if let Some(o) = observed
                && o < generation
            {
                return stale(kind);
            }
            match condition(obj, "Ready") {
                None => Health::Ready,
                Some(c) if is_true(Some(c)) => Health::Ready,
                Some(c) => Health::Progressing(
                    c.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("not ready")
                        .to_string(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let cases = [
            (json!({"kind": "ConfigMap"}), true),
            (
                json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}}),
                true,
            ),
            (
                json!({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}}),
                false,
            ),
            (
                json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 1}}),
                false,
            ),
            (
                json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}),
                true,
            ),
            (
                json!({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
                true,
            ),
            (
                json!({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
                false,
            ),
        ];
        for (obj, ready) in cases {
            assert_eq!(health(&obj) == Health::Ready, ready, "{obj}");
        }
        let stalled = json!({"kind": "Widget", "status": {"conditions": [{"type": "Stalled", "status": "True", "message": "bad"}]}});
        assert_eq!(health(&stalled), Health::Failed("bad".into()));
    }
}
