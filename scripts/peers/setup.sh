#!/usr/bin/env bash
# Build the peers' environment for scripts/compare_recbole.py and scripts/compare_mmrec.py, outside mmbench:
#   <dir>/venv   a virtual environment with RecBole 1.2.1 and MMRec's requirements (requirements.txt here:
#                numpy<1.24, scipy<1.12; torch and torchvision as pip's constraints on this machine allow)
#   <dir>/MMRec  MMRec's source at a pinned commit, from its public repository (never copied into mmbench/)
#
#   bash scripts/peers/setup.sh [--dir DIR] [--mmrec-git-dir BARE_GIT_DIR] [--python PYTHON]
#
# --dir            where both go (default: $MMBENCH_PEERS_DIR, else ../mmbench-peers beside the repository)
# --mmrec-git-dir  take MMRec from a local git directory (a clone or bare mirror holding the pinned commit)
#                  instead of cloning $MMREC_URL; the source is then the pinned commit's tree (git archive)
# The MMRec source is fetched first: without network to GitHub (and no --mmrec-git-dir) the script stops there,
# saying so, before any environment is built. Re-running reuses what is already there.
set -euo pipefail

MMREC_URL="${MMREC_URL:-https://github.com/enoche/MMRec.git}"
MMREC_COMMIT="e775373b3ab1354a92165b0885ce4ab3dc4d7497" # MMRec main, "Add MMGCF (UMAP 26) (#62)"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DIR="${MMBENCH_PEERS_DIR:-$(dirname "$REPO")/mmbench-peers}"
GIT_DIR_SRC=""
PYTHON="${PYTHON:-python3}"

die() {
    echo "scripts/peers/setup.sh: error: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --dir) DIR="${2:?--dir needs a folder}"; shift 2 ;;
    --mmrec-git-dir) GIT_DIR_SRC="${2:?--mmrec-git-dir needs a git directory}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
DIR="$(realpath -m "$DIR")"
case "$DIR/" in "$REPO"/*) die "--dir $DIR is inside the repository $REPO: the peers live outside it" ;; esac
mkdir -p "$DIR"

# 1. MMRec's source, pinned
SRC="$DIR/MMRec"
if [[ -f "$SRC/.mmrec_commit" && "$(cat "$SRC/.mmrec_commit")" == "$MMREC_COMMIT" ]]; then
    echo "MMRec $MMREC_COMMIT already in $SRC"
else
    rm -rf "$SRC" "$SRC.tmp"
    if [[ -n "$GIT_DIR_SRC" ]]; then
        git --git-dir "$GIT_DIR_SRC" cat-file -e "$MMREC_COMMIT^{commit}" 2>/dev/null ||
            die "--mmrec-git-dir $GIT_DIR_SRC is not a git directory holding MMRec commit $MMREC_COMMIT"
        mkdir -p "$SRC.tmp"
        git --git-dir "$GIT_DIR_SRC" archive "$MMREC_COMMIT" | tar -x -C "$SRC.tmp"
    else
        echo "cloning $MMREC_URL"
        if ! GIT_TERMINAL_PROMPT=0 timeout "${MMREC_CLONE_TIMEOUT:-120}" \
            git clone --quiet "$MMREC_URL" "$SRC.tmp" </dev/null; then
            rm -rf "$SRC.tmp"
            die "could not clone MMRec from $MMREC_URL (no network to GitHub?). Clone it elsewhere and pass" \
                "--mmrec-git-dir <that clone's .git>, which must hold commit $MMREC_COMMIT."
        fi
        git -C "$SRC.tmp" checkout --quiet "$MMREC_COMMIT" ||
            die "the clone of $MMREC_URL has no commit $MMREC_COMMIT"
    fi
    [[ -f "$SRC.tmp/src/utils/quick_start.py" ]] || die "no src/utils/quick_start.py in the MMRec source: not MMRec?"
    echo "$MMREC_COMMIT" >"$SRC.tmp/.mmrec_commit"
    mv "$SRC.tmp" "$SRC"
    echo "MMRec $MMREC_COMMIT in $SRC"
fi

# 2. the environment
VENV="$DIR/venv"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip install -q --no-deps recbole==1.2.1

# 3. check: the pinned versions import, and so do the peers' modules the runners use
"$VENV/bin/python" - "$SRC/src" <<'PY'
import sys

import numpy, recbole, scipy, torch

sys.path.insert(0, sys.argv[1])
import recbole.data, recbole.model.general_recommender, recbole.trainer  # noqa: F401
import utils.quick_start  # noqa: F401  (MMRec)

print(f"peers environment ready: python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__},"
      f" scipy {scipy.__version__}, recbole {recbole.__version__}")
PY
echo "$VENV/bin/python"
echo "run: python scripts/compare_recbole.py --peer-python $VENV/bin/python"
echo "     python scripts/compare_mmrec.py --peer-python $VENV/bin/python --mmrec $SRC"
