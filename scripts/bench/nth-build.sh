#!/usr/bin/env bash
# AWS Node Termination Handler (NTH) for the bench's side-by-side comparison (scripts/bench/nth.ts),
# built from the Go module proxy (the only source reachable here), unmodified, into
#   ${FLEETWARDEN_CACHE:-$HOME/.cache/fleetwarden}/nth/<version>/node-termination-handler
#
#   nth-build.sh           build if missing (warm: does nothing), print the binary's path
#   nth-build.sh version   print the version this script builds
#
# The module has no replace directives, but `go install <module>/cmd@<version>` fails here: it
# asks the proxy for the module's version list (deprecation check), which answers 403. A wrapper
# module that requires the exact version and names the main package (cmd/) as a tool builds it
# with the module's own dependency versions (go.sum checked against sum.golang.org as usual).
# NTH_VERSION: v1.25.6 is the newest version the proxy serves (its version list answers 403;
# v1.25.7 and v1.26.0 answer 403 too, and v1.25.6 is the repository's newest v1 tag).
set -euo pipefail

NTH_VERSION=${NTH_VERSION:-v1.25.6}
MODULE=github.com/aws/aws-node-termination-handler
CACHE=${FLEETWARDEN_CACHE:-$HOME/.cache/fleetwarden}/nth/$NTH_VERSION
BIN=$CACHE/node-termination-handler

log() { echo "[nth] $*" >&2; }
die() { echo "[nth] ERROR: $*" >&2; exit 1; }

build_locked() {
  local go work t0=$SECONDS
  go=$(command -v go || echo /usr/local/go/bin/go)
  [[ -x $go ]] || die "go not found (need Go >= 1.25)"
  # local toolchain only (no toolchain download), no workspace/vendoring from the caller,
  # a static binary (no C compiler needed).
  export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
  rm -rf "$CACHE"/.build.*/ # left by a build that was SIGKILLed (we hold the lock)
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local, gone when the trap runs
  trap "rm -rf '$work'" EXIT
  log "building $MODULE $NTH_VERSION (a few minutes on 2 cores)"
  printf 'module fleetwarden.local/nthbuild\ngo 1.25\nrequire %s %s\ntool %s/cmd\n' \
    "$MODULE" "$NTH_VERSION" "$MODULE" >"$work/go.mod"
  (cd "$work" && "$go" mod tidy >&2)
  # The wrapper must not move NTH's own dependency versions (tidy keeps them: MVS over its go.mod).
  (cd "$work" && "$go" list -m all) | grep -qx "$MODULE $NTH_VERSION" || die "wrapper resolved another $MODULE version"
  (cd "$work" && "$go" build -trimpath -ldflags "-s -w" -o "$work/nth" "$MODULE/cmd")
  # Atomic: the binary only appears under its name (rename on the same filesystem) once complete.
  mv -f "$work/nth" "$BIN"
  log "built in $((SECONDS - t0))s: $BIN"
}

cmd_build() {
  if [[ ! -x $BIN ]]; then
    mkdir -p "$CACHE"
    # Serialise concurrent builds; the later one finds the binary cached.
    (
      flock 9
      [[ -x $BIN ]] && exit 0
      build_locked
    ) 9>"$CACHE/.build.lock"
  fi
  echo "$BIN"
}

case ${1:-build} in
  build) cmd_build ;;
  version) echo "$NTH_VERSION" ;;
  *) echo "usage: $0 [build | version]" >&2; exit 2 ;;
esac
