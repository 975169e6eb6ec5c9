#!/usr/bin/env bash
# Builds (once) a Debian root file system holding one RabbitMQ release from Debian's archive, for the
# end-to-end broker matrix. Prints the root's path on stdout. Cached: a finished root is reused until
# its suite's name changes; delete the folder to rebuild.
#
#   scripts/broker-chroot.sh bookworm -> RabbitMQ 3.10.x (Debian 12; only for the Docker images,
#                                        the host's own package runs 3.10 in the chroot-free suites)
#   scripts/broker-chroot.sh trixie   -> RabbitMQ 4.0.x (Debian 13)
#   scripts/broker-chroot.sh forky    -> RabbitMQ 4.3.x (Debian forky/sid)
#   scripts/broker-chroot.sh forky nodejs -> Node.js from that suite instead (the base of the local
#                                        stand-in for the token issuer's node image, scripts/node-image.sh)
#
# Why a chroot and not a container: the suite must run where no Docker engine is started, and the
# node shares the host's loopback and epmd, so the harness reaches it on 127.0.0.1 like a host node.
# The same roots are the base of the local Docker images (scripts/broker-image.sh).
set -euo pipefail

suite="${1:?usage: broker-chroot.sh <bookworm|trixie|forky> [nodejs]}"
# What the root holds: rabbitmq-server (default) or nodejs; the root and its version file are named after it.
package="${2:-rabbitmq-server}"
case "$package" in
  rabbitmq-server) name="$suite"; versionFile=.rabbitmq-version ;;
  nodejs) name="$suite-nodejs"; versionFile=.nodejs-version ;;
  *) echo "broker-chroot.sh: unknown package '$package' (expected nodejs, or none for rabbitmq-server)" >&2; exit 2 ;;
esac
case "$suite" in
  bookworm | trixie) script="$suite" ;;
  # The host's debootstrap has no forky script; forky is sid's successor and bootstraps with sid's.
  forky) script=sid ;;
  *) echo "broker-chroot.sh: unknown suite '$suite' (expected bookworm, trixie or forky)" >&2; exit 2 ;;
esac

cache="${BROKER_CHROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rabbitmq-mqtt-provisioner/chroots}"
root="$cache/$name"
if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi

log() { echo "broker-chroot.sh: $*" >&2; }

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y debootstrap >&2
fi

# The mirror the host's apt already uses, read at run time (never written into the repository).
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
    /etc/apt/sources.list.d/debian.sources)"
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror="$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)"
fi
[ -n "$mirror" ] || { log "no Debian mirror found in the host's apt sources"; exit 1; }

mkdir -p "$cache"
# Concurrent callers (CI builds both suites at once) must not build the same root twice.
exec 9>"$cache/$name.lock"
flock 9
if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi

work="$cache/$name.building"
# A half-built root from an interrupted run may still have mounts under it.
for m in proc dev; do mountpoint -q "$work/$m" 2>/dev/null && umount -l "$work/$m"; done
rm -rf "$work"
log "debootstrap $suite ($package from Debian's archive); about 2 minutes"
debootstrap --variant=minbase --include="$package,ca-certificates" "$suite" "$work" "$mirror" \
  "/usr/share/debootstrap/scripts/$script" >"$cache/$name.debootstrap.log" 2>&1 || {
  log "debootstrap failed; last lines of $cache/$name.debootstrap.log:"
  tail -20 "$cache/$name.debootstrap.log" >&2
  exit 1
}
# Erlang cannot resolve localhost without it (epmd_error ... nxdomain).
cp /etc/hosts "$work/etc/hosts"
version="$(chroot "$work" dpkg-query -W -f '${Version}' "$package")"
echo "$version" >"$work/$versionFile"
touch "$work/.complete"
mv "$work" "$root"
log "$name ready: $package $version"
echo "$root"
