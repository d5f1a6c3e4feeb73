//! Protocol limits on free text a request may carry: what one request may
//! cost is bounded by the protocol, not by whatever a client sends. A cancel
//! reason is copied into the transition of every step it cancels, and a
//! failure message into the step and its history, so both are bounded.
//! Declared once here: the server refuses longer text with 422 naming the
//! field, and the SDK shortens what it sends to fit.

/// Longest worker id, in bytes of UTF-8 (at least 1): at registration,
/// in a poll and in a completion's `next`.
pub const MAX_WORKER_ID_LEN: usize = 128;

/// Longest `error_type` of a failure, in bytes of UTF-8 (at least 1).
pub const MAX_ERROR_TYPE_LEN: usize = 128;

/// Longest `message` of a failure, in bytes of UTF-8.
pub const MAX_ERROR_MESSAGE_LEN: usize = 4096;

/// Longest `reason` of a cancellation, in bytes of UTF-8.
pub const MAX_CANCEL_REASON_LEN: usize = 1024;

/// Transitions in one page of a task's history when the request names no
/// `limit`.
pub const DEFAULT_HISTORY_PAGE: u32 = 200;

/// Most transitions one page of a task's history may hold; a larger
/// `limit` is refused.
pub const MAX_HISTORY_PAGE: u32 = 1000;

/// `text` cut to at most `max` bytes on a character boundary.
pub fn truncate_to(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_to("abc", 10), "abc");
        assert_eq!(truncate_to("abc", 2), "ab");
        // "é" is two bytes: cutting inside it drops it whole.
        assert_eq!(truncate_to("aé", 2), "a");
        assert_eq!(truncate_to("", 0), "");
    }
}
