//! What `eval` reports: per-image rows, their means per (set, method), dtSSD and per-frame SAD
//! per sequence, and their output as eval.csv, eval_sequences.csv, sad_over_time.csv,
//! eval.json, eval.md and sad_over_time.png.
//!
//! Every row says which [`Region`] its errors are over: `band` (the evaluation trimap's unknown
//! band, for the methods given that trimap) or `image` (every pixel, for the trimap-free
//! methods, with the IoU of the foregrounds).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::EvalArgs;
use crate::peers;

/// Where a row's errors are measured.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// The unknown band of the evaluation trimap (Composition-1k): the methods given that
    /// trimap (`…/gt-trimap`, `closed-form`). Files written before regions existed are this.
    #[default]
    Band,
    /// Every pixel (as RVM's evaluation): the trimap-free methods (`…/trimapgen`, `rvm`,
    /// `coarse-mask`), whose leaks far from the subject count too.
    Image,
}

impl Region {
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Band => "band",
            Region::Image => "image",
        }
    }
}

/// The errors (SAD, MSE, Grad, Conn) over the row's region, the IoU of the foregrounds
/// (`image` rows only) and the time (ms) of one image, or their means.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
    /// IoU of alpha > 0.5 against the truth over the whole image; `None` for `band` rows.
    #[serde(default)]
    pub iou: Option<f64>,
    pub ms: f64,
}

/// One row of eval.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub set: String,
    pub image: String,
    pub method: String,
    #[serde(default)]
    pub region: Region,
    #[serde(flatten)]
    pub scores: Scores,
}

/// The mean of a (set, method) group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummaryRow {
    pub set: String,
    pub method: String,
    #[serde(default)]
    pub region: Region,
    pub n: usize,
    #[serde(flatten)]
    pub scores: Scores,
}

/// dtSSD and the mean errors of one method on one sequence, and its SAD frame by frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceRow {
    pub sequence: String,
    pub method: String,
    #[serde(default)]
    pub region: Region,
    pub frames: usize,
    pub dtssd: f64,
    pub sad: f64,
    pub mse: f64,
    #[serde(default)]
    pub iou: Option<f64>,
    /// SAD of each frame, over `region`.
    #[serde(default)]
    pub frame_sad: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub width: usize,
    pub height: usize,
    pub threads: usize,
    pub trimap_radius: usize,
    pub rvm_ratio_note: String,
    pub summary: Vec<SummaryRow>,
    pub sequences: Vec<SequenceRow>,
    pub notes: Vec<String>,
}

/// Means per (set, method), in first-seen order of sets and methods.
pub fn summarize(rows: &[Row]) -> Vec<SummaryRow> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = (r.set.clone(), r.method.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let n = g.len() as f64;
            let mean = |f: fn(&Scores) -> f64| g.iter().map(|r| f(&r.scores)).sum::<f64>() / n;
            SummaryRow {
                set: key.0,
                method: key.1,
                region: g[0].region,
                n: g.len(),
                scores: Scores {
                    sad: mean(|s| s.sad),
                    mse: mean(|s| s.mse),
                    grad: mean(|s| s.grad),
                    conn: mean(|s| s.conn),
                    iou: mean_of_some(g.iter().map(|r| r.scores.iou)),
                    ms: mean(|s| s.ms),
                },
            }
        })
        .collect()
}

/// The mean of the values that are there; `None` when none is.
pub fn mean_of_some(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// An optional value as a CSV field: empty when absent.
fn opt_csv(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// An optional value as a Markdown cell: a dash when absent.
fn opt_md(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "–".to_string())
}

/// eval.csv: a header and one line per (image, method).
pub fn rows_csv(rows: &[Row]) -> String {
    let mut s = String::from("set,image,method,region,sad,mse,grad,conn,iou,ms\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{:.6},{:.8},{:.6},{:.6},{},{:.3}",
            csv_field(&r.set),
            csv_field(&r.image),
            csv_field(&r.method),
            r.region.as_str(),
            r.scores.sad,
            r.scores.mse,
            r.scores.grad,
            r.scores.conn,
            opt_csv(r.scores.iou),
            r.scores.ms
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// eval_sequences.csv: a header and one line per (sequence, method).
fn sequences_csv(seq_rows: &[SequenceRow]) -> String {
    let mut seq_csv = String::from("sequence,method,region,frames,dtssd,sad,mse,iou\n");
    for r in seq_rows {
        let _ = writeln!(
            seq_csv,
            "{},{},{},{},{:.6},{:.6},{:.8},{}",
            csv_field(&r.sequence),
            csv_field(&r.method),
            r.region.as_str(),
            r.frames,
            r.dtssd,
            r.sad,
            r.mse,
            opt_csv(r.iou)
        );
    }
    seq_csv
}

/// sad_over_time.csv: a header and one line per (sequence, method, frame).
fn sad_over_time_csv(seq_rows: &[SequenceRow]) -> String {
    let mut csv = String::from("sequence,method,region,frame,sad\n");
    for r in seq_rows {
        for (t, sad) in r.frame_sad.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},{t},{sad:.6}",
                csv_field(&r.sequence),
                csv_field(&r.method),
                r.region.as_str()
            );
        }
    }
    csv
}

