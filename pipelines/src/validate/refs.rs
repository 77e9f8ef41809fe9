//! `$(…)` variable references in Tekton strings, and name syntax rules.

/// Every `$(…)` expression in `text`, without the `$(` and `)`.
pub fn expressions(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// A reference to a param: the name as written (dots included) and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRef<'a> {
    /// `params.NAME…` without `params.` and without a trailing `[*]`/`[N]`.
    pub path: &'a str,
    /// Whether the name was written in brackets (`params["a.b"]`): then it is exact.
    pub bracketed: bool,
}

/// The param reference in one expression, if it is one.
pub fn param_ref(expression: &str) -> Option<ParamRef<'_>> {
    let expression = expression.trim();
    if let Some(rest) = expression.strip_prefix("params[") {
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &rest[1..];
        let end = inner.find(quote)?;
        return Some(ParamRef {
            path: &inner[..end],
            bracketed: true,
        });
    }
    let rest = expression.strip_prefix("params.")?;
    let path = match rest.find('[') {
        Some(i) => &rest[..i],
        None => rest,
    };
    Some(ParamRef {
        path,
        bracketed: false,
    })
}

/// A reference to a task result: `tasks.T.results.R…` (or `finally.T.results.R…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRef<'a> {
    /// `tasks` or `finally`.
    pub section: &'a str,
    /// The pipeline task.
    pub task: &'a str,
    /// The result (without `[*]` or an object key).
    pub result: &'a str,
}

/// The task result reference in one expression, if it is one.
pub fn result_ref(expression: &str) -> Option<ResultRef<'_>> {
    let expression = expression.trim();
    let (section, rest) = expression.split_once('.')?;
    if section != "tasks" && section != "finally" {
        return None;
    }
    let (task, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("results.")?;
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    Some(ResultRef {
        section,
        task,
        result: &rest[..end],
    })
}

/// The pipeline task whose execution status (`tasks.T.status` / `tasks.T.reason`) is read.
pub fn status_ref(expression: &str) -> Option<&str> {
    let rest = expression.trim().strip_prefix("tasks.")?;
    let (task, what) = rest.split_once('.')?;
    matches!(what, "status" | "reason").then_some(task)
}

/// The workspace named in `workspaces.W.path|bound|claim|volume`.
pub fn workspace_ref(expression: &str) -> Option<&str> {
    let rest = expression.trim().strip_prefix("workspaces.")?;
    rest.split_once('.').map(|(w, _)| w)
}

/// The result named in a task's `results.R.path`.
pub fn own_result_ref(expression: &str) -> Option<&str> {
    let rest = expression.trim().strip_prefix("results.")?;
    rest.split_once('.').map(|(r, _)| r)
}

/// A DNS-1123 label: at most 63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Tekton's param name syntax: `^[_a-zA-Z][_a-zA-Z0-9.-]*$` (no `.` for object params).
pub fn is_param_name(name: &str, object: bool) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric() || (c == '.' && !object))
}

/// Tekton's result name syntax: `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
pub fn is_result_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_expressions() {
        assert_eq!(
            expressions("echo $(params.a) and $(tasks.b.results.c[*]) $(unclosed"),
            vec!["params.a", "tasks.b.results.c[*]"]
        );
    }

    #[test]
    fn reads_param_references() {
        let cases = [
            ("params.a", "a", false),
            ("params.a[*]", "a", false),
            ("params.a[0]", "a", false),
            ("params.obj.key", "obj.key", false),
            ("params[\"a.b\"]", "a.b", true),
            ("params['a.b'][*]", "a.b", true),
        ];
        for (expr, path, bracketed) in cases {
            assert_eq!(
                param_ref(expr),
                Some(ParamRef { path, bracketed }),
                "{expr}"
            );
        }
        assert_eq!(param_ref("context.taskRun.name"), None);
    }

    #[test]
    fn reads_result_and_status_references() {
        let r = result_ref("tasks.build.results.digest").unwrap();
        assert_eq!((r.section, r.task, r.result), ("tasks", "build", "digest"));
        let r = result_ref("tasks.build.results.obj.key").unwrap();
        assert_eq!(r.result, "obj");
        let r = result_ref("tasks.build.results.list[*]").unwrap();
        assert_eq!(r.result, "list");
        assert_eq!(result_ref("tasks.build.status"), None);
        assert_eq!(status_ref("tasks.build.status"), Some("build"));
        assert_eq!(workspace_ref("workspaces.src.path"), Some("src"));
    }

    #[test]
    fn name_rules() {
        assert!(is_dns1123_label("build-and-test"));
        for bad in ["", "Build", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_param_name("_a.b-1", false));
        assert!(!is_param_name("a.b", true));
        assert!(!is_param_name("1a", false));
        assert!(is_result_name("image-digest_1.x"));
        assert!(!is_result_name("a-"));
    }
}
