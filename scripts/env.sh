# Sourced by every script: where the project's toolchain lives and which versions it pins.
# Caches live outside the checkout so a fresh clone reuses them.
TVD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TVD_CACHE="${PULUMI_TVD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tvd}"
TVD_NODE_VERSION=24.21.0
TVD_NODE_DIR="$TVD_CACHE/node-v$TVD_NODE_VERSION"

# The Pulumi CLI must match the @pulumi/pulumi version that package-lock.json pins.
TVD_PULUMI_VERSION="$(sed -n '/"node_modules\/@pulumi\/pulumi": {/,/}/s/^ *"version": "\(.*\)",$/\1/p' \
  "$TVD_ROOT/package-lock.json" | head -n1)"
TVD_PULUMI_DIR="$TVD_CACHE/pulumi-v$TVD_PULUMI_VERSION/bin"

# Node 20 is past end of life and too old for @pulumi/pulumi; use ours unless the machine's
# node is new enough.
tvd_node_ok() {
  local v
  v="$(node --version 2>/dev/null)" || return 1
  v="${v#v}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  ((major > 22 || (major == 22 && minor >= 12)))
}
if [[ -x "$TVD_NODE_DIR/bin/node" ]]; then
  PATH="$TVD_NODE_DIR/bin:$PATH"
fi
if [[ -x "$TVD_PULUMI_DIR/pulumi" ]]; then
  PATH="$TVD_PULUMI_DIR:$PATH"
fi
export PATH TVD_ROOT TVD_CACHE TVD_PULUMI_VERSION TVD_PULUMI_DIR
export PULUMI_SKIP_UPDATE_CHECK=true
