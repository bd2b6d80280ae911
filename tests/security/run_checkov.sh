#!/usr/bin/env bash
# Scan the rendered golden trees with checkov's Kubernetes checks (`make scan`).
#
# Creates the scan venv (.venv-scan, checkov pinned; never .venv: checkov pins many
# packages) when missing, copies tests/golden/<example>--<env>/ with each custom resource's
# pod templates added as Pods (tests/security/crd_pods.py), and runs checkov with
# .checkov.yaml. Trees of development environments (allowTagImages: true) also skip the
# image-digest check CKV_K8S_43. Exits 1 when any check fails, 2 on setup errors.
#
# Environment: PYTHON (python3), SCAN_VENV (.venv-scan), CHECKOV_VERSION (pinned below),
# SCAN_REPORT_DIR (also write checkov's JSON results there: released.json, development.json).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${SCAN_VENV:-.venv-scan}
VERSION=${CHECKOV_VERSION:-3.3.30}
DEV_ONLY_SKIPS=CKV_K8S_43

if [[ ! -x "$VENV/bin/checkov" ]] || [[ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$VERSION" ]]; then
    echo "installing checkov $VERSION into $VENV" >&2
    "${PYTHON:-python3}" -m venv "$VENV" || exit 2
    "$VENV/bin/python" -m pip install -q --upgrade pip || exit 2
    "$VENV/bin/python" -m pip install -q "checkov==$VERSION" || exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m tests.security.crd_pods "$work/trees" || exit 2
skips=$("$VENV/bin/python" -c 'import sys, yaml; print(",".join(yaml.safe_load(open(sys.argv[1]))["skip-check"]))' .checkov.yaml)

started=$(date +%s%N)
status=0
for group in released development; do
    [[ -n "$(ls -A "$work/trees/$group")" ]] || continue
    args=(--config-file .checkov.yaml -d "$work/trees/$group")
    [[ $group == development ]] && args+=(--skip-check "$skips,$DEV_ONLY_SKIPS")
    if [[ -n "${SCAN_REPORT_DIR:-}" ]]; then
        mkdir -p "$SCAN_REPORT_DIR"
        args+=(-o cli -o json --output-file-path "console,$SCAN_REPORT_DIR/$group.json")
    fi
    echo "== checkov $VERSION: $group trees ($(ls "$work/trees/$group" | tr '\n' ' '))" >&2
    # Exit 1 means failed checks; anything else is checkov itself failing.
    "$VENV/bin/checkov" "${args[@]}" || { code=$?; [[ $code == 1 ]] && status=1 || exit 2; }
done
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
if [[ $status == 0 ]]; then
    echo "checkov $VERSION: no failed checks (${elapsed} ms)" >&2
else
    echo "checkov $VERSION: FAILED checks above (${elapsed} ms); fix the manifests, or justify a skip in .checkov.yaml and docs/security.md" >&2
fi
exit $status
