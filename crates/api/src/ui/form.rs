//! `application/x-www-form-urlencoded` bodies and cookie values. The
//! dashboard's bulk forms repeat a key (one `step` per ticked row), which
//! the serde-based extractors do not take, so forms are read as pairs.

/// The pairs of a form body, decoded, in order.
pub fn parse(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut halves = part.splitn(2, |b| *b == b'=');
            let key = decode(halves.next().unwrap_or_default());
            let value = decode(halves.next().unwrap_or_default());
            (key, value)
        })
        .collect()
}

/// The first value of `key`.
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key`.
pub fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Percent-decoding with `+` as a space; invalid escapes are kept as
/// they are, invalid UTF-8 is replaced.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` percent-encoded so that it is a valid cookie value.
pub fn encode_cookie(text: &str) -> String {
    super::html::url_part(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_escapes() {
        let pairs = parse(b"step=a&step=b&csrf=x%2By&note=two+words&bad=%zz&tail=%4");
        assert_eq!(all(&pairs, "step"), ["a", "b"]);
        assert_eq!(first(&pairs, "csrf"), Some("x+y"));
        assert_eq!(first(&pairs, "note"), Some("two words"));
        assert_eq!(first(&pairs, "bad"), Some("%zz"));
        assert_eq!(first(&pairs, "tail"), Some("%4"));
        assert_eq!(first(&pairs, "none"), None);
    }

    #[test]
    fn cookie_values_round_trip() {
        let token = "a;b,c d=e%";
        assert_eq!(decode(encode_cookie(token).as_bytes()), token);
    }
}
