//! The content hash kustomize appends to generated ConfigMap and Secret names.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Go's `encoding/json` text for a value: sorted keys, no spaces, and `<`, `>`, `&`,
/// U+2028 and U+2029 escaped as `\u00XX`.
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The 10-character suffix for a generated ConfigMap or Secret (its data, kind and type;
/// kustomize v5.5.0 hashes an empty name).
pub fn suffix(obj: &Map<String, Value>) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut m = Map::new();
    m.insert("kind".into(), Value::String(kind.to_string()));
    m.insert("name".into(), Value::String(String::new()));
    m.insert(
        "data".into(),
        obj.get("data")
            .cloned()
            .unwrap_or(Value::Object(Map::new())),
    );
    let non_empty = |key: &str| {
        obj.get(key)
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
            .cloned()
    };
    if kind == "Secret" {
        m.insert(
            "type".into(),
            obj.get("type")
                .cloned()
                .unwrap_or(Value::String(String::new())),
        );
        if let Some(sd) = non_empty("stringData") {
            m.insert("stringData".into(), sd);
        }
    } else if let Some(bd) = non_empty("binaryData") {
        m.insert("binaryData".into(), bd);
    }
    let digest = Sha256::digest(go_json(&Value::Object(m)).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escapes_like_go() {
        let v = json!({"b": "<a&b>\n\u{2028}", "a": [1, true, null]});
        assert_eq!(
            go_json(&v),
            r#"{"a":[1,true,null],"b":"\u003ca\u0026b\u003e\n\u2028"}"#
        );
    }
}