/// What the `region` column means, for the tables' captions.
pub const REGION_NOTE: &str = "region `band`: errors over the unknown band of the evaluation \
     trimap only (Composition-1k), for the rows given that trimap (`…/gt-trimap`, \
     `closed-form`); region `image`: errors over every pixel (as RVM's evaluation), for the \
     trimap-free rows (`…/trimapgen`; `…/trimapgen-selfie`: without the pose network's \
     segmentation, the selfie network's mask alone; `rvm`, `coarse-mask`, and \
     `…/oracle-mask`: the trimap \
     stage given the ground truth at the segmentation network's resolution instead of the \
     network's mask), so a leak far from the subject counts; IoU = intersection over union of alpha > 0.5 with the truth's, whole image, \
     `image` rows only. SAD, MSE, Grad and Conn of the two regions are not comparable.";

/// The summary as a Markdown table.
pub fn summary_markdown(summary: &[SummaryRow], sequences: &[SequenceRow]) -> String {
    let mut s = String::new();
    s.push_str("| set | method | region | n | SAD | MSE | Grad | Conn | IoU | ms/image |\n");
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in summary {
        let Scores {
            sad,
            mse,
            grad,
            conn,
            iou,
            ms,
        } = r.scores;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {sad:.2} | {mse:.4} | {grad:.2} | {conn:.2} | {} | {ms:.0} |",
            r.set,
            r.method,
            r.region.as_str(),
            r.n,
            opt_md(iou)
        );
    }
    if !sequences.is_empty() {
        s.push_str("\n| sequence | method | region | frames | dtSSD | SAD | MSE | IoU |\n");
        s.push_str("|---|---|---|---:|---:|---:|---:|---:|\n");
        for r in sequences {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.4} | {} |",
                r.sequence,
                r.method,
                r.region.as_str(),
                r.frames,
                r.dtssd,
                r.sad,
                r.mse,
                opt_md(r.iou)
            );
        }
    }
    s
}

