# Sourced by the benchmark scripts: a virtualenv under scripts/.venv-peers with the peers
# installed from PyPI (scikit-image, tifffile, atomap, itk-elastix). Never committed.
peers_python() {
    local venv="$(dirname "${BASH_SOURCE[0]}")/../.venv-peers"
    if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
    "$venv/bin/pip" install -q "$@" >&2
    echo "$venv/bin/python"
}
