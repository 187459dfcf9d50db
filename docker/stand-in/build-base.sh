#!/usr/bin/env bash
# Builds, offline from any image registry, a local stand-in for the base image the Dockerfile
# names (ARG NODE_IMAGE, node:24-bookworm-slim): a minimal Debian bookworm made with debootstrap from the Debian
# mirror apt already uses, plus this machine's own Node binary and npm, laid out like the
# official image (/usr/local/bin/node, user `node` uid 1000). It also tags the bare Debian as
# debian:bookworm-slim for the stunnel image of docker-compose.real.yml.
#
# An image already present under either name is left alone (a real pulled one wins). The
# debootstrap root file system is cached as a tarball in .artifacts/docker/ (git-ignored) so a
# second machine state (docker's storage wiped) costs an import, not a debootstrap.
#
# Usage: docker/stand-in/build-base.sh [--force]     (as root; needs docker, debootstrap)
#   --force rebuilds both images from the cached tarball (delete it to debootstrap again).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The name the Dockerfile builds FROM (its ARG NODE_IMAGE default), so the two cannot drift.
NODE_IMAGE=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)
[ -n "$NODE_IMAGE" ] || { echo 'build-base: no ARG NODE_IMAGE=... in Dockerfile' >&2; exit 1; }
DEBIAN_IMAGE=debian:bookworm-slim
MINBASE_IMAGE=edgestack/debian-bookworm-minbase:local
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=.artifacts/docker
TARBALL=$CACHE/debian-bookworm-minbase.tar
FORCE=${1:-}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
log() { printf 'build-base: %s\n' "$*" >&2; }

if [ "$FORCE" != --force ] && have_image "$NODE_IMAGE" && have_image "$DEBIAN_IMAGE"; then
  log "$NODE_IMAGE and $DEBIAN_IMAGE already present"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm (minbase) from $MIRROR into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # Same trimming as the official slim images: no apt lists, no docs, no caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  # The real debian images point apt at the mirror; debootstrap leaves only the main suite.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" >"$rootfs/etc/apt/sources.list"
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$rootfs"
  trap - EXIT
fi

log "importing $TARBALL as $MINBASE_IMAGE"
docker import --change 'CMD ["bash"]' "$TARBALL" "$MINBASE_IMAGE" >/dev/null
if [ "$FORCE" = --force ] || ! have_image "$DEBIAN_IMAGE"; then
  docker tag "$MINBASE_IMAGE" "$DEBIAN_IMAGE"
fi

if [ "$FORCE" = --force ] || ! have_image "$NODE_IMAGE"; then
  node_bin=$(command -v node)
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  node_version=$("$node_bin" --version)
  # node:24-... must hold Node 24: a different major here would make the tag a lie.
  tag_major=$(printf '%s' "$NODE_IMAGE" | sed -n 's/^node:\([0-9]*\).*/\1/p')
  node_major=$(printf '%s' "$node_version" | sed 's/^v\([0-9]*\).*/\1/')
  if [ -n "$tag_major" ] && [ "$tag_major" != "$node_major" ]; then
    log "this machine's node is $node_version, but the Dockerfile names $NODE_IMAGE: install Node $tag_major"
    exit 1
  fi
  ctx=$(mktemp -d "$CACHE/context.XXXXXX")
  trap 'rm -rf "$ctx"' EXIT
  cp "$node_bin" "$ctx/node"
  cp -a "$npm_dir" "$ctx/npm"
  cp docker/stand-in/node.Dockerfile "$ctx/Dockerfile"
  # This machine's npm reaches the registry with its own settings (on sandboxed machines a
  # cafile for the egress proxy's CA, or NODE_EXTRA_CA_CERTS); the stand-in's npm gets the same
  # ones as npm resolves them (whichever npmrc they come from), at the place npm looks for a
  # /usr/local prefix.
  mkdir -p "$ctx/etc"
  : >"$ctx/etc/npmrc"
  for key in registry cafile strict-ssl proxy https-proxy noproxy; do
    value=$(npm config get "$key" 2>/dev/null || true)
    case "$value" in '' | null | undefined) continue ;; esac
    [ "$key" = registry ] && [ "$value" = https://registry.npmjs.org/ ] && continue
    [ "$key" = strict-ssl ] && [ "$value" = true ] && continue
    printf '%s=%s\n' "$key" "$value" >>"$ctx/etc/npmrc"
  done
  cafile=$(sed -n 's/^cafile=//p' "$ctx/etc/npmrc" | tail -1)
  if [ -z "$cafile" ] && [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cafile=$NODE_EXTRA_CA_CERTS
    echo "cafile=$cafile" >>"$ctx/etc/npmrc"
  fi
  if [ -n "$cafile" ]; then
    cp "$cafile" "$ctx/etc/npm-ca.crt"
    sed -i 's|^cafile=.*|cafile=/usr/local/etc/npm-ca.crt|' "$ctx/etc/npmrc"
  else
    : >"$ctx/etc/npm-ca.crt"
  fi
  log "building $NODE_IMAGE from $MINBASE_IMAGE + node $node_version ($node_bin) + npm ($npm_dir)"
  docker build --quiet --build-arg "BASE=$MINBASE_IMAGE" --build-arg "NODE_VERSION=${node_version#v}" \
    -t "$NODE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  trap - EXIT
fi
log "ready: $NODE_IMAGE, $DEBIAN_IMAGE"