/// Writes eval.csv, eval_sequences.csv, eval.json and eval.md (also printed) under `--out`.
pub(super) fn write(
    args: &EvalArgs,
    rows: &[Row],
    seq_rows: &[SequenceRow],
    notes: &[String],
) -> Result<()> {
    let summary = summarize(rows);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(args.out.join("eval.csv"), rows_csv(rows))?;
    std::fs::write(args.out.join("eval_sequences.csv"), sequences_csv(seq_rows))?;
    std::fs::write(
        args.out.join("sad_over_time.csv"),
        sad_over_time_csv(seq_rows),
    )?;
    let mut notes = notes.to_vec();
    let plot = args.out.join("sad_over_time.png");
    if let Err(e) = super::plot::sad_over_time(seq_rows, &plot) {
        notes.push(format!("{} not drawn: {e:#}", plot.display()));
    }
    let ratio_note = format!(
        "RVM downsample_ratio from the RVM README table: {} at {}×{}",
        peers::rvm_recommended_ratio(args.width, args.height),
        args.width,
        args.height
    );
    let report = EvalReport {
        width: args.width,
        height: args.height,
        threads: args.threads,
        trimap_radius: args.trimap_radius,
        rvm_ratio_note: ratio_note.clone(),
        summary: summary.clone(),
        sequences: seq_rows.to_vec(),
        notes: notes.clone(),
    };
    std::fs::write(
        args.out.join("eval.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mut md = format!(
        "Matte quality — Composition-1k conventions (SAD, Grad, Conn ÷1000; MSE the mean over \
         the row's region; dtSSD ×100 as in RVM, whole frame). {REGION_NOTE} Synthetic images \
         {}×{}, evaluation trimap = ground-truth soft region dilated by {} px. {ratio_note}. \
         {}; the elements' default settings.\n\n",
        args.width,
        args.height,
        args.trimap_radius,
        slimmatte::runtime::threads_label(args.threads)
    );
    md.push_str(&summary_markdown(&summary, seq_rows));
    if seq_rows.iter().any(|r| !r.frame_sad.is_empty()) {
        md.push_str(
            "\nSAD frame by frame on the moving sequences (over each row's region): \
             sad_over_time.png, sad_over_time.csv.\n",
        );
    }
    for n in &notes {
        let _ = writeln!(md, "\nNote: {n}");
    }
    std::fs::write(args.out.join("eval.md"), &md)?;
    println!("{md}");
    println!(
        "wrote {}/eval.csv, eval_sequences.csv, sad_over_time.csv, eval.md, eval.json, \
         sad_over_time.png",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(set: &str, method: &str, sad: f64, ms: f64) -> Row {
        Row {
            set: set.into(),
            image: "x".into(),
            method: method.into(),
            region: Region::Band,
            scores: Scores {
                sad,
                mse: sad / 10.0,
                grad: 2.0 * sad,
                conn: 3.0 * sad,
                iou: None,
                ms,
            },
        }
    }

    /// An `image` row with an IoU.
    fn ri(set: &str, method: &str, sad: f64, iou: f64) -> Row {
        let mut row = r(set, method, sad, 1.0);
        row.region = Region::Image;
        row.scores.iou = Some(iou);
        row
    }

    #[test]
    fn summary_means_per_set_and_method_in_order() {
        let rows = [
            r("b", "m1", 1.0, 10.0),
            r("a", "m2", 4.0, 1.0),
            r("b", "m1", 3.0, 30.0),
            ri("b", "free", 1.0, 0.5),
            ri("b", "free", 1.0, 0.75),
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].set.as_str(), s[0].method.as_str(), s[0].n),
            ("b", "m1", 2)
        );
        assert_eq!(s[0].scores.sad, 2.0);
        assert_eq!(s[0].scores.mse, 0.2);
        assert_eq!(s[0].scores.grad, 4.0);
        assert_eq!(s[0].scores.conn, 6.0);
        assert_eq!(s[0].scores.ms, 20.0);
        assert_eq!((s[0].region, s[0].scores.iou), (Region::Band, None));
        assert_eq!((s[1].set.as_str(), s[1].scores.sad), ("a", 4.0));
        assert_eq!((s[2].region, s[2].scores.iou), (Region::Image, Some(0.625)));
    }

    #[test]
    fn csv_has_a_header_and_quotes_commas() {
        let mut row = r("set,1", "m", 0.5, 2.0);
        row.image = "a\"b".into();
        let csv = rows_csv(&[row, ri("s", "free", 0.5, 0.25)]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "set,image,method,region,sad,mse,grad,conn,iou,ms");
        assert_eq!(
            lines[1],
            "\"set,1\",\"a\"\"b\",m,band,0.500000,0.05000000,1.000000,1.500000,,2.000"
        );
        assert_eq!(
            lines[2],
            "s,x,free,image,0.500000,0.05000000,1.000000,1.500000,0.250000,1.000"
        );
    }

    #[test]
    fn summary_json_keeps_its_flat_fields() {
        let s = summarize(&[r("a", "m", 1.0, 2.0), ri("a", "f", 1.0, 0.5)]);
        let json = serde_json::to_string(&s[0]).unwrap();
        assert_eq!(
            json,
            r#"{"set":"a","method":"m","region":"band","n":1,"sad":1.0,"mse":0.1,"grad":2.0,"conn":3.0,"iou":null,"ms":2.0}"#
        );
        let back: SummaryRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s[0]);
        let json = serde_json::to_string(&s[1]).unwrap();
        assert!(json.contains(r#""region":"image""#) && json.contains(r#""iou":0.5"#));
        assert_eq!(serde_json::from_str::<SummaryRow>(&json).unwrap(), s[1]);
    }

    #[test]
    fn files_without_regions_still_read_as_band() {
        let old =
            r#"{"set":"a","method":"m","n":1,"sad":1.0,"mse":0.1,"grad":2.0,"conn":3.0,"ms":2.0}"#;
        let s: SummaryRow = serde_json::from_str(old).unwrap();
        assert_eq!((s.region, s.scores.iou), (Region::Band, None));
        let seq = r#"{"sequence":"s","method":"m","frames":3,"dtssd":1.0,"sad":1.0,"mse":0.1}"#;
        let q: SequenceRow = serde_json::from_str(seq).unwrap();
        assert!(q.frame_sad.is_empty() && q.iou.is_none());
    }

    #[test]
    fn markdown_labels_regions_and_missing_iou() {
        let s = summarize(&[r("a", "m", 1.0, 2.0), ri("a", "f", 1.0, 0.5)]);
        let md = summary_markdown(&s, &[]);
        assert!(md.contains("| set | method | region | n | SAD | MSE | Grad | Conn | IoU |"));
        assert!(
            md.contains("| a | m | band | 1 |") && md.contains("| – |"),
            "{md}"
        );
        assert!(
            md.contains("| a | f | image | 1 |") && md.contains("| 0.500 |"),
            "{md}"
        );
    }
}
