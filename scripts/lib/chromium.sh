# Chromium and its WebDriver for the dashboard's browser tests (the ui tier)
# and scripts/screenshots. Expects say() and die() to be defined.

# shellcheck source=apt_install.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt_install.sh"

has_chromium() {
    { command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } &&
        { command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ]; }
}

# install_chromium: Debian's chromium and chromium-driver packages.
install_chromium() {
    local otherwise="install chromium and chromium-driver (chromedriver) by hand"
    apt_install chromium "the dashboard's browser tests need it" "$otherwise"
    apt_install chromium-driver "the dashboard's browser tests drive chromium with it" "$otherwise"
    has_chromium || die "the chromium packages installed no chromium or chromedriver binary"
}
