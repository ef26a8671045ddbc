# Build the one-folder Windows app: dist\reviewdesk\reviewdesk.exe (+ _internal\), then check it.
#   powershell -ExecutionPolicy Bypass -File installers\build-windows.ps1
# Needs: Python 3.11+ (python.org), a venv with the [build] extra:
#   py -3.11 -m venv .venv; .venv\Scripts\pip install -e ".[dev,build]"
# The exe is a console program (the CLI prints to the terminal; without a subcommand it opens the window).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$py = if ($env:PY) { $env:PY } else { ".venv\Scripts\python.exe" }
$dist = if ($env:DIST) { $env:DIST } else { "dist" }
$work = if ($env:WORK) { $env:WORK } else { "build\pyinstaller" }
& $py -m PyInstaller --noconfirm --log-level WARN --distpath $dist --workpath $work installers\reviewdesk.spec
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
$app = Join-Path $dist "reviewdesk\reviewdesk.exe"
& $app --version
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
if ($env:SKIP_SELF_TEST -ne "1") {
    $env:QT_QPA_PLATFORM = "offscreen"
    & $app --self-test
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Remove-Item Env:\QT_QPA_PLATFORM
}
Write-Host "Built $dist\reviewdesk (run $app; zip the folder to ship it)"
