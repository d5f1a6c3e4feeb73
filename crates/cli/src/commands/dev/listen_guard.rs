//! The guard rail of `tasker dev` against exposing a server with auth off:
//! a listen address that other machines can reach needs auth on (with
//! tokens, which configuration validation already insists on).

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// Whether `listen` (`host:port`) only accepts connections from this
/// machine: a loopback IP address or `localhost`.
pub fn is_loopback(listen: &str) -> bool {
    if let Ok(address) = listen.parse::<SocketAddr>() {
        return address.ip().is_loopback();
    }
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a non-loopback `server.listen` while auth is off, saying what to
/// change.
pub fn check(config: &Config) -> Result<(), String> {
    let listen = &config.server.listen;
    if config.auth.enabled || is_loopback(listen) {
        return Ok(());
    }
    Err(format!(
        "tasker dev will not listen on {listen} with auth off: that address can be reached \
         from other machines, and anyone reaching it could run and cancel tasks. Listen on \
         loopback (--listen 127.0.0.1:8080, or server.listen), or turn auth on with tokens \
         (auth.enabled = true and auth.admin_tokens, e.g. TASKER_AUTH_ENABLED=true \
         TASKER_AUTH_ADMIN_TOKENS=<token>)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_told_apart_from_the_rest() {
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.2:0",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for exposed in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "example.com:8080",
            "host.local:0",
        ] {
            assert!(!is_loopback(exposed), "{exposed}");
        }
    }

    #[test]
    fn a_reachable_address_needs_auth() {
        let mut config = Config::default();
        config.auth.enabled = false;
        config.server.listen = "0.0.0.0:0".into();
        let message = check(&config).unwrap_err();
        assert!(message.contains("0.0.0.0:0"), "{message}");
        assert!(message.contains("--listen"), "{message}");
        assert!(message.contains("auth.enabled"), "{message}");

        config.auth.enabled = true;
        config.auth.admin_tokens = vec!["0123456789abcdef0123".into()];
        assert!(check(&config).is_ok());

        config.auth.enabled = false;
        config.server.listen = "127.0.0.1:0".into();
        assert!(check(&config).is_ok());
    }
}
