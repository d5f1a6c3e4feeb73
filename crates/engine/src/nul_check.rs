//! NUL characters (`\u0000`): neither PostgreSQL `text` nor `jsonb` can hold
//! one, so input holding one is refused as [`crate::Error::Invalid`] naming
//! where it is, before anything is written, instead of failing in the
//! database as an internal error.

use serde_json::Value;

/// The JSON path of the first string (value or object key) in `value` that
/// holds a NUL; `prefix` is the path of `value` itself ("" for a whole
/// document). Paths read like `context.customer.name` and `tags[0]`.
pub fn nul_path(value: &Value, prefix: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(prefix.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, &format!("{prefix}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if key.contains('\0') {
                return Some(path.replace('\0', "\\u0000"));
            }
            nul_path(item, &path)
        }),
        _ => None,
    }
}

/// The refusal of a NUL at `field`.
pub fn nul_error(field: &str) -> crate::Error {
    let field = if field.is_empty() { "body" } else { field };
    crate::Error::Invalid {
        field: field.to_owned(),
        message: "contains a NUL character (\\u0000), which cannot be stored; remove it".into(),
    }
}

/// Refuses `value` (found at `prefix`) when a string in it holds a NUL.
pub fn check_json(value: &Value, prefix: &str) -> crate::Result<()> {
    match nul_path(value, prefix) {
        Some(path) => Err(nul_error(&path)),
        None => Ok(()),
    }
}

/// Refuses the text `value` of `field` when it holds a NUL.
pub fn check_text(field: &str, value: &str) -> crate::Result<()> {
    if value.contains('\0') {
        return Err(nul_error(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_the_string() {
        let body = json!({"context": {"customer": {"name": "a\u{0}b"}}, "tags": ["ok"]});
        assert_eq!(
            nul_path(&body, "").as_deref(),
            Some("context.customer.name")
        );
        let tags = json!(["ok", "\u{0}"]);
        assert_eq!(nul_path(&tags, "tags").as_deref(), Some("tags[1]"));
        let body = json!({"result": {"k\u{0}": 1}});
        assert_eq!(nul_path(&body, "").as_deref(), Some("result.k\\u0000"));
        assert_eq!(nul_path(&json!({"a": ["x", {"b": 1}]}), ""), None);
        assert!(check_text("worker_id", "w\u{0}").is_err());
        assert!(check_text("worker_id", "w").is_ok());
    }
}
