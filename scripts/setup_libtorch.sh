#!/usr/bin/env bash
# Assembles a small CPU-only libtorch 2.13.0 (what tch 0.26 needs) from PyPI wheels into a
# cache folder outside the repository, as /work/shared/NOTES.md describes. Idempotent: when the
# folder is complete it only prints its path. Prints the path on the last line of stdout.
#
#   LIBTORCH=$(scripts/setup_libtorch.sh | tail -n1)
#
# Override the location with SLIMMATTE_LIBTORCH_DIR.
set -euo pipefail

VERSION=2.13.0
DEST="${SLIMMATTE_LIBTORCH_DIR:-$HOME/.cache/slimmatte/libtorch-$VERSION}"

complete() {
    [[ -f "$DEST/build-version" ]] && [[ "$(cat "$DEST/build-version")" == "$VERSION" ]] \
        && [[ -f "$DEST/lib/libtorch_cpu.so" ]] && [[ -f "$DEST/lib/libc10.so" ]] \
        && [[ -f "$DEST/lib/libtorch.so" ]] && [[ -d "$DEST/include/torch" ]]
}

if complete; then
    echo "$DEST"
    exit 0
fi

for tool in unzip gcc; do
    command -v "$tool" >/dev/null || { echo "setup_libtorch: '$tool' is required (apt-get install $tool)" >&2; exit 1; }
done
PIP=""
for cand in pip3 pip "python3 -m pip"; do
    if $cand --version >/dev/null 2>&1; then PIP="$cand"; break; fi
done
if [[ -z "$PIP" ]]; then
    HERE="$(cd "$(dirname "$0")/.." && pwd)"
    if [[ -x "$HERE/.venv/bin/pip" ]]; then PIP="$HERE/.venv/bin/pip"; else
        echo "setup_libtorch: pip is required (apt-get install python3-pip)" >&2; exit 1
    fi
fi

WHEELS="$(dirname "$DEST")/libtorch-wheels-$VERSION"
mkdir -p "$WHEELS"
echo "setup_libtorch: downloading torch==$VERSION CPU parts (~540 MB) into $WHEELS" >&2
$PIP download --no-deps -d "$WHEELS" "torch==$VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 \
    --python-version 3.11 --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 >&2

TMP="$(mktemp -d "$(dirname "$DEST")/libtorch-tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
TORCH_WHL=$(ls "$WHEELS"/torch-"$VERSION"-*.whl | head -n1)
CUDART_WHL=$(ls "$WHEELS"/nvidia_cuda_runtime-*.whl | head -n1)
CUPTI_WHL=$(ls "$WHEELS"/nvidia_cuda_cupti-*.whl | head -n1)

mkdir -p "$TMP/x" "$TMP/out/include" "$TMP/out/lib"
unzip -q "$TORCH_WHL" 'torch/include/*' 'torch/lib/libc10.so' 'torch/lib/libtorch_cpu.so' 'torch/lib/libgomp*' -d "$TMP/x" >&2
cp -r "$TMP/x/torch/include/." "$TMP/out/include/"
cp "$TMP/x/torch/lib/libc10.so" "$TMP/x/torch/lib/libtorch_cpu.so" "$TMP/out/lib/"
cp "$TMP/x/torch/lib/"libgomp* "$TMP/out/lib/"
[[ -f "$TMP/out/lib/libgomp.so.1" ]] || ln -sf "$(basename "$(ls "$TMP/out/lib/"libgomp* | head -n1)")" "$TMP/out/lib/libgomp.so.1"
unzip -q -o "$CUDART_WHL" -d "$TMP/cudart" >&2
unzip -q -o "$CUPTI_WHL" -d "$TMP/cupti" >&2
find "$TMP/cudart" -name 'libcudart.so.13*' -exec cp {} "$TMP/out/lib/" \;
find "$TMP/cupti" -name 'libcupti.so.13*' -exec cp {} "$TMP/out/lib/" \;
[[ -f "$TMP/out/lib/libcudart.so.13" ]] || ln -sf "$(basename "$(ls "$TMP/out/lib/"libcudart.so.13* | head -n1)")" "$TMP/out/lib/libcudart.so.13"
[[ -f "$TMP/out/lib/libcupti.so.13" ]] || ln -sf "$(basename "$(ls "$TMP/out/lib/"libcupti.so.13* | head -n1)")" "$TMP/out/lib/libcupti.so.13"
# An empty libtorch.so so nothing CUDA is ever linked.
echo | gcc -shared -fPIC -Wl,-soname,libtorch.so -o "$TMP/out/lib/libtorch.so" -x c -
echo "$VERSION" > "$TMP/out/build-version"

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP/out" "$DEST"
echo "setup_libtorch: libtorch $VERSION (CPU) ready" >&2
echo "$DEST"
