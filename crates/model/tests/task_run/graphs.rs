//! Templates the tests run, written as YAML like any user's.

/// A template whose steps share one retry policy: `max_attempts`, backoff
/// 10s doubling up to 1m with no jitter (so delays are exact), and `timeout`.
pub fn template(steps: &[(&str, &[&str])], max_attempts: u32, timeout: &str) -> String {
    let mut yaml = String::from("namespace: tests\nname: graph\nversion: \"1\"\nsteps:\n");
    for (name, depends_on) in steps {
        yaml.push_str(&format!(
            "  - name: {name}\n    handler: tests.{name}\n    depends_on: [{}]\n    timeout: {timeout}\n    retry:\n      max_attempts: {max_attempts}\n      backoff: {{ initial: 10s, max: 1m, multiplier: 2, jitter: 0 }}\n",
            depends_on.join(", ")
        ));
    }
    yaml
}

/// a → b, c → d.
pub fn diamond(max_attempts: u32) -> String {
    template(
        &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])],
        max_attempts,
        "5m",
    )
}

/// a → b.
pub fn pair(max_attempts: u32) -> String {
    template(&[("a", &[]), ("b", &["a"])], max_attempts, "5m")
}

/// A single step with the given timeout.
pub fn single(max_attempts: u32, timeout: &str) -> String {
    template(&[("a", &[])], max_attempts, timeout)
}
