#!/usr/bin/env bash
# Builds (once per Docker engine) the local stand-in for the official
# `rabbitmq:<version>-management` image from a Debian root with Debian's RabbitMQ package
# (scripts/broker-chroot.sh): `docker import` of the root, then scripts/broker-image/Dockerfile.
# Prints the image's name, rabbitmq-mqtt-test/rabbitmq:<version>-management.
#
#   DOCKER_HOST=unix://... scripts/broker-image.sh bookworm|trixie|forky
#
# No registry is reachable here, so nothing is pulled: the base is the imported root.
set -euo pipefail
cd "$(dirname "$0")"

suite="${1:?usage: broker-image.sh <bookworm|trixie|forky>}"
log() { echo "broker-image.sh: $*" >&2; }

root="$(bash ./broker-chroot.sh "$suite")"
# Debian's version is e.g. 4.3.6-1: the image is named after the upstream release.
version="$(sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/' "$root/.rabbitmq-version")"
image="rabbitmq-mqtt-test/rabbitmq:${version}-management"
base="rabbitmq-mqtt-test/debian-root:${suite}-${version}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  log "importing the $suite root as $base"
  # The root may be in use by chroot nodes: leave out mounts and the nodes' work directories.
  tar -C "$root" --one-file-system --numeric-owner \
    --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* --exclude=./tmp/* --exclude=./run/* \
    --exclude=./.complete --exclude=./.rabbitmq-version -c . | docker import - "$base" >&2
fi
log "building $image"
docker build --quiet --build-arg "BASE=$base" -t "$image" broker-image >&2
echo "$image"
