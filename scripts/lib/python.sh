# The python tier of scripts/test: the Python SDK (sdks/python) tested with
# pytest against the `tasker` binary already built in target/debug. Expects
# say() and die() to be defined.
#
# It needs python3 (3.9 or newer) with its venv module; on Debian and
# Ubuntu the python3-venv package, installed with apt-get when missing. The
# package and its test extras (pytest, psycopg) are installed from the
# Python package index into target/python-venv.

python_venv=target/python-venv

has_python_venv() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null
}

install_python_venv() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "python3 (3.9+) with venv is missing and sudo is not available: install python3 and python3-venv as root"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "python3 (3.9+) with its venv module is missing and apt-get is not available: install them by hand"
    say "installing python3 and python3-venv for the python tier (apt-get)"
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null ||
        die "could not install python3-venv; install it by hand (the python tier needs it)"
    has_python_venv || die "python3 3.9 or newer with venv is still missing"
}

# run_python_tier [pytest arguments]: a virtualenv with the SDK and its test
# extras, then pytest over sdks/python/tests.
run_python_tier() {
    [ -x target/debug/tasker ] || die "target/debug/tasker is missing: build it first (cargo build -p tasker-cli)"
    has_python_venv || install_python_venv
    if [ ! -x "$python_venv/bin/python" ]; then
        say "creating $python_venv"
        python3 -m venv "$python_venv" || die "could not create a virtualenv in $python_venv"
    fi
    "$python_venv/bin/python" -m pip install --quiet --disable-pip-version-check "./sdks/python[test]" ||
        die "could not install sdks/python with its test extras into $python_venv"
    TASKER_BIN="$PWD/target/debug/tasker" "$python_venv/bin/python" -m pytest sdks/python/tests -p no:cacheprovider "$@"
}
