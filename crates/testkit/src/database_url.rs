//! Pointing a PostgreSQL URL at another database on the same server, so that
//! one admin URL yields the URL of every per-test database.

/// `url` with its database (the path) replaced by `database`; scheme,
/// credentials, host, port and query parameters are kept as they are.
///
/// `database` is one of this crate's own names (`[a-z0-9_]`), so it needs no
/// percent-encoding.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..authority_end])
}

/// `url` with its password, if any, replaced by `***`, for error messages.
pub(crate) fn redacted(url: &str) -> String {
    let Some(authority_start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let Some((user, _password)) = credentials.split_once(':') else {
        return url.to_owned();
    };
    format!(
        "{}{user}:***@{host}{}",
        &url[..authority_start],
        &url[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::{redacted, with_database};

    #[test]
    fn hides_the_password() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redacted("postgres:///db?host=/run"),
            "postgres:///db?host=/run"
        );
    }

    #[test]
    fn replaces_the_database_and_keeps_the_rest() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database(
                "postgresql://u:p%2F@db.local/app?sslmode=disable&application_name=x",
                "t1"
            ),
            "postgresql://u:p%2F@db.local/t1?sslmode=disable&application_name=x"
        );
    }

    #[test]
    fn adds_a_database_to_a_url_without_one() {
        assert_eq!(
            with_database("postgres://postgres@localhost:5433", "t1"),
            "postgres://postgres@localhost:5433/t1"
        );
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "t1"),
            "postgres://h/t1?sslmode=disable"
        );
    }

    #[test]
    fn keeps_an_empty_host_with_a_socket_directory_parameter() {
        assert_eq!(
            with_database("postgres:///postgres?host=/var/run/postgresql", "t1"),
            "postgres:///t1?host=/var/run/postgresql"
        );
    }
}
