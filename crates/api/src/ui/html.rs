//! HTML building blocks of the dashboard: escaping, the page frame with its
//! navigation, and the small formats every page shares (times, durations,
//! state badges, JSON).
//!
//! Every piece of user data (task context, tags, step results and errors,
//! names) goes through [`esc`] before it reaches a page; nothing here may
//! put text into markup any other way.

use std::fmt::Write;

use tasker_model::Timestamp;

use super::session::Viewer;

/// `text` safe to put in HTML text and in double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Server-sent events cannot carry a carriage return.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded for a URL path segment or query value.
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Which entry of the navigation is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Tasks,
    Templates,
    DeadLetters,
    Schedules,
    None,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Overview, "/ui", "Overview"),
    (Nav::Tasks, "/ui/tasks", "Tasks"),
    (Nav::Templates, "/ui/templates", "Templates"),
    (Nav::DeadLetters, "/ui/dead-letters", "Dead letters"),
    (Nav::Schedules, "/ui/schedules", "Schedules"),
];

/// A whole page: head, navigation, `body` (already HTML) and the script.
pub fn page(title: &str, nav: Nav, viewer: Option<&Viewer>, body: &str) -> String {
    let mut links = String::new();
    for (entry, href, label) in NAV {
        let current = if entry == nav {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(links, "<li><a href=\"{href}\"{current}>{label}</a></li>");
    }
    let session = match viewer {
        Some(viewer) if viewer.auth_enabled => format!(
            "<form method=\"post\" action=\"/ui/logout\" class=\"logout\">{}\
             <span class=\"role\">{}</span> <button type=\"submit\">Log out</button></form>",
            viewer.csrf_field(),
            esc(viewer.role_label())
        ),
        Some(viewer) => format!("<span class=\"role\">{}</span>", esc(viewer.role_label())),
        None => String::new(),
    };
    let nav_html = if viewer.is_some() {
        format!("<nav aria-label=\"Main\"><ul>{links}</ul></nav>")
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Tasker</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/ui.css\">\
         <script src=\"/ui/assets/ui.js\" defer></script></head>\
         <body><header class=\"top\"><a class=\"brand\" href=\"/ui\">Tasker</a>{nav_html}{session}</header>\
         <main id=\"main\">{body}</main></body></html>",
        title = esc(title),
    )
}

/// A time as `2026-11-30 14:05:09 UTC`, in a `<time>` element.
pub fn time(at: Timestamp) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339(),
        at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// An optional time, or a dash.
pub fn time_or_dash(at: Option<Timestamp>) -> String {
    at.map(time).unwrap_or_else(|| "–".into())
}

/// A duration in the largest sensible unit: `850 ms`, `12.4 s`, `3 m 05 s`,
/// `2 h 01 m`.
pub fn duration(d: chrono::TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A state as a coloured badge (`state-<name>` in the stylesheet).
pub fn badge(state: &str) -> String {
    let state = esc(state);
    format!("<span class=\"badge state-{state}\">{state}</span>")
}

/// JSON, pretty-printed and escaped, in a `<pre>`.
pub fn json_block(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("<pre class=\"json\">{}</pre>", esc(&text))
}

/// A table with `headers` and pre-rendered `rows` (each a `<tr>`), or
/// `empty` as a paragraph when there are none.
pub fn table(caption: &str, headers: &[&str], rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let mut out = format!(
        "<div class=\"table-wrap\"><table><caption class=\"visually-hidden\">{}</caption><thead><tr>",
        esc(caption)
    );
    for header in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str(row);
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>\r"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;&#13;"
        );
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_part("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(url_part("orders_2-x.y~"), "orders_2-x.y~");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(chrono::TimeDelta::milliseconds(850)), "850 ms");
        assert_eq!(duration(chrono::TimeDelta::milliseconds(12_400)), "12.4 s");
        assert_eq!(duration(chrono::TimeDelta::seconds(185)), "3 m 05 s");
        assert_eq!(duration(chrono::TimeDelta::seconds(7260)), "2 h 01 m");
        assert_eq!(duration(chrono::TimeDelta::milliseconds(-5)), "0 ms");
    }

    #[test]
    fn empty_tables_say_so() {
        assert_eq!(
            table("c", &["a"], &[], "none <yet>"),
            "<p class=\"empty\">none &lt;yet&gt;</p>"
        );
    }
}
