#!/usr/bin/env python3
"""Writes the measured results of one `scripts/bench.sh` run into the docs.

    .venv/bin/python tools/results_readme.py results

- `<out>/README.md`: the full tables (quality per image set and per sequence, latency per stage
  and resolution, criterion kernels) and every plot in the folder.
- README.md, between the `results:begin` / `results:end` markers: one screen — the headline
  ratios of the shipped student against RVM measured in this run, one quality table (SAD of the
  shipped configuration and its peers per set) and the two summary plots, with a link to the
  full tables.
"""
import json
import pathlib
import re
import sys

ORDER = ["ours:student", "rvm", "coarse-mask", "closed-form"]

# What a summary row's errors are measured over (eval.json `region`; files written before
# regions existed measured every row over the band).
REGION_NAMES = {"band": "unknown band", "image": "whole image"}


def region(s):
    return s.get("region", "band")


def shipped_first(name):
    return (next((i for i, o in enumerate(ORDER) if name.startswith(o)), len(ORDER)), name)


def find_run(bench, system, mode, w, h):
    for r in bench["runs"]:
        if (r["system"], r["mode"], r["width"], r["height"]) == (system, mode, w, h):
            return r
    return None


def speed_lines(bench):
    lines = []
    for (w, h) in [(640, 360), (1280, 720)]:
        rvm = find_run(bench, "rvm", "bare", w, h)
        if not rvm:
            continue
        ours = [r for r in bench["runs"]
                if r["system"].startswith("ours:") and (r["width"], r["height"]) == (w, h)]
        for r in sorted(ours, key=lambda r: shipped_first(r["system"])):
            x = r["fps"] / rvm["fps"]
            verdict = f"**{x:.2f}× faster than RVM**" if x >= 1 else f"**{1 / x:.2f}× slower than RVM**"
            lines.append(f"- {w}×{h}: {r['system']} ({r['mode']}) {r['fps']:.1f} fps vs RVM "
                         f"{rvm['fps']:.1f} fps (bare, {rvm['detail']}) → {verdict}")
    return lines


def image_sets(ev):
    return list(dict.fromkeys(s["set"] for s in ev["summary"]))


def sad_lines(ev):
    lines = []
    for st in image_sets(ev):
        rows = sorted((s for s in ev["summary"] if s["set"] == st), key=lambda s: shipped_first(s["method"]))
        parts = ", ".join(f"{s['method']} {s['sad']:.2f} ({region(s)})" for s in rows)
        ns = sorted({s["n"] for s in rows}, reverse=True)
        lines.append(f"- SAD on {st} (n = {' / '.join(map(str, ns))} images; band = over the "
                     f"unknown band, image = over the whole image): {parts}")
    return lines


def dtssd_lines(ev):
    lines = []
    dt = {}
    for q in ev.get("sequences", []):
        dt.setdefault(q["method"], []).append(q["dtssd"])
    if dt:
        parts = ", ".join(f"{m} {sum(v) / len(v):.2f}"
                          for m, v in sorted(dt.items(), key=lambda kv: shipped_first(kv[0])))
        n = len(next(iter(dt.values())))
        lines.append(f"- dtSSD on the moving sequences (mean of {n}, lower = steadier): {parts}")
    return lines


