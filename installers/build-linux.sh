#!/usr/bin/env bash
# Build the one-folder Linux app: dist/reviewdesk/reviewdesk (+ _internal/), then check the frozen binary.
#   installers/build-linux.sh                     # into dist/ (work files in build/pyinstaller)
#   DIST=/tmp/out WORK=/tmp/work installers/build-linux.sh
# Needs: the dev venv with the [build] extra (`make venv`), and binutils (PyInstaller calls objdump).
# The frozen app still loads the system libraries Qt needs at run time (README: the apt-get line).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
command -v objdump >/dev/null || { echo "build-linux.sh: objdump not found: apt-get install binutils" >&2; exit 1; }
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" installers/reviewdesk.spec
APP="$DIST/reviewdesk/reviewdesk"
"$APP" --version
if [ "${SKIP_SELF_TEST:-0}" != 1 ]; then
  QT_QPA_PLATFORM=offscreen "$APP" --self-test
fi
echo "Built $(du -sh "$DIST/reviewdesk" | cut -f1) in $DIST/reviewdesk (run $APP; archive the folder to ship it)"
