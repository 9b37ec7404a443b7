#!/usr/bin/env bash
# Entry point of `npm test`, `npm run demo` and `npm run bench` on any machine, fresh or not:
# installs what the project needs (npm packages, which bring Node 22 itself through the `node`
# package; a Python venv with moto), then runs the task under Node 22, the Lambda runtime's major.
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:?usage: scripts/run.sh test|demo|bench}"
shift

say() { printf '\033[2m[fleetwarden] %s\033[0m\n' "$*" >&2; }

# npm packages: reinstall whenever package-lock.json changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.fleetwarden-lock
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > "$stamp"
fi

# moto in a project-owned venv, pinned by test/emulators/requirements.txt.
req_hash=$(sha256sum test/emulators/requirements.txt | cut -d' ' -f1)
venv_stamp=.venv/.fleetwarden-requirements
if [[ ! -f $venv_stamp || $(cat "$venv_stamp") != "$req_hash" ]]; then
  say "creating the moto venv (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r test/emulators/requirements.txt
  echo "$req_hash" > "$venv_stamp"
fi

# Node 22 from node_modules first on PATH, for this script and every child (tsx, vitest, cdk).
export PATH="$PWD/node_modules/.bin:$PATH"
major=$(node -p 'process.versions.node.split(".")[0]')
if [[ $major != 22 ]]; then
  echo "expected Node 22 from node_modules/.bin, got $(node --version)" >&2
  exit 1
fi

case "$task" in
  test)
    say "lint"
    eslint .
    say "typecheck"
    tsc --noEmit -p tsconfig.json
    say "tests (vitest) on Node $(node --version)"
    exec vitest run "$@"
    ;;
  demo) exec tsx scripts/demo.ts "$@" ;;
  bench) exec tsx scripts/bench.ts "$@" ;;
  *) echo "unknown task $task" >&2; exit 2 ;;
esac
