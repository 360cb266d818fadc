#!/usr/bin/env bash
# Installs the official MCP tools the end-to-end tests drive conductor with, from the npm
# registry, at pinned versions, into $1 (default .build/mcp-tools):
#   @modelcontextprotocol/inspector    its CLI mode (mcp-inspector --cli …) as a real client;
#                                      0.15.0 is the newest that runs on Node 20 (2.x needs >= 22.19)
#   @modelcontextprotocol/conformance  the official server conformance scenarios (needs Node >= 22,
#                                      so the tests run it under deno instead)
#   @modelcontextprotocol/sdk          pinned so both tools above share one known SDK version
#   @modelcontextprotocol/server-everything, server-memory, server-filesystem
#                                      reference upstream MCP servers that mcp/upstream's tests
#                                      connect to (stdio and streamable HTTP); the code-mode test
#                                      (typed bindings, search_tools) uses all three
# The inspector's own packages are pinned too, so its ^0.15.0 ranges cannot drift.
# Re-runs are offline: when every pinned package is already installed at its version, nothing
# is fetched. MCP_TOOLS_FORCE=1 reinstalls.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "${1:-$top/.build/mcp-tools}")

pins=(
  @modelcontextprotocol/inspector@0.15.0
  @modelcontextprotocol/inspector-cli@0.15.0
  @modelcontextprotocol/inspector-client@0.15.0
  @modelcontextprotocol/inspector-server@0.15.0
  @modelcontextprotocol/conformance@0.1.16
  @modelcontextprotocol/sdk@1.32.2
  @modelcontextprotocol/server-everything@2026.8.31
  @modelcontextprotocol/server-memory@2026.8.31
  @modelcontextprotocol/server-filesystem@2026.8.31
)

# installed NAME prints the version of NAME under $dir, or nothing.
installed() {
  local pj="$dir/node_modules/$1/package.json"
  [ -f "$pj" ] || return 0
  node -p 'require(process.argv[1]).version' "$pj" 2>/dev/null || true
}

command -v node >/dev/null || { echo "mcp-tools: node is required (apt-get install -y nodejs npm)" >&2; exit 1; }

missing=()
for pin in "${pins[@]}"; do
  name=${pin%@*} want=${pin##*@}
  have=$(installed "$name")
  [ "$have" = "$want" ] || missing+=("$name: have '${have:-none}', want $want")
done
if [ ${#missing[@]} -eq 0 ] && [ -z "${MCP_TOOLS_FORCE:-}" ]; then
  exit 0
fi

command -v npm >/dev/null || { echo "mcp-tools: npm is required (apt-get install -y npm)" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "mcp-tools: node $(node --version) is too old: the inspector CLI needs Node >= 18" >&2
  exit 1
fi

echo "mcp-tools: installing into $dir"
[ ${#missing[@]} -eq 0 ] || printf '  %s\n' "${missing[@]}"
mkdir -p "$dir"
# A package.json of its own keeps npm from walking up into the checkout.
[ -f "$dir/package.json" ] || printf '{\n  "name": "conductor-mcp-tools",\n  "private": true\n}\n' > "$dir/package.json"
# conformance declares engines node >= 22; it is run under deno, so the engines check is
# advisory here (npm only warns unless engine-strict is set).
# Few, short retries: without a registry, fail in about a minute rather than npm's default many.
npm install --prefix "$dir" --no-audit --no-fund --save-exact --engine-strict=false \
  --fetch-retries=1 --fetch-retry-maxtimeout=10000 --fetch-timeout=60000 \
  --loglevel=error "${pins[@]}" </dev/null

for pin in "${pins[@]}"; do
  name=${pin%@*} want=${pin##*@}
  have=$(installed "$name")
  if [ "$have" != "$want" ]; then
    echo "mcp-tools: $name is at '${have:-none}' after install, want $want" >&2
    exit 1
  fi
done
[ -x "$dir/node_modules/.bin/mcp-inspector" ] || { echo "mcp-tools: no mcp-inspector binary in $dir/node_modules/.bin" >&2; exit 1; }
echo "mcp-tools: ready in $dir"