def quality_table(ev):
    """SAD per set (columns) for each method (rows), the region it is measured over, plus
    ms/image on the first set."""
    sets = image_sets(ev)
    methods = sorted(dict.fromkeys(s["method"] for s in ev["summary"]), key=shipped_first)
    by = {(s["set"], s["method"]): s for s in ev["summary"]}
    head = "| method | SAD over | " + " | ".join(f"SAD {st}" for st in sets) + " | ms/image |"
    rule = "|---|---|" + "---:|" * (len(sets) + 1)
    rows = [head, rule]
    for m in methods:
        cells = [f"{by[(st, m)]['sad']:.2f} (n={by[(st, m)]['n']})" if (st, m) in by else "–" for st in sets]
        first = next(by[(st, m)] for st in sets if (st, m) in by)
        over = REGION_NAMES.get(region(first), region(first))
        rows.append(f"| {m} | {over} | " + " | ".join(cells) + f" | {first['ms']:.0f} |")
    return "\n".join(rows)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    bench = json.loads((out / "bench.json").read_text())
    ev = json.loads((out / "eval.json").read_text())
    threads = bench.get("threads_label") or f"{bench['threads']} intra-op threads per network"
    header = ("Measured ratios of this run (same frames, same machine, same threads: "
              f"{threads}; {bench['machine']}; shared with other jobs, so absolute "
              "times are noisy — the ratios are the result):")
    fixture = []
    if any("luma_key" in r["system"] for r in bench["runs"]):
        fixture = ["- **No trained matting model was in models/ for this run: `ours:luma_key_matte` "
                   "is the plumbing test fixture (same contract, not a matting net). Its speed is "
                   "the pipeline's overhead with a trivial net; its quality means nothing.**"]
    head = [header, ""] + fixture + speed_lines(bench)
    summary = "\n".join(head + sad_lines(ev) + dtssd_lines(ev))
    # README: the SAD per set is in the table below the ratios, not repeated as lines.
    short = "\n".join(head + dtssd_lines(ev))
    kernels = (out / "kernels.txt").read_text() if (out / "kernels.txt").exists() else ""
    plots = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(out.glob("*.png")))
    # Results made by other commands that live in this folder too (linked, not rewritten).
    others = [(n, what) for n, what in [
        ("foreground.md", "foreground colour at soft edges: the frame's colour vs "
         "`bgreplace estimate-foreground=true`, given the true alpha (crops in `foreground/`)"),
        ("foreground_cost.md", "what `estimate-foreground=true` costs in the pipeline (`bench --estimate-foreground`)"),
        ("temporal.md", "temporal vs single-frame student, and the tuning sequences behind the defaults"),
        ("old_vs_new.md", "old vs new matting nets on held-out images, with hair/leaf crops"),
        ("streams.md", "concurrent live streams (`slimmatte bench --streams N`)"),
        ("streams_selfie_only.md", "the same with the selfie network alone (what `pose=false` runs)"),
        ("streams_threads1.md", "the same with a private 1-thread pool per network"),
        ("int8.md", "INT8 vs fp32 nets (`tools/quantize_int8.py`)"),
        ("int8_eval.md", "INT8 vs fp32 student, quality (one eval run)"),
        ("int8_eval_temporal.md", "INT8 vs fp32 temporal student, quality (one eval run)"),
        ("refine_curve.md", "the refinement's quality/time curve (`eval --refine-curve N`)"),
        ("refine_iterations.md", "full-resolution refinement iterations: quality against pipeline speed"),
        ("refine_schedule.md", "coarse-level against full-resolution refinement iterations (the default schedule)"),
        ("band_bias.md", "the unknown band shifted outwards (band-bias), with hair crops of the built-in clip"),
        ("refine_quality_eval.md", "the refinement's quality preset against closed-form"),
        ("refine_trust.md", "the refinement's trust in the net: tuning, test run, crops"),
        ("segmenter_limits.md", "the full pipeline on a perfect segmenter (`eval --oracle-mask`), and what was tried against the real one's misses"),
        ("pose_segmentation.md", "MediaPipe Pose's segmentation averaged into the selfie mask (`trimapgen pose=true`, the default): tuning, test sets, cost, unseen footage"),
    ] if (out / n).exists()]
    other_lines = "\n".join(f"- [`{n}`]({n}): {what}" for n, what in others)
    full = (f"# Results of `bash scripts/bench.sh`\n\n"
            f"Written by `tools/results_readme.py` from the files in this folder.\n\n{summary}\n\n"
            f"## Quality (`slimmatte eval`)\n\n{(out / 'eval.md').read_text()}\n"
            f"## Latency (`slimmatte bench`)\n\n{(out / 'bench.md').read_text()}\n"
            f"## Other results in this folder\n\n{other_lines}\n\n"
            f"## Plots\n\n{plots}\n\n"
            f"## Kernels (`cargo bench --bench kernels`, criterion)\n\n```\n{kernels}```\n")
    (out / "README.md").write_text(full)

    block = (f"<!-- results:begin (written by scripts/bench.sh) -->\n{short}\n\n"
             f"Matte quality (SAD ÷1000, lower is better; `gt-trimap` and closed-form rows are given "
             f"the true trimap and measured over its unknown band, `trimapgen`, RVM and the coarse "
             f"mask are not and are measured over the whole image, so leaks far from the person "
             f"count — compare rows within a region):\n\n{quality_table(ev)}\n\n"
             f"![quality_vs_latency]({out.name}/quality_vs_latency.png)\n"
             f"![fps_vs_resolution]({out.name}/fps_vs_resolution.png)\n\n"
             f"Full tables (every metric, per sequence, latency per stage and resolution, "
             f"kernels) and all plots: [`{out.name}/README.md`]({out.name}/README.md).\n"
             f"<!-- results:end -->")
    readme = pathlib.Path("README.md")
    text = readme.read_text()
    new, n = re.subn(r"<!-- results:begin.*?<!-- results:end -->", lambda m: block, text, flags=re.S)
    if n == 0:
        print("README.md has no results markers; not updated", file=sys.stderr)
        return 1
    readme.write_text(new)
    print(f"wrote {out / 'README.md'} and README.md's Results block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
