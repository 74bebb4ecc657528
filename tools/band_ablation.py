#!/usr/bin/env python3
"""The band net's ablation table (`scripts/band_ablation.sh`) from its eval runs.

    .venv/bin/python tools/band_ablation.py results/band_ablation > results/band_ablation.md

Each sub-folder of the argument holds one `slimmatte eval` run (`eval.json`). For every run the
table takes its `+refine+band` rows (the band net ran) or, in runs without the band net, its
`+refine` rows; the default run also gives the classical rows (`band-net=false`, measured in the
same run). Columns: SAD given the true trimap per image set, dtSSD given the true trimap per
sequence, and the full pipeline's SAD and dtSSD.
"""
import json
import pathlib
import sys

ORDER = ["default", "no-history", "teacher", "single-frame", "equal-time-24", "equal-time-32"]
WHAT = {
    "default": "refinement + band student (the default)",
    "classical": "the refinement alone (`band-net=false`), same run as the default",
    "no-history": "band student, never given the previous matte (`temporal=false`)",
    "teacher": "band teacher (unpruned) instead of the student",
    "single-frame": "a band teacher trained without the previous-matte channel",
    "equal-time-24": "refinement alone, 24 finest-level iterations (`refine-iterations=24`)",
    "equal-time-32": "refinement alone, 32 finest-level iterations (`refine-iterations=32`)",
}


def rows(ev, suffix):
    summ = {}
    for s in ev["summary"]:
        m = s["method"]
        if m.startswith("ours:") and m.split("/")[0].endswith(suffix) and "/" in m:
            summ[(s["set"], m.split("/")[1])] = s
    seqs = {}
    for q in ev.get("sequences", []):
        m = q["method"]
        if m.startswith("ours:") and m.split("/")[0].endswith(suffix):
            seqs[(q["sequence"], m.split("/")[1])] = q
    return summ, seqs


def has_band(ev):
    return any("+band/" in s["method"] for s in ev["summary"] + ev.get("sequences", []))


def main(folder):
    folder = pathlib.Path(folder)
    runs = []
    for name in ORDER:
        f = folder / name / "eval.json"
        if not f.exists():
            continue
        ev = json.loads(f.read_text())
        runs.append((name, ev, "+refine+band" if has_band(ev) else "+refine"))
        if name == "default" and has_band(ev):
            runs.append(("classical", ev, "+refine"))
    if not runs:
        sys.exit(f"no eval runs under {folder}")
    sets = list(dict.fromkeys(s["set"] for s in runs[0][1]["summary"]))
    sequences = list(dict.fromkeys(q["sequence"] for q in runs[0][1].get("sequences", [])))
    head = (["configuration", "what"]
            + [f"SAD {st}, true trimap" for st in sets]
            + [f"dtSSD {q.split('_')[1]}, true trimap" for q in sequences]
            + [f"SAD {st}, pipeline" for st in sets if st != "alphamat (opencv-doc)"]
            + [f"dtSSD {q.split('_')[1]}, pipeline" for q in sequences])
    print("# Band net ablation\n")
    print("Written by `tools/band_ablation.py` from `scripts/band_ablation.sh`'s eval runs "
          "(the test data of `scripts/bench.sh`: synthetic and person stills at 640×360, opencv-doc's "
          "real photograph, two moving sequences of 30 frames). SAD ÷1000 (true trimap: over its "
          "unknown band; pipeline: over the whole image), dtSSD ×100; lower is better.\n")
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for name, ev, suffix in runs:
        summ, seqs = rows(ev, suffix)
        cells = [f"`{name}`", WHAT.get(name, name)]
        cells += [f"{summ[(st, 'gt-trimap')]['sad']:.2f}" if (st, "gt-trimap") in summ else "–" for st in sets]
        cells += [f"{seqs[(q, 'gt-trimap')]['dtssd']:.2f}" if (q, "gt-trimap") in seqs else "–" for q in sequences]
        cells += [f"{summ[(st, 'trimapgen')]['sad']:.2f}" if (st, "trimapgen") in summ else "–"
                  for st in sets if st != "alphamat (opencv-doc)"]
        cells += [f"{seqs[(q, 'trimapgen')]['dtssd']:.2f}" if (q, "trimapgen") in seqs else "–" for q in sequences]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/band_ablation")
