//! Refuses text PostgreSQL cannot store: a NUL character (`\u0000`) in any
//! string of a request (a JSON body, a path or query parameter). Neither
//! `text` nor `jsonb` can hold one, so without this check the database would
//! refuse the write and the client would see a 500 it might retry forever.
//! The refusal is 400 `invalid` naming where the NUL is, as a JSON path
//! (`context.customer.name`, `tags[0]`).

use serde_json::Value;

use crate::error::ApiError;

/// Whether a raw JSON body may contain an escaped NUL. A JSON string cannot
/// hold a raw NUL byte (control characters must be escaped), so a body
/// without the text `u0000` after a backslash has none: the common case costs
/// one scan of the bytes and no second parse.
pub fn may_hold_nul(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].iter().all(|&b| b == b'0'))
}

/// The refusal for a NUL at `field`.
pub fn nul_error(field: &str) -> ApiError {
    tasker_engine::nul_check::nul_error(field).into()
}

/// Refuses a JSON body holding a NUL anywhere.
pub fn check_body(bytes: &[u8]) -> Result<(), ApiError> {
    if !may_hold_nul(bytes) {
        return Ok(());
    }
    // Malformed JSON is reported by the typed parse that follows.
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match tasker_engine::nul_check::nul_path(&value, "") {
        Some(path) => Err(nul_error(&path)),
        None => Ok(()),
    }
}

/// Refuses a path or query parameter holding a NUL.
pub fn check_param(name: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(nul_error(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_byte_scan_finds_escapes_only() {
        assert!(may_hold_nul(br#"{"a":"\u0000"}"#));
        assert!(!may_hold_nul(br#"{"a":"u0000 \u0001"}"#));
        // An escaped backslash followed by `u0000` is text, not a NUL: the
        // scan may say yes, the walk then finds nothing.
        assert!(check_body(br#"{"a":"\\u0000"}"#).is_ok());
        let error = check_body(br#"{"idempotency_key":"k\u0000"}"#).unwrap_err();
        assert_eq!(error.status_code(), 400);
        assert_eq!(error.code(), "invalid");
        assert_eq!(error.details()["field"], "idempotency_key");
    }
}
