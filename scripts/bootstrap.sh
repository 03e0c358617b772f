#!/usr/bin/env bash
# Set up everything steerflow's demo and tests need on a fresh Debian machine with Python >= 3.11:
# Debian's OpenMPI (for MPI tasks), Debian's chromium (browser tests of the report and dashboard)
# and a virtual environment in .venv with steerflow installed.
# `bash scripts/bootstrap.sh demo` also installs the demo's science codes (tblite, rdkit, ase, scikit-learn,
# qm9pack, molsets' data), Dask (the engine for many nodes, and the peer `steerflow bench runtime` measures in
# the same run), dask-jobqueue, and Debian's SLURM + munge, which the Dask engine's batch-pilot test runs for real.
set -euo pipefail
EXTRAS="test,plot,dashboard"
if [ "${1:-}" = "demo" ]; then EXTRAS="test,plot,dashboard,demo,bench,dask"; fi
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bootstrap] installing Debian's OpenMPI (openmpi-bin libopenmpi-dev)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null
  else
    echo "[bootstrap] mpirun not found and cannot apt-get install it: MPI tests will be skipped" >&2
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then  # the report and dashboard tests open pages in headless Chromium
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bootstrap] installing Debian's chromium (headless browser for the report/dashboard tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[bootstrap] chromium not found and cannot apt-get install it: browser tests will be skipped" >&2
  fi
fi
if [ "${1:-}" = "demo" ] && ! command -v slurmctld >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bootstrap] installing Debian's SLURM and munge (slurm-wlm munge) for the batch-pilot test"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  else
    echo "[bootstrap] slurmctld not found and cannot apt-get install it: the SLURM test will be skipped" >&2
  fi
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
if [ "${1:-}" = "demo" ]; then
  # MOSES' molecules for example 03's ground-truth sweep: data only (its declared torch dependency is huge and
  # `import moses` fails), so without its dependencies; the example reads its csv.gz files.
  .venv/bin/python -m pip install -q --no-deps molsets
fi
if [ "${1:-}" = "demo" ] && [ ! -f .venv/cpython-tests/cpython_test_concurrent_futures.py ] \
   && [ "$(.venv/bin/python -c 'import sys; print(sys.version_info[:2] == (3, 11))')" = True ] \
   && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  # CPython's own executor tests, which tests/test_executor_stdlib.py runs against Runtime: unpacked from
  # Debian's archive into the venv (nothing installed system-wide, nothing copied into the repository)
  tmp=$(mktemp -d)
  get() { (cd "$tmp" && apt-get download -qq libpython3.11-testsuite >/dev/null 2>&1); }
  if get || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && get; }; then
    dpkg -x "$tmp"/libpython3.11-testsuite_*.deb "$tmp/x"
    mkdir -p .venv/cpython-tests
    cp "$tmp/x/usr/lib/python3.11/test/test_concurrent_futures.py" .venv/cpython-tests/cpython_test_concurrent_futures.py
    echo "[bootstrap] CPython 3.11's executor tests unpacked into .venv/cpython-tests"
  else
    echo "[bootstrap] could not download libpython3.11-testsuite: CPython's executor tests will be skipped" >&2
  fi
  rm -rf "$tmp"
fi
echo "[bootstrap] ready: .venv/bin/steerflow"
