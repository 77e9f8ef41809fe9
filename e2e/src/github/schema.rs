//! A validator for the OpenAPI 3.0 schema subset GitHub's description uses: `$ref`, `type`,
//! `nullable`, `enum`, `properties`, `required`, `additionalProperties`, `items`,
//! `min/maxItems`, `uniqueItems`, `min/maxLength`, `pattern`, `minimum`/`maximum`,
//! `maxProperties`, `allOf`/`anyOf`/`oneOf`.
//!
//! `format` is not checked (GitHub's servers do not check `uri` strictly either), nor are
//! `readOnly`/`writeOnly`, which GitHub's description does not use on request bodies. A
//! `pattern` the `regex` crate cannot compile (an ECMAScript-only construct) is skipped.

use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;
use serde_json::Value;

/// How deep `$ref`s and combinators may nest before the validator gives up: deeper than any
/// request body in GitHub's description, shallow enough to stop a reference cycle.
const MAX_DEPTH: usize = 128;

/// One way a value does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Where in the value: a JSON pointer (`""` is the whole value, `/state`, `/labels/0`).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "(body)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Validates values against schemas of one OpenAPI document (the root `$ref`s point into).
pub struct Validator<'d> {
    document: &'d Value,
    patterns: Mutex<HashMap<String, Option<Regex>>>,
}

impl<'d> Validator<'d> {
    /// A validator resolving `#/…` references in `document`.
    pub fn new(document: &'d Value) -> Self {
        Self {
            document,
            patterns: Mutex::new(HashMap::new()),
        }
    }

