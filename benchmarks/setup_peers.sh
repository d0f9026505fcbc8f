#!/usr/bin/env bash
# Create the peers' virtual environments used by bench_header.py and bench_end_to_end.py.
#
#   benchmarks/.venv-dicognito          dicognito==0.19.0 (run as `python -m dicognito`)
#   benchmarks/.venv-dicom-anonymizer   the latest dicom-anonymizer (called through its Python API)
#
# Both are git-ignored and kept apart from the project's own environment: each peer brings the
# pydicom version it asks for. Re-running the script is harmless (existing venvs are reused).
# Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

make_venv() {
    local dir="$1"; shift
    if [ ! -x "$dir/bin/python" ]; then
        "$python" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --upgrade pip
    fi
    "$dir/bin/python" -m pip install --quiet "$@"
}

make_venv "$here/.venv-dicognito" "dicognito==0.19.0"
make_venv "$here/.venv-dicom-anonymizer" "dicom-anonymizer"

echo "dicognito:        $("$here/.venv-dicognito/bin/python" -m pip show dicognito | sed -n 's/^Version: //p')" \
     "(pydicom $("$here/.venv-dicognito/bin/python" -c 'import pydicom; print(pydicom.__version__)'))"
echo "dicom-anonymizer: $("$here/.venv-dicom-anonymizer/bin/python" -m pip show dicom-anonymizer | sed -n 's/^Version: //p')" \
     "(pydicom $("$here/.venv-dicom-anonymizer/bin/python" -c 'import pydicom; print(pydicom.__version__)'))"
