#!/usr/bin/env bash
# The quick start: on a fresh Debian 12 machine, as root, with no registry and no internet.
#
#   1. install what als needs (apt packages, npm ci) and build dist/als;
#   2. put the layers of the repo's small image (test/fixtures/hello: busybox in an OCI
#      layout) into a new store with `als pull oci:…`;
#   3. show podman taking every layer from the store: podman reads an additional layer store
#      only when it pulls from a registry (not for `podman pull oci:…`), so a throwaway
#      docker-registry on 127.0.0.1 serves the same image, and an isolated podman pulls it;
#   4. print the storage.conf line that points podman at the store.
#
# The store is kept (its path is printed); the registry and podman's scratch storage are not.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

say "Installing dependencies (apt packages, npm ci)"
bash scripts/install-deps.sh

say "Building dist/als"
# built beside and renamed over: an als already running from dist/als keeps working
mkdir -p dist
tmp_bin="dist/als.new.$$"
npx bun run build --outfile "$tmp_bin" >/dev/null
mv -f "$tmp_bin" dist/als
dist/als --version

work=$(mktemp -d /tmp/als-quickstart-XXXXXX)
store="$work/store"
image=test/fixtures/hello
registry_pid=""
podman_dir="$work/podman"
podman_cmd=()

cleanup() {
  if [ ${#podman_cmd[@]} -gt 0 ] && [ -f "$podman_dir/storage.conf" ]; then
    "${podman_cmd[@]}" image unmount --all --force >/dev/null 2>&1 || true
    "${podman_cmd[@]}" rmi --all --force >/dev/null 2>&1 || true
  fi
  if [ -d "$podman_dir" ]; then
    # podman may leave its storage's bind mounts behind: unmount below its dir, deepest first
    awk -v d="$podman_dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    rm -rf "$podman_dir"
  fi
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work/registry"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
registry_up() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /v2/ HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3 | grep -q 'HTTP/1') 2>/dev/null
}

demo=yes
[ "$(id -u)" = 0 ] || demo="no (it needs root: podman's overlay driver mounts layers)"
for tool in docker-registry skopeo podman; do have "$tool" || demo="no ($tool is not installed)"; done

if [ "$demo" = yes ]; then
  say "Starting a throwaway registry on 127.0.0.1 (podman reads the store when it pulls from a registry)"
  port=5000
  while ! port_free "$port"; do port=$((port + 1)); done
  mkdir -p "$work/registry"
  cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do registry_up "$port" && break; sleep 0.1; done
  registry_up "$port" || { cat "$work/registry/log" >&2; echo "the registry did not start" >&2; exit 1; }
  name="127.0.0.1:$port/als/hello:latest"
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$image:latest" "docker://$name"
  echo "the registry serves $name"
else
  say "Skipping the podman demo: $demo"
  name="localhost/als/hello:latest"
fi

say "Putting the image's layers in a store: als pull oci:$image:latest"
# --name: the name podman will pull the image as, which the layers are recorded under
dist/als pull "oci:$image:latest" --name "$name" --root "$store"

if [ "$demo" = yes ]; then
  say "podman pulls $name with the store as its additional layer store"
  mkdir -p "$podman_dir"
  cat >"$podman_dir/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$podman_dir/run"
graphroot = "$podman_dir/root"

[storage.options]
additionallayerstores = ["$store:ref"]
EOF
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$podman_dir/containers.conf"
  # an isolated podman: its own configuration files, storage and state, never the machine's.
  # graphroot and runroot come from that storage.conf, not from --root/--runroot: podman 4.3.1
  # given those flags ignores the file's additionallayerstores
  podman_cmd=(env CONTAINERS_STORAGE_CONF="$podman_dir/storage.conf" CONTAINERS_CONF="$podman_dir/containers.conf"
    podman --tmpdir "$podman_dir/tmp")
  "${podman_cmd[@]}" --log-level=debug pull --tls-verify=false "$name" >"$podman_dir/pull.log" 2>&1 ||
    { cat "$podman_dir/pull.log" >&2; exit 1; }
  skipped=$(grep -c 'Skipping blob sha256:.*(already present)' "$podman_dir/pull.log" || true)
  layers=$(grep -c '^Copying blob' "$podman_dir/pull.log" || true)
  echo "podman took $skipped of $layers layers from the store (\"Skipping blob … (already present)\"), downloading none of them"
  [ "$skipped" = "$layers" ] && [ "$layers" -gt 0 ] || { echo "expected every layer from the store" >&2; exit 1; }
  mnt=$("${podman_cmd[@]}" image mount "$name")
  echo "the image's /etc/motd, read through podman's overlay of the store's layers: $(cat "$mnt/etc/motd")"
  for f in "$podman_dir"/root/overlay/*/additionallayer; do [ -e "$f" ] && echo "  podman layer $(basename "$(dirname "$f")" | cut -c1-12) -> $(cat "$f")"; done
  "${podman_cmd[@]}" image unmount "$name" >/dev/null
fi

say "Is this machine ready for podman to use the store?"
dist/als doctor --root "$store" || true

cat <<EOF

==> Done. The store is $store

Point podman at it: add this to [storage.options] in /etc/containers/storage.conf
(a new file also needs [storage] driver = "overlay", runroot and graphroot):

    additionallayerstores = ["$store:ref"]

or per command:

    podman --storage-opt overlay.additionallayerstore=$store:ref pull IMAGE

Then, for images from your registries:

    dist/als pull --root $store docker.io/library/alpine:3.19
    podman --storage-opt overlay.additionallayerstore=$store:ref pull docker.io/library/alpine:3.19

and see what the store holds and what happened:

    dist/als ls --root $store
    dist/als log --root $store
EOF
