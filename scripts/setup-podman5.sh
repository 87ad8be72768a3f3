#!/usr/bin/env bash
# Idempotently build a Debian 13 (trixie) chroot holding podman 5 and skopeo, so that tests can
# drive a TOC-digest client (containers/image >= 5.31) on a Debian 12 host.
#
#   scripts/setup-podman5.sh [DIR]            (default DIR: /var/tmp/als-trixie)
#   scripts/setup-podman5.sh [DIR] --unmount  unmount everything below DIR (before deleting it:
#                                             test/lib binds the image cache into it, and an
#                                             rm -rf through that bind would delete the cache)
#
# The mirror is read from the host's apt sources; no host name is written here. When the chroot
# is complete, DIR/.als-podman5-ready holds the podman version; later runs only make sure the
# bind mounts (/proc, /sys, /dev) are in place.
set -euo pipefail

DIR="${1:-/var/tmp/als-trixie}"
DIR="${DIR%/}"
MARKER="$DIR/.als-podman5-ready"
START=$(date +%s)

log() { echo "[setup-podman5 +$(( $(date +%s) - START ))s] $*" >&2; }

# The first Debian archive URI of the host's apt configuration (deb822 or one-line style),
# skipping the security archive, which has no trixie main suite under the same path.
mirror_uri() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s !~ /security/ && u !~ /security/) { print u; exit } u=""; s="" ; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { s=$0 }
      END { if (u != "" && s !~ /security/ && u !~ /security/) print u }' "$f" | head -n1)
    if [ -n "$uri" ] && grep -qi debian <<<"$uri$(cat "$f")"; then echo "$uri"; return 0; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" \
      | grep -v security | grep -i debian | head -n1 || true)
    if [ -n "$uri" ]; then echo "$uri"; return 0; fi
  done
  return 1
}

is_mounted() { mountpoint -q "$1"; }

bind_mounts() {
  # containers/storage remounts / as rprivate before extracting a layer (and runc needs it too):
  # that fails with EINVAL unless the chroot's / is a mount point, so bind DIR onto itself first,
  # with the other mounts on top of it.
  if ! is_mounted "$DIR"; then
    for m in dev sys proc; do if is_mounted "$DIR/$m"; then umount -R "$DIR/$m"; fi; done
    mount --bind "$DIR" "$DIR"
  fi
  mkdir -p "$DIR/proc" "$DIR/sys" "$DIR/dev"
  is_mounted "$DIR/proc" || mount --bind /proc "$DIR/proc"
  is_mounted "$DIR/sys" || mount --rbind /sys "$DIR/sys"
  is_mounted "$DIR/dev" || mount --rbind /dev "$DIR/dev"
}

if [ "${2:-}" = "--unmount" ]; then
  if is_mounted "$DIR"; then umount -R "$DIR"; fi
  for m in $(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
  log "unmounted everything below $DIR"
  exit 0
fi

if [ -f "$MARKER" ]; then
  bind_mounts
  log "already set up: $(cat "$MARKER")"
  exit 0
fi

MIRROR="${ALS_DEBIAN_MIRROR:-$(mirror_uri || true)}"
if [ -z "$MIRROR" ]; then
  echo "setup-podman5: no Debian mirror found in /etc/apt/sources.list{,.d/*}; set ALS_DEBIAN_MIRROR" >&2
  exit 1
fi
log "mirror: $MIRROR"

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2; }
fi

# debootstrap leaves DIR/debootstrap behind when it did not finish: start that stage again.
if [ ! -x "$DIR/usr/bin/apt-get" ] || [ -d "$DIR/debootstrap" ]; then
  if [ -d "$DIR" ]; then
    if is_mounted "$DIR"; then umount -R "$DIR"; fi
    for m in dev sys proc; do if is_mounted "$DIR/$m"; then umount -R "$DIR/$m"; fi; done
    rm -rf --one-file-system "$DIR"
  fi
  log "debootstrap trixie"
  debootstrap --variant=minbase trixie "$DIR" "$MIRROR" >&2
fi

bind_mounts
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
# Services must not start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$DIR/usr/sbin/policy-rc.d"
chmod 755 "$DIR/usr/sbin/policy-rc.d"

log "apt-get install podman skopeo runc fuse-overlayfs"
chroot "$DIR" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update >&2
chroot "$DIR" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  podman skopeo runc fuse-overlayfs ca-certificates >&2
chroot "$DIR" apt-get clean

# Same sandbox limits as the host: no raising RLIMIT_NOFILE, no systemd.
mkdir -p "$DIR/etc/containers"
cat > "$DIR/etc/containers/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF

VERSION=$(chroot "$DIR" podman --version)
echo "$VERSION; skopeo $(chroot "$DIR" skopeo --version | awk '{print $3}')" > "$MARKER"
log "done: $(cat "$MARKER")"