    /// Every way `value` fails `schema` (empty when it matches).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<SchemaError> {
        let mut errors = Vec::new();
        self.check(schema, value, &mut String::new(), 0, &mut errors);
        errors
    }

    /// Follows `$ref` chains to the schema they name.
    pub fn resolve<'s>(&'s self, mut schema: &'s Value) -> Result<&'s Value, String> {
        for _ in 0..MAX_DEPTH {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => schema = resolve_ref(self.document, reference)?,
                None => return Ok(schema),
            }
        }
        Err("reference chain too long (a cycle?)".to_string())
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        pointer: &mut String,
        depth: usize,
        errors: &mut Vec<SchemaError>,
    ) {
        let mut fail = |message: String| {
            errors.push(SchemaError {
                pointer: pointer.clone(),
                message,
            })
        };
        if depth > MAX_DEPTH {
            fail("schema nests too deeply (a reference cycle?)".to_string());
            return;
        }
        let schema = match self.resolve(schema) {
            Ok(schema) => schema,
            Err(e) => {
                fail(format!("schema: {e}"));
                return;
            }
        };
        // `additionalProperties: true` and `{}` accept anything; `false` only as a property map.
        let Some(keywords) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                fail("no value is allowed here".to_string());
            }
            return;
        };

        // OpenAPI 3.0: `nullable: true` admits null whatever `type` and `enum` say. (3.0.3's
        // stricter reading, where an `enum` without null still refuses it, would reject
        // requests GitHub accepts: its description lists null in some nullable enums only.)
        if value.is_null() && keywords.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(expected) = keywords.get("type").and_then(Value::as_str)
            && !has_type(value, expected)
        {
            let what = if value.is_null() {
                "null (the schema is not nullable)".to_string()
            } else {
                type_name(value).to_string()
            };
            errors.push(SchemaError {
                pointer: pointer.clone(),
                message: format!("expected {expected}, found {what}"),
            });
            // The other keywords presuppose the type: more errors would only be noise.
            return;
        }
        if let Some(options) = keywords.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            errors.push(SchemaError {
                pointer: pointer.clone(),
                message: format!("{value} is not one of [{}]", list.join(", ")),
            });
        }
        match value {
            Value::String(text) => self.check_string(keywords, text, pointer, errors),
            Value::Number(number) => check_number(keywords, number, pointer, errors),
            Value::Array(items) => self.check_array(keywords, items, pointer, depth, errors),
            Value::Object(members) => self.check_object(keywords, members, pointer, depth, errors),
            Value::Null | Value::Bool(_) => {}
        }
        self.check_combinators(keywords, value, pointer, depth, errors);
    }

    fn check_string(
        &self,
        keywords: &serde_json::Map<String, Value>,
        text: &str,
        pointer: &str,
        errors: &mut Vec<SchemaError>,
    ) {
        // JSON Schema counts characters (code points), not bytes.
        let length = text.chars().count() as u64;
        if let Some(max) = keywords.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            errors.push(error(
                pointer,
                format!("{length} characters, at most {max} allowed"),
            ));
        }
        if let Some(min) = keywords.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            errors.push(error(
                pointer,
                format!("{length} characters, at least {min} required"),
            ));
        }
        if let Some(pattern) = keywords.get("pattern").and_then(Value::as_str)
            && let Some(regex) = self.pattern(pattern)
            && !regex.is_match(text)
        {
            errors.push(error(
                pointer,
                format!("{text:?} does not match /{pattern}/"),
            ));
        }
    }

    fn pattern(&self, pattern: &str) -> Option<Regex> {
        let mut cache = match self.patterns.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok())
            .clone()
    }

    fn check_array(
        &self,
        keywords: &serde_json::Map<String, Value>,
        items: &[Value],
        pointer: &mut String,
        depth: usize,
        errors: &mut Vec<SchemaError>,
    ) {
        let count = items.len() as u64;
        if let Some(max) = keywords.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            errors.push(error(
                pointer,
                format!("{count} items, at most {max} allowed"),
            ));
        }
        if let Some(min) = keywords.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            errors.push(error(
                pointer,
                format!("{count} items, at least {min} required"),
            ));
        }
        if keywords.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errors.push(error(pointer, format!("item {i} repeats an earlier item")));
                }
            }
        }
        if let Some(item_schema) = keywords.get("items") {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                self.check(item_schema, item, pointer, depth + 1, errors);
                pointer.truncate(len);
            }
        }
    }

    fn check_object(
        &self,
        keywords: &serde_json::Map<String, Value>,
        members: &serde_json::Map<String, Value>,
        pointer: &mut String,
        depth: usize,
        errors: &mut Vec<SchemaError>,
    ) {
        for name in keywords
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !members.contains_key(name) {
                errors.push(error(
                    pointer,
                    format!("required property {name:?} is missing"),
                ));
            }
        }
        if let Some(max) = keywords.get("maxProperties").and_then(Value::as_u64)
            && members.len() as u64 > max
        {
            errors.push(error(
                pointer,
                format!("{} properties, at most {max} allowed", members.len()),
            ));
        }
        let properties = keywords.get("properties").and_then(Value::as_object);
        let additional = keywords.get("additionalProperties");
        for (name, member) in members {
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            match properties.and_then(|p| p.get(name)) {
                Some(property) => self.check(property, member, pointer, depth + 1, errors),
                None => match additional {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        errors.push(error(
                            pointer,
                            format!("unknown property (allowed: {})", known.join(", ")),
                        ));
                    }
                    Some(schema @ Value::Object(_)) => {
                        self.check(schema, member, pointer, depth + 1, errors)
                    }
                    _ => {}
                },
            }
            pointer.truncate(len);
        }
    }

    fn check_combinators(
        &self,
        keywords: &serde_json::Map<String, Value>,
        value: &Value,
        pointer: &mut String,
        depth: usize,
        errors: &mut Vec<SchemaError>,
    ) {
        if let Some(all) = keywords.get("allOf").and_then(Value::as_array) {
            for schema in all {
                self.check(schema, value, pointer, depth + 1, errors);
            }
        }
        let branch_errors = |options: &[Value], errors_of: &mut Vec<Vec<SchemaError>>| {
            for schema in options {
                let mut branch = Vec::new();
                self.check(schema, value, &mut pointer.clone(), depth + 1, &mut branch);
                errors_of.push(branch);
            }
        };
        if let Some(any) = keywords.get("anyOf").and_then(Value::as_array) {
            let mut results = Vec::new();
            branch_errors(any, &mut results);
            if !results.iter().any(Vec::is_empty) {
                errors.push(error(pointer, no_branch_matches("anyOf", &results)));
            }
        }
        if let Some(one) = keywords.get("oneOf").and_then(Value::as_array) {
            let mut results = Vec::new();
            branch_errors(one, &mut results);
            let matching = results.iter().filter(|r| r.is_empty()).count();
            if matching == 0 {
                errors.push(error(pointer, no_branch_matches("oneOf", &results)));
            } else if matching > 1 {
                errors.push(error(
                    pointer,
                    format!("matches {matching} of the oneOf alternatives, exactly one allowed"),
                ));
            }
        }
    }
}

