#!/usr/bin/env bash
# Build the macOS app: dist/ReviewDesk.app (and the same one-folder app in dist/reviewdesk/), then check it.
#   installers/build-macos.sh
# Needs: Python 3.11+ from python.org or Homebrew, `make venv` (installs the [build] extra with PyInstaller).
# The bundle is not signed or notarised: for distribution run `codesign --deep --options runtime -s "Developer
# ID Application: …" dist/ReviewDesk.app` and `xcrun notarytool submit …` (needs an Apple developer account).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" installers/reviewdesk.spec
APP="$DIST/reviewdesk/reviewdesk"
"$APP" --version
if [ "${SKIP_SELF_TEST:-0}" != 1 ]; then
  QT_QPA_PLATFORM=offscreen "$APP" --self-test
fi
echo "Built $DIST/ReviewDesk.app (double-click it) and $DIST/reviewdesk/ (the command line: $APP)"
