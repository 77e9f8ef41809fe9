//! Fields another field manager owns and an apply would take over, read from the server's
//! conflict answer: a 409 whose causes each name one field and its manager.

use std::fmt;

use serde::Serialize;

/// One field an apply takes from another manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takeover {
    /// The field as the server spells it (`.data.allowedRegistries`,
    /// `.spec.template.spec.containers[name="web"].image`).
    pub field: String,
    /// The manager that loses it (`kubectl-edit`, `intruder`).
    pub manager: String,
    /// Set when the manager wrote through a subresource (`kubectl scale`: `scale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

impl fmt::Display for Takeover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` owned by `{}`", self.field, self.manager)?;
        if let Some(s) = &self.subresource {
            write!(f, " (through {s})")?;
        }
        f.write_str(", taken over")
    }
}

/// The fields of a server-side apply conflict; empty for any other answer.
pub fn from_status(status: &kube::core::Status) -> Vec<Takeover> {
    let Some(details) = &status.details else {
        return Vec::new();
    };
    details
        .causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| {
            let (manager, subresource) = manager_of(&c.message);
            Takeover {
                field: c.field.clone(),
                manager,
                subresource,
            }
        })
        .collect()
}

/// `conflict with "NAME"[ with subresource "SUB"][ using API/VERSION]` → (NAME, SUB). An
/// unexpected shape keeps the whole message as the manager, so nothing is lost.
fn manager_of(message: &str) -> (String, Option<String>) {
    let Some(rest) = message.strip_prefix("conflict with ") else {
        return (message.to_string(), None);
    };
    let Some((name, rest)) = quoted(rest) else {
        return (rest.to_string(), None);
    };
    let subresource = rest
        .strip_prefix(" with subresource ")
        .and_then(quoted)
        .map(|(s, _)| s);
    (name, subresource)
}

/// A Go `%q` string at the start of `s`, unescaped, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn conflict(causes: &[(&str, &str)]) -> Status {
        let causes: Vec<serde_json::Value> = causes
            .iter()
            .map(|(message, field)| {
                serde_json::json!({"reason": "FieldManagerConflict", "message": message, "field": field})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict", "message": "Apply failed",
            "details": {"causes": causes}
        }))
        .unwrap()
    }

    #[test]
    fn each_cause_names_a_field_and_its_manager() {
        let got = from_status(&conflict(&[
            (
                r#"conflict with "intruder" using v1"#,
                ".data.allowedRegistries",
            ),
            (
                r#"conflict with "kubectl" with subresource "scale" using apps/v1"#,
                ".spec.replicas",
            ),
        ]));
        assert_eq!(got[0].manager, "intruder");
        assert_eq!(got[0].subresource, None);
        assert_eq!(
            got[0].to_string(),
            "`.data.allowedRegistries` owned by `intruder`, taken over"
        );
        assert_eq!(
            (got[1].manager.as_str(), got[1].subresource.as_deref()),
            ("kubectl", Some("scale"))
        );
    }

    #[test]
    fn odd_messages_are_kept_whole() {
        let got = from_status(&conflict(&[
            (r#"conflict with "a\"b""#, ".x"),
            ("other", ".y"),
        ]));
        assert_eq!(got[0].manager, "a\"b");
        assert_eq!(got[1].manager, "other");
        assert!(from_status(&Status::failure("x", "Invalid")).is_empty());
    }
}
