//! Ports on 127.0.0.1 for the local cluster: whether one is free, who holds
//! it when it is not, and a free one when the caller asked for any.

use std::net::{Ipv4Addr, TcpListener};

/// Whether nothing listens on `port` of 127.0.0.1 (binding it succeeds).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port free at the time of asking. Another program may take it before
/// it is used: callers retry on another when the bind then fails.
pub fn any_free() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| anyhow::anyhow!("cannot find a free TCP port on 127.0.0.1: {e}"))?;
    Ok(listener.local_addr()?.port())
}

/// What listens on `port`: `pid 123: nc -l 8080`, as far as this user may
/// see (`ss -ltnp`), else "an unknown process".
pub fn holder(port: u16) -> String {
    let output = std::process::Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut pids: Vec<u32> = text
        .split("pid=")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let found: Vec<String> = pids
        .iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            format!("pid {pid}: {}", cmdline.trim())
        })
        .collect();
    if found.is_empty() {
        "an unknown process (of another user, or `ss` cannot tell)".to_owned()
    } else {
        found.join(", ")
    }
}
