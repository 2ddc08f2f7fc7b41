# Sourced by every set-up, build and test script in pkg-scripts/ (never run on its own):
#
#   source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"
#   step "installing wasm-bindgen-cli 0.2.100 (a source build: 3 to 5 minutes)" \
#       "check that crates.io is reachable, then run this script again"
#
# Under `set -e` a failing command ends a script with no word of why: a probe such as
# `have="$(wasm-bindgen --version | awk ...)"` once did so on every fresh machine, before the
# install it guarded. Here every failure that ends a script prints the step it was part of, the
# command, its exit status and where it is, and what a person can do; `step` also says when a
# step starts, so a long one does not look like a hang. Probes belong in `if` conditions or
# behind `||`, where a failure is an answer rather than the end of the script.

set -Eeuo pipefail

_step_script="$(basename "$0" .sh)"
_step_name="starting"
_step_hint=""
# The shell level the script itself runs at: a failure inside a command substitution or a
# subshell is reported once, by the command that ran it, not again from inside.
_step_level="$BASH_SUBSHELL"

# step DESCRIPTION [HINT]: what the script does from here on, printed to stderr (stdout may be
# a value the caller reads), and what to do if it fails.
step() {
    _step_name="$1"
    _step_hint="${2:-}"
    echo "$_step_script: $_step_name" >&2
}

_step_failed() {
    local status="$1" command="$2" where="$3" args="$4"
    [ "$BASH_SUBSHELL" = "$_step_level" ] || return 0
    # Inside a helper such as as_root the command reads `"$@"`: show what it stood for.
    command="${command//\"\$@\"/$args}"
    trap - ERR
    {
        echo "$_step_script: FAILED while $_step_name"
        echo "  command: $command"
        echo "  exit status $status, at $where"
        echo "  what to do: ${_step_hint:-read the output of the command above; run this script again once it is fixed (every step checks first and skips what is done)}"
    } >&2
}
trap '_step_failed "$?" "$BASH_COMMAND" "${BASH_SOURCE[0]#"$PWD/"}:$LINENO" "$*"' ERR

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install [APT-OPTION...] PACKAGE...: Debian packages, quietly, with the package lists
# refreshed first.
apt_install() {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
