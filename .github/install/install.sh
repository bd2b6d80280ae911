#!/usr/bin/env bash
# Install ilab-gitops from a checkout at a pinned commit into a fresh venv, hash-checked.
#
#   install.sh SRC DEST    -> DEST/venv (the tool) and DEST/bin/ilab-gitops (the command)
#
# Called by the reusable workflows from SRC, the checkout of the commit the caller pinned,
# and by the tests. Dependencies come only from the lock file beside this script, each one
# checked against its sha256 (--require-hashes; hatchling too, so the build needs no index);
# the package itself is built from SRC with --no-deps. Everything runs with `python -I`, and
# the wrapper runs the tool so as well: nothing from the working directory (a pull request's
# checkout) or from PYTHON* variables ever reaches sys.path.
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: install.sh SRC DEST" >&2
  exit 2
fi
src="$(cd "$1" && pwd)"
dest="$(mkdir -p "$2" && cd "$2" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
pip=("$dest/venv/bin/python" -I -m pip install -q --disable-pip-version-check --no-deps)

"${PYTHON:-python3}" -I -m venv "$dest/venv"
"${pip[@]}" --require-hashes -r "$here/requirements.txt"
"${pip[@]}" --no-index --no-build-isolation "$src"

mkdir -p "$dest/bin"
cat > "$dest/bin/ilab-gitops" <<WRAPPER
#!/bin/sh
exec "$dest/venv/bin/python" -I -c 'import sys; sys.argv[0] = "ilab-gitops"; from ilab_gitops.cli.entry import main; main()' "\$@"
WRAPPER
chmod +x "$dest/bin/ilab-gitops"
