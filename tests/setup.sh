#!/usr/bin/env bash
# Installs what the tests need and is not an npm package, idempotently (run by `npm test`'s pretest,
# so README's test line works on a fresh machine and in CI): system packages listed by the
# .ci/deps.d/*.sh scripts, then the local control plane's Go binaries (cached by version).
set -euo pipefail
cd "$(dirname "$0")/.."
for f in .ci/deps.d/*.sh; do
  [ -e "$f" ] || continue
  bash "$f"
done
bash tests/e2e-kind/local/build-binaries.sh
bash tests/image-verification/build-tools.sh
