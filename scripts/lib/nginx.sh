# nginx for the cluster tests (`tasker cluster up` puts it in front of the
# nodes). Expects say() and die() to be defined.

# shellcheck source=apt_install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"

has_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

# install_nginx: the Debian package. Its own service is not needed: the
# cluster runs its own nginx.
install_nginx() {
    apt_install nginx "the cluster tests need it" "install nginx and put it on PATH"
    has_nginx || die "the nginx package installed no nginx binary"
}
