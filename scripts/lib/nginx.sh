# nginx for the cluster tests (`tasker cluster up` puts it in front of the
# nodes). Expects say() and die() to be defined.

has_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

# install_nginx: apt-get install nginx, as root or through sudo. The
# package's own service is not needed: the cluster runs its own nginx.
install_nginx() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "nginx is missing (the cluster tests need it) and sudo is not available: install the nginx package as root"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "nginx is missing (the cluster tests need it) and apt-get is not available: install nginx and put it on PATH"
    say "installing nginx for the cluster tests (apt-get install nginx)"
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
        die "could not install the nginx package; install it by hand (the cluster tests need it)"
    has_nginx || die "the nginx package installed no nginx binary"
}
