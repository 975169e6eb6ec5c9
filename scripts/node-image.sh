#!/usr/bin/env bash
# Builds (once per Docker engine) the local stand-in for the Node.js base image the token issuer's
# Dockerfile names (issuer/Dockerfile, ARG NODE_IMAGE): Debian forky's nodejs package in a
# debootstrap root (scripts/broker-chroot.sh forky nodejs), imported and tagged with that very
# reference, so `docker build` of issuer/Dockerfile finds its base locally (nothing can be pulled
# here) and builds as written. Prints the reference.
#
#   DOCKER_HOST=unix://... scripts/node-image.sh
set -euo pipefail
cd "$(dirname "$0")"
log() { echo "node-image.sh: $*" >&2; }

image="$(sed -nE 's/^ARG NODE_IMAGE=(.+)$/\1/p' ../issuer/Dockerfile)"
[ -n "$image" ] || { log "no ARG NODE_IMAGE=... in issuer/Dockerfile"; exit 1; }
# The stand-in must run the major version the reference names (node:24-... -> Node.js 24).
want="$(sed -nE 's/^node:([0-9]+).*/\1/p' <<<"$image")"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
root="$(bash ./broker-chroot.sh forky nodejs)"
have="$(sed -E 's/^([0-9]+)\..*/\1/' "$root/.nodejs-version")"
[ "$have" = "$want" ] || { log "Debian forky has Node.js $(cat "$root/.nodejs-version"), not $want as $image says"; exit 1; }
log "importing the forky nodejs root as $image"
tar -C "$root" --one-file-system --numeric-owner \
  --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* --exclude=./tmp/* --exclude=./run/* \
  --exclude=./.complete --exclude=./.nodejs-version -c . |
  docker import --change 'CMD ["node"]' - "$image" >&2
echo "$image"