fn check_number(
    keywords: &serde_json::Map<String, Value>,
    number: &serde_json::Number,
    pointer: &str,
    errors: &mut Vec<SchemaError>,
) {
    let Some(n) = number.as_f64() else { return };
    if let Some(max) = keywords.get("maximum").and_then(Value::as_f64)
        && n > max
    {
        errors.push(error(
            pointer,
            format!("{number} is above the maximum {max}"),
        ));
    }
    if let Some(min) = keywords.get("minimum").and_then(Value::as_f64)
        && n < min
    {
        errors.push(error(
            pointer,
            format!("{number} is below the minimum {min}"),
        ));
    }
}

fn no_branch_matches(keyword: &str, results: &[Vec<SchemaError>]) -> String {
    let reasons: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(i, errs)| {
            let first = errs.first().map(ToString::to_string).unwrap_or_default();
            format!("#{i}: {first}")
        })
        .collect();
    format!(
        "matches none of the {keyword} alternatives ({})",
        reasons.join("; ")
    )
}

fn error(pointer: &str, message: String) -> SchemaError {
    SchemaError {
        pointer: pointer.to_string(),
        message,
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        // 1.0 is an integer in JSON Schema; serde_json keeps it as a float.
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        // A type this validator does not know: do not invent a failure.
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value a local reference (`#/components/schemas/x`) names in `document`.
pub fn resolve_ref<'d>(document: &'d Value, reference: &str) -> Result<&'d Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("only local references are supported, not {reference:?}"))?;
    document
        .pointer(pointer)
        .ok_or_else(|| format!("reference {reference:?} points at nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(document: &Value, schema: &Value, value: Value) -> Vec<String> {
        Validator::new(document)
            .validate(schema, &value)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn types_required_enum_and_nullable() {
        let doc = json!({});
        let schema = json!({
            "type": "object",
            "required": ["state"],
            "properties": {
                "state": {"type": "string", "enum": ["error", "failure", "pending", "success"]},
                "description": {"type": "string", "nullable": true},
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "flag": {"type": "boolean"}
            }
        });
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"state": "success"}), vec![]),
            (json!({"state": "success", "description": null}), vec![]),
            (
                json!({"state": "done"}),
                vec![r#"/state: "done" is not one of ["error", "failure", "pending", "success"]"#],
            ),
            (
                json!({}),
                vec![r#"(body): required property "state" is missing"#],
            ),
            (
                json!({"state": 1}),
                vec!["/state: expected string, found integer"],
            ),
            (
                json!({"state": null}),
                vec!["/state: expected string, found null (the schema is not nullable)"],
            ),
            (json!({"state": "error", "count": 1.0, "ratio": 1}), vec![]),
            (
                json!({"state": "error", "count": 1.5}),
                vec!["/count: expected integer, found number"],
            ),
            (
                json!({"state": "error", "flag": "yes"}),
                vec!["/flag: expected boolean, found string"],
            ),
            (json!("x"), vec!["(body): expected object, found string"]),
            // Unknown properties are allowed unless additionalProperties says otherwise.
            (json!({"state": "error", "extra": 1}), vec![]),
        ];
        for (value, expected) in cases {
            assert_eq!(errors(&doc, &schema, value.clone()), expected, "{value}");
        }
    }

    #[test]
    fn additional_properties_false_and_schema() {
        let doc = json!({});
        let closed =
            json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
        assert_eq!(errors(&doc, &closed, json!({"a": 1})), Vec::<String>::new());
        assert_eq!(
            errors(&doc, &closed, json!({"a": 1, "b/c": 2})),
            vec!["/b~1c: unknown property (allowed: a)"]
        );
        let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(errors(&doc, &map, json!({"x": "y"})), Vec::<String>::new());
        assert_eq!(
            errors(&doc, &map, json!({"x": 1})),
            vec!["/x: expected string, found integer"]
        );
    }

    #[test]
    fn lengths_counts_bounds_and_patterns() {
        let doc = json!({});
        let schema = json!({
            "type": "object",
            "maxProperties": 3,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 3},
                "tags": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": true,
                         "items": {"type": "string", "pattern": "^[a-z]+$"}},
                "n": {"type": "integer", "minimum": 1, "maximum": 10}
            }
        });
        assert!(
            errors(
                &doc,
                &schema,
                json!({"name": "ééé", "tags": ["a"], "n": 10})
            )
            .is_empty()
        );
        assert_eq!(
            errors(
                &doc,
                &schema,
                json!({"name": "abcd", "tags": ["A", "b", "b"], "n": 0})
            ),
            // Properties in name order (serde_json's maps are sorted).
            vec![
                "/n: 0 is below the minimum 1",
                "/name: 4 characters, at most 3 allowed",
                "/tags: 3 items, at most 2 allowed",
                "/tags: item 2 repeats an earlier item",
                r#"/tags/0: "A" does not match /^[a-z]+$/"#,
            ]
        );
        assert_eq!(
            errors(
                &doc,
                &schema,
                json!({"name": "", "tags": [], "n": 11, "x": 1})
            ),
            vec![
                "(body): 4 properties, at most 3 allowed",
                "/n: 11 is above the maximum 10",
                "/name: 0 characters, at least 1 required",
                "/tags: 0 items, at least 1 required",
            ]
        );
    }

    #[test]
    fn references_and_combinators() {
        let doc = json!({"components": {"schemas": {
            "label": {"type": "string", "maxLength": 2},
            "labels": {"type": "array", "items": {"$ref": "#/components/schemas/label"}},
            "loop": {"$ref": "#/components/schemas/loop"}
        }}});
        let schema = json!({"type": "object", "properties": {
            "labels": {"$ref": "#/components/schemas/labels"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "any": {"anyOf": [{"type": "string", "maxLength": 1}, {"type": "boolean"}]},
            "both": {"allOf": [{"type": "integer"}, {"minimum": 5}]},
            "ambiguous": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
            "loop": {"$ref": "#/components/schemas/loop"},
            "dangling": {"$ref": "#/components/schemas/nope"}
        }});
        assert!(
            errors(
                &doc,
                &schema,
                json!({"labels": ["ab"], "either": 1, "any": true, "both": 6, "ambiguous": 1.5})
            )
            .is_empty()
        );
        assert_eq!(
            errors(
                &doc,
                &schema,
                json!({"labels": ["abc"], "either": true, "any": "xy", "both": 4, "ambiguous": 2})
            ),
            vec![
                "/ambiguous: matches 2 of the oneOf alternatives, exactly one allowed",
                "/any: matches none of the anyOf alternatives (#0: /any: 2 characters, at most 1 allowed; #1: /any: expected boolean, found string)",
                "/both: 4 is below the minimum 5",
                "/either: matches none of the oneOf alternatives (#0: /either: expected string, found boolean; #1: /either: expected integer, found boolean)",
                "/labels/0: 3 characters, at most 2 allowed",
            ]
        );
        let loop_errors = errors(&doc, &schema, json!({"loop": 1}));
        assert_eq!(loop_errors.len(), 1);
        assert!(loop_errors[0].contains("cycle"), "{loop_errors:?}");
        assert_eq!(
            errors(&doc, &schema, json!({"dangling": 1})),
            vec![r##"/dangling: schema: reference "#/components/schemas/nope" points at nothing"##]
        );
    }

    #[test]
    fn nullable_without_type_and_null_in_combinators() {
        let doc = json!({});
        let schema = json!({"nullable": true, "oneOf": [{"type": "string"}, {"type": "integer"}]});
        assert!(errors(&doc, &schema, json!(null)).is_empty());
        let strict = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
        assert_eq!(errors(&doc, &strict, json!(null)).len(), 1);
        let nullable_enum = json!({"type": "string", "nullable": true, "enum": ["a"]});
        assert!(errors(&doc, &nullable_enum, json!(null)).is_empty());
        assert_eq!(
            errors(&doc, &nullable_enum, json!("b")),
            vec![r#"(body): "b" is not one of ["a"]"#]
        );
    }
}
