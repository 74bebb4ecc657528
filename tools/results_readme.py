#!/usr/bin/env python3
"""Writes the measured results of one `scripts/bench.sh` run into the docs.

    .venv/bin/python tools/results_readme.py results

- `<out>/README.md`: the full tables (quality per image set and per sequence, latency per stage
  and resolution, criterion kernels), the machine they were measured on, and every plot in the
  folder.
- README.md, between the `results:begin` / `results:end` markers: one table (the shipped
  matting model's configurations and the peers: SAD per image set, dtSSD, frame rate against
  RVM) and the two summary plots, with a link to the full tables. No machine names there: they
  live in `<out>/README.md`.

`results_text(out)` and `readme_block(out)` return the two texts without writing anything;
`tools/test_readme_results.py` checks that README.md's block is what `readme_block` makes of
the committed `results/`.
"""
import json
import pathlib
import re
import sys

ORDER = ["ours:student", "rvm", "coarse-mask", "closed-form"]

# What a summary row's errors are measured over (eval.json `region`; files written before
# regions existed measured every row over the band).
REGION_NAMES = {"band": "unknown band", "image": "whole image"}

MARKERS = re.compile(r"<!-- results:begin.*?<!-- results:end -->", re.S)

# The shipped matting model: the file name `slimmatte::paths::MATTING_MODEL` names.
PATHS_RS = pathlib.Path(__file__).resolve().parent.parent / "src" / "paths.rs"

# README's table: the shipped model's configurations (eval method = `ours:<model>` + suffix,
# bench system = `ours:<model>` + bench suffix, None = not benchmarked) and the peers, in this
# order; whatever else the run measured is in `<out>/README.md`.
OURS_ROWS = [
    ("+refine+band/trimapgen", "", "the pipeline with its default settings (refinement + band net)"),
    ("+refine/trimapgen", "-classical", "the same without the band net (`band-net=false`, the classical pipeline)"),
    ("+refine+band/trimapgen-selfie", None, "the default, the selfie network's mask alone (`pose=false`)"),
    ("+refine+band/oracle-mask", None, "the default, given the true mask at the segmenter's 256×144"),
    ("/trimapgen", None, "the crop matting net instead of the refinement (`refine=none`)"),
]
PEER_ROWS = [
    ("rvm", "Robust Video Matting (MobileNetV3)"),
    ("coarse-mask", "the person mask alone, thresholded and feathered"),
]
OURS_GIVEN_TRIMAP = [
    ("+refine+band/gt-trimap", "refinement + band net (the default), given the true trimap"),
    ("+refine/gt-trimap", "the refinement alone (`band-net=false`), given the true trimap"),
    ("/gt-trimap", "the crop matting net alone, given the true trimap"),
]
CLOSED_FORM = ("closed-form", "closed-form matting (pymatting), given the true trimap")
SPEED_SIZES = [(640, 360), (1280, 720)]


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
    for (w, h) in SPEED_SIZES:
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


def mean_dtssd(ev):
    """Mean dtSSD over the moving sequences per method, and the number of sequences."""
    dt = {}
    for q in ev.get("sequences", []):
        dt.setdefault(q["method"], []).append(q["dtssd"])
    means = {m: sum(v) / len(v) for m, v in dt.items()}
    n = len(next(iter(dt.values()))) if dt else 0
    return means, n


def dtssd_lines(ev):
    means, n = mean_dtssd(ev)
    if not means:
        return []
    parts = ", ".join(f"{m} {v:.2f}" for m, v in sorted(means.items(), key=lambda kv: shipped_first(kv[0])))
    return [f"- dtSSD on the moving sequences (mean of {n}, lower = steadier): {parts}"]


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


def shipped_model(ev, paths_rs=PATHS_RS):
    """The `ours:<model>` key of the shipped matting model if this run measured it, else the
    first model the run measured (e.g. the test fixture of a run without trained models)."""
    ours = sorted({s["method"].split("+")[0].split("/")[0] for s in ev["summary"]
                   if s["method"].startswith("ours:")}, key=shipped_first)
    try:
        m = re.search(r'MATTING_MODEL: &str = "matting_([A-Za-z0-9_]+)\.onnx"', paths_rs.read_text())
    except OSError:
        m = None
    if m and f"ours:{m.group(1)}" in ours:
        return f"ours:{m.group(1)}"
    return ours[0] if ours else None


