//! The local cluster's load balancer: nginx, found on the machine, with a
//! configuration of its own in the state directory (pid file, error log and
//! temp paths there, `daemon off` so that its master's pid is the one
//! recorded), never the system's nginx service or its files.
//!
//! Plain round robin, no sticky sessions: any node serves any request.
//! Long-polls are held open (read timeout well above the longest poll
//! wait). A request goes to the next node only when connecting failed or
//! (for idempotent methods) no answer came: a POST that reached a node is
//! never sent again to another, since it may have taken effect. Each answer
//! names the node that gave it in the `X-Tasker-Upstream` header
//! (`127.0.0.1:<port>`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::status::Failure;

const MISSING: &str = "nginx is not installed, and the local cluster's load balancer is nginx: \
    install it (Debian/Ubuntu: `apt-get install nginx`; scripts/test installs it when missing) \
    or put its binary on PATH";

/// The nginx binary: on `PATH`, else `/usr/sbin/nginx` (Debian's place,
/// often off a user's `PATH`).
pub fn find() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Failure::usage(MISSING))
}

/// The configuration for a balancer on `port` in front of `nodes`, keeping
/// its files in `dir` and logging to `log`.
pub fn config(dir: &Path, log: &Path, port: u16, nodes: &[u16], as_root: bool) -> String {
    let dir = dir.display();
    let log = log.display();
    let mut upstreams = String::new();
    for node in nodes {
        // A node that refuses connections is skipped for 2 s, then tried again.
        let _ = writeln!(
            upstreams,
            "        server 127.0.0.1:{node} max_fails=1 fail_timeout=2s;"
        );
    }
    // Run as root, nginx's workers would switch to `nobody`, who cannot
    // write the temp paths of a private state directory.
    let user = if as_root { "user root root;\n" } else { "" };
    format!(
        "# Written by `tasker cluster up` at every start: the local cluster's balancer.
{user}daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {log} notice;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # The nodes enforce their own body limit (server.max_body_bytes).
    client_max_body_size 0;
    client_body_buffer_size 1m;
    upstream tasker_nodes {{
        # Plain round robin: no sticky sessions.
{upstreams}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tasker_nodes;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_connect_timeout 2s;
            # Long-polls hold a request open for the poll wait.
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
            # Next node only when the connection failed or timed out; without
            # `non_idempotent`, a POST already sent is never sent again.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 0;
            proxy_buffering off;
            add_header X-Tasker-Upstream $upstream_addr always;
        }}
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_is_an_upstream_and_posts_are_not_retried() {
        let text = config(
            Path::new("/s/nginx"),
            Path::new("/s/logs/balancer.log"),
            8080,
            &[8081, 8082],
            false,
        );
        assert!(text.contains("server 127.0.0.1:8081 "));
        assert!(text.contains("server 127.0.0.1:8082 "));
        assert!(text.contains("listen 127.0.0.1:8080;"));
        assert!(text.contains("pid /s/nginx/nginx.pid;"));
        assert!(text.contains("proxy_next_upstream error timeout;"));
        assert!(!text.contains("non_idempotent;"));
        let balancing: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| {
                ["ip_hash", "hash ", "sticky", "least_conn"]
                    .iter()
                    .any(|d| line.starts_with(d))
            })
            .collect();
        assert!(balancing.is_empty(), "round robin only: {balancing:?}");
        assert!(!text.contains("user root"));
        assert!(config(Path::new("/s"), Path::new("/l"), 1, &[2], true).starts_with("# Written"));
        assert!(
            config(Path::new("/s"), Path::new("/l"), 1, &[2], true).contains("user root root;")
        );
    }
}
