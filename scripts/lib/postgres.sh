# Shared by scripts/test and scripts/dev: finding or installing PostgreSQL's
# server binaries. Expects say() and die() to be defined.

has_server_binaries() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

install_server_binaries() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "PostgreSQL server binaries are missing and sudo is not available: install the postgresql package as root, or point the URL variable at a server"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL server binaries (initdb, pg_ctl) are missing and apt-get is not available: install PostgreSQL's server, or point the URL variable at a server"
    say "installing PostgreSQL server binaries (apt-get install postgresql)"
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null ||
        die "could not install the postgresql package; install it by hand, or point the URL variable at a server"
    has_server_binaries || die "the postgresql package installed no initdb; point the URL variable at a server"
}

postgres_on_5432() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432 -t 3
    else
        timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null
    fi
}
