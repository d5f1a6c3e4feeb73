# apt_install <package> <what needs it> <what to do instead>: installs a
# Debian package with apt-get, as root or through sudo, or dies saying what
# is missing, what needs it and what to do instead. Expects say() and die().
apt_install() {
    local package=$1 needed_by=$2 otherwise=$3
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "$package is missing ($needed_by) and sudo is not available: install the $package package as root, or $otherwise"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "$package is missing ($needed_by) and apt-get is not available: $otherwise"
    say "installing $package ($needed_by): apt-get install $package"
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
        die "could not install the $package package; install it by hand, or $otherwise"
}
