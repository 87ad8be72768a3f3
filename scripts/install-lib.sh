# Shared by scripts/install.sh, scripts/uninstall.sh and scripts/package-deb.sh (sourced, not run).

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
# die STATUS MESSAGE
die() { local s=$1; shift; printf 'error: %s\n' "$*" >&2; exit "$s"; }

# check_prefix DIR: prints DIR without trailing slashes; refuses what is not a plain absolute path.
check_prefix() {
  local p=$1
  case "$p" in
    /*) ;;
    *) die 2 "the prefix must be an absolute path: $p" ;;
  esac
  case "$p" in *$'\n'*|*$'\t'*|*' '*) die 2 "the prefix must not contain spaces or newlines: $p" ;; esac
  case "/$p/" in */./*|*/../*) die 2 "the prefix must not contain . or .. components: $p" ;; esac
  while [ "${p%/}" != "$p" ] && [ "$p" != "/" ]; do p=${p%/}; done
  p=$(printf '%s' "$p" | tr -s /)
  [ "$p" != "/" ] || die 2 "the prefix / is refused: use /usr or /usr/local"
  printf '%s' "$p"
}

sha256() { sha256sum -- "$1" | cut -d' ' -f1; }

# als_version BIN: the version `BIN --version` prints ("0.1.0", or "als 0.1.0": its last word).
als_version() {
  local out v
  out=$(NO_COLOR=1 "$1" --version </dev/null) || return 1
  v=$(printf '%s\n' "$out" | head -n1 | awk '{ print $NF }')
  [[ "$v" =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || return 1
  printf '%s' "$v"
}

# stage_generated BIN STAGE REPO TARGET_BIN: writes STAGE/completion/{als.bash,_als,als.fish},
# STAGE/man/*.1 and STAGE/systemd/* (the repo's units, their Exec lines pointing at TARGET_BIN).
stage_generated() {
  local bin=$1 stage=$2 repo=$3 target=$4
  mkdir -p "$stage/completion" "$stage/man" "$stage/systemd"
  # the three completions at once, while the man pages are generated: each run is mostly startup
  local pids=() f
  NO_COLOR=1 "$bin" completion bash >"$stage/completion/als.bash" & pids+=($!)
  NO_COLOR=1 "$bin" completion zsh >"$stage/completion/_als" & pids+=($!)
  NO_COLOR=1 "$bin" completion fish >"$stage/completion/als.fish" & pids+=($!)

  # The man pages come from the help of the binary being installed. The compiled als is a Bun
  # runtime too (BUN_BE_BUN=1), so no separate bun is needed; else the repo's pinned bun.
  if ! BUN_BE_BUN=1 "$bin" "$repo/scripts/gen-man.ts" --als "$bin" --out "$stage/man" >/dev/null; then
    warn "the als binary could not run scripts/gen-man.ts; trying the repo's bun"
    (cd "$repo" && npx bun scripts/gen-man.ts --als "$bin" --out "$stage/man" >/dev/null) || die 1 "generating the man pages failed"
  fi
  [ -s "$stage/man/als.1" ] || die 1 "no man page was generated"

  for f in "${pids[@]}"; do wait "$f" || die 1 "\`als completion\` failed"; done
  for f in als.bash _als als.fish; do
    [ -s "$stage/completion/$f" ] || die 1 "\`als completion\` wrote nothing for $f"
    if grep -q $'\e' "$stage/completion/$f"; then die 1 "\`als completion\` wrote escape codes into $f"; fi
  done
  bash -n "$stage/completion/als.bash" || die 1 "the bash completion does not parse"
  head -n1 "$stage/completion/_als" | grep -q '^#compdef als' || die 1 "the zsh completion does not start with #compdef als"

  # The systemd units (written by the serve work under contrib/systemd/), when there are some.
  local unit
  for unit in "$repo"/contrib/systemd/*.service "$repo"/contrib/systemd/*.socket "$repo"/contrib/systemd/*.path "$repo"/contrib/systemd/*.timer; do
    [ -f "$unit" ] || continue
    # Exec lines name the binary where this install puts it (/usr/local/bin/als, @bindir@/als or
    # a bare `als` in the unit all become TARGET_BIN).
    sed -E "s#^(Exec[A-Za-z]*=[-@:+!]*)(@bindir@/als|/[^ ]*/als|als)( |\$)#\\1${target}\\3#" "$unit" >"$stage/systemd/${unit##*/}"
  done
}

# read_manifest FILE PREFIX: fills manifest_files (path → sha256) and manifest_dirs. Every line
# is checked: a manifest naming anything outside PREFIX, or a line it does not know, is refused
# whole, so an edited or foreign file can never make uninstall remove something else.
declare -A manifest_files=()
declare -a manifest_dirs=()
read_manifest() {
  local file=$1 prefix=$2 line kind rest hash path n=0 seen_prefix=""
  manifest_files=()
  manifest_dirs=()
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case "$line" in ''|'#'*) continue ;; esac
    kind=${line%% *}
    rest=${line#* }
    case "$kind" in
      prefix)
        [ "$rest" = "$prefix" ] || die 1 "$file:$n: written for prefix $rest, not $prefix"
        seen_prefix=1
        ;;
      version) ;;
      dir)
        check_manifest_path "$file" "$n" "$rest" "$prefix" allow-prefix
        manifest_dirs+=("$rest")
        ;;
      file)
        hash=${rest%% *}
        path=${rest#* }
        [[ "$hash" =~ ^[0-9a-f]{64}$ ]] || die 1 "$file:$n: not a sha256: $hash"
        check_manifest_path "$file" "$n" "$path" "$prefix"
        manifest_files[$path]=$hash
        ;;
      *) die 1 "$file:$n: not a manifest line: $line" ;;
    esac
  done <"$file"
  [ -n "$seen_prefix" ] || die 1 "$file: no prefix line: not an als install manifest"
}

check_manifest_path() {
  local file=$1 n=$2 path=$3 prefix=$4 allow=${5:-}
  case "$path/" in */./*|*/../*|*//*) die 1 "$file:$n: not a plain path: $path" ;; esac
  if [ "$path" = "$prefix" ] && [ "$allow" = allow-prefix ]; then return 0; fi
  case "$path" in "$prefix"/?*) ;; *) die 1 "$file:$n: outside the prefix $prefix: $path" ;; esac
}

# remove_if_unchanged PATH SHA256 [keep|force]: removes PATH when it still holds what was
# installed; a changed file is kept (and said) unless `force`.
removed_count=0
kept_count=0
declare -a kept_paths=()
remove_if_unchanged() {
  local path=$1 hash=$2 mode=${3:-keep}
  if [ ! -e "$path" ] && [ ! -L "$path" ]; then return 0; fi
  if [ -L "$path" ] || [ ! -f "$path" ]; then
    warn "kept $path: no longer the regular file that was installed"
    kept_count=$((kept_count + 1))
    kept_paths+=("$path")
    return 0
  fi
  if [ "$(sha256 "$path")" != "$hash" ] && [ "$mode" != force ]; then
    warn "kept $path: changed since it was installed (--force removes it)"
    kept_count=$((kept_count + 1))
    kept_paths+=("$path")
    return 0
  fi
  rm -f -- "$path"
  removed_count=$((removed_count + 1))
  printf '  removed %s\n' "$path"
}

# After units were added or removed: systemd reads them again, when it is running here.
systemd_reload() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || warn "systemctl daemon-reload failed"
  fi
}