def summary_table(ev, bench):
    """README's one table: the shipped model's configurations and the peers, SAD per image set,
    mean dtSSD and frame rate (× RVM at the same size)."""
    model = shipped_model(ev)
    rows = []  # (eval method, bench (system, mode) or None, what it is)
    if model:
        rows += [(model + sfx, (model + bsfx, "pipeline") if bsfx is not None else None, what)
                 for sfx, bsfx, what in OURS_ROWS]
    rows.append(("rvm", ("rvm", "bare"), PEER_ROWS[0][1]))
    rows.append(("coarse-mask", ("coarse-mask", "pipeline"), PEER_ROWS[1][1]))
    if model:
        rows += [(model + sfx, None, what) for sfx, what in OURS_GIVEN_TRIMAP]
    rows.append((CLOSED_FORM[0], None, CLOSED_FORM[1]))

    sets = image_sets(ev)
    by = {(s["set"], s["method"]): s for s in ev["summary"]}
    methods = {s["method"] for s in ev["summary"]}
    rows = [r for r in rows if r[0] in methods]
    n_set = {st: max(s["n"] for s in ev["summary"] if s["set"] == st) for st in sets}
    dt, n_seq = mean_dtssd(ev)
    sizes = [(w, h) for (w, h) in SPEED_SIZES if any((r["width"], r["height"]) == (w, h) for r in bench["runs"])]

    def sad(st, m):
        s = by.get((st, m))
        if s is None:
            return "–"
        return f"{s['sad']:.2f}" + (f" (n={s['n']})" if s["n"] != n_set[st] else "")

    def fps(run, w, h):
        r = find_run(bench, run[0], run[1], w, h) if run else None
        if r is None:
            return "–"
        rvm = find_run(bench, "rvm", "bare", w, h)
        if rvm is None or run[0] == "rvm":
            return f"{r['fps']:.1f}"
        return f"{r['fps']:.1f} ({r['fps'] / rvm['fps']:.2f}×)"

    head = ("| method | what it is | SAD over | "
            + " | ".join(f"SAD {st}, n={n_set[st]}" for st in sets)
            + (f" | dtSSD, mean of {n_seq} sequences" if n_seq else "")
            + "".join(f" | fps {w}×{h}" for (w, h) in sizes) + " |")
    rule = "|---|---|---|" + "---:|" * (len(sets) + (1 if n_seq else 0) + len(sizes))
    lines = [head, rule]
    for m, run, what in rows:
        first = next(by[(st, m)] for st in sets if (st, m) in by)
        over = REGION_NAMES.get(region(first), region(first))
        cells = [sad(st, m) for st in sets]
        if n_seq:
            cells.append(f"{dt[m]:.2f}" if m in dt else "–")
        cells += [fps(run, w, h) for (w, h) in sizes]
        lines.append(f"| `{m}` | {what} | {over} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load(out):
    out = pathlib.Path(out)
    return (json.loads((out / "bench.json").read_text()),
            json.loads((out / "eval.json").read_text()))


def fixture_lines(bench):
    if any("luma_key" in r["system"] for r in bench["runs"]):
        return ["- **No trained matting model was in models/ for this run: `ours:luma_key_matte` "
                "is the plumbing test fixture (same contract, not a matting net). Its speed is "
                "the pipeline's overhead with a trivial net; its quality means nothing.**"]
    return []


def results_text(out):
    """The text of `<out>/README.md`: every table of the run, the machine, every plot."""
    out = pathlib.Path(out)
    bench, ev = load(out)
    threads = bench.get("threads_label") or f"{bench['threads']} intra-op threads per network"
    header = ("Measured ratios of this run (same frames, same machine, same threads: "
              f"{threads}; {bench['machine']}; shared with other jobs, so absolute "
              "times are noisy — the ratios are the result):")
    head = [header, ""] + fixture_lines(bench) + speed_lines(bench)
    summary = "\n".join(head + sad_lines(ev) + dtssd_lines(ev))
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
        ("pose_segmentation.md", "MediaPipe Pose's segmentation averaged into the selfie mask (`trimapgen pose`): tuning, test sets, cost, unseen footage"),
        ("speed_history.md", "the pipeline's frame rates run by run, machine by machine, and the optimisations between them"),
        ("band_net.md", "the band net (the pruned student that makes the full-resolution matte): test sets, speed, ablation, DCP vs Network Slimming, crops"),
        ("band_ablation.md", "the band net's ablation (`scripts/band_ablation.sh`): no history, teacher, single-frame teacher, the solver given the same time"),
    ] if (out / n).exists()]
    other_lines = "\n".join(f"- [`{n}`]({n}): {what}" for n, what in others)
    return (f"# Results of `bash scripts/bench.sh`\n\n"
            f"Written by `tools/results_readme.py` from the files in this folder.\n\n{summary}\n\n"
            f"## Quality (`slimmatte eval`)\n\n{(out / 'eval.md').read_text()}\n"
            f"## Latency (`slimmatte bench`)\n\n{(out / 'bench.md').read_text()}\n"
            f"## Other results in this folder\n\n{other_lines}\n\n"
            f"## Plots\n\n{plots}\n\n"
            f"## Kernels (`cargo bench --bench kernels`, criterion)\n\n```\n{kernels}```\n")


def readme_block(out):
    """README.md's Results block, markers included: one table and two plots."""
    out = pathlib.Path(out)
    bench, ev = load(out)
    fixture = "\n".join(fixture_lines(bench))
    return (f"<!-- results:begin (written by scripts/bench.sh) -->\n"
            + (f"{fixture}\n\n" if fixture else "")
            + f"SAD ÷1000 and dtSSD ×100, lower is better. Rows that find the person themselves are "
            f"measured over the whole image, so a leak far from the person counts; rows given the "
            f"true trimap over its unknown band: compare rows within one region. fps: the GStreamer "
            f"pipeline from JPEG decode to encode for ours and the coarse mask, the model calls "
            f"alone for RVM; × RVM at the same size. One run, same frames, same machine, same "
            f"threads; the machine and every other table, the other matting models included: "
            f"[`{out.name}/README.md`]({out.name}/README.md).\n\n"
            f"{summary_table(ev, bench)}\n\n"
            f"![quality_vs_latency]({out.name}/quality_vs_latency.png)\n"
            f"![fps_vs_resolution]({out.name}/fps_vs_resolution.png)\n"
            f"<!-- results:end -->")


def readme_with_block(text, block):
    """`text` with its results block replaced by `block`, and the number of blocks replaced."""
    return MARKERS.subn(lambda m: block, text)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    full = results_text(out)
    block = readme_block(out)
    (out / "README.md").write_text(full)
    readme = pathlib.Path("README.md")
    new, n = readme_with_block(readme.read_text(), block)
    if n == 0:
        print("README.md has no results markers; not updated", file=sys.stderr)
        return 1
    readme.write_text(new)
    print(f"wrote {out / 'README.md'} and README.md's Results block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
