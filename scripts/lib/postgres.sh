# Shared by scripts/test and scripts/dev: finding or installing PostgreSQL's
# server binaries. Expects say() and die() to be defined.

# shellcheck source=apt_install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"

has_server_binaries() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

install_server_binaries() {
    apt_install postgresql "PostgreSQL's server binaries, initdb and pg_ctl, are needed" "point the URL variable at a server"
    has_server_binaries || die "the postgresql package installed no initdb; point the URL variable at a server"
}

postgres_on_5432() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432 -t 3
    else
        timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null
    fi
}
