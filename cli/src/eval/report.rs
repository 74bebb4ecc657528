//! What `eval` reports: per-image rows, their means per (set, method), dtSSD per sequence, and
//! their output as eval.csv, eval_sequences.csv, eval.json and eval.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::EvalArgs;
use crate::peers;

/// The errors (SAD, MSE, Grad, Conn) and the time (ms) of one image, or their means.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
    pub ms: f64,
}

/// One row of eval.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub set: String,
    pub image: String,
    pub method: String,
    #[serde(flatten)]
    pub scores: Scores,
}

/// The mean of a (set, method) group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummaryRow {
    pub set: String,
    pub method: String,
    pub n: usize,
    #[serde(flatten)]
    pub scores: Scores,
}

/// dtSSD of one method on one sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceRow {
    pub sequence: String,
    pub method: String,
    pub frames: usize,
    pub dtssd: f64,
    pub sad: f64,
    pub mse: f64,
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
                n: g.len(),
                scores: Scores {
                    sad: mean(|s| s.sad),
                    mse: mean(|s| s.mse),
                    grad: mean(|s| s.grad),
                    conn: mean(|s| s.conn),
                    ms: mean(|s| s.ms),
                },
            }
        })
        .collect()
}

/// eval.csv: a header and one line per (image, method).
pub fn rows_csv(rows: &[Row]) -> String {
    let mut s = String::from("set,image,method,sad,mse,grad,conn,ms\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{:.6},{:.8},{:.6},{:.6},{:.3}",
            csv_field(&r.set),
            csv_field(&r.image),
            csv_field(&r.method),
            r.scores.sad,
            r.scores.mse,
            r.scores.grad,
            r.scores.conn,
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
    let mut seq_csv = String::from("sequence,method,frames,dtssd,sad,mse\n");
    for r in seq_rows {
        let _ = writeln!(
            seq_csv,
            "{},{},{},{:.6},{:.6},{:.8}",
            r.sequence, r.method, r.frames, r.dtssd, r.sad, r.mse
        );
    }
    seq_csv
}

/// The summary as a Markdown table.
pub fn summary_markdown(summary: &[SummaryRow], sequences: &[SequenceRow]) -> String {
    let mut s = String::new();
    s.push_str("| set | method | n | SAD | MSE | Grad | Conn | ms/image |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in summary {
        let Scores {
            sad,
            mse,
            grad,
            conn,
            ms,
        } = r.scores;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {sad:.2} | {mse:.4} | {grad:.2} | {conn:.2} | {ms:.0} |",
            r.set, r.method, r.n
        );
    }
    if !sequences.is_empty() {
        s.push_str("\n| sequence | method | frames | dtSSD | SAD | MSE |\n");
        s.push_str("|---|---|---:|---:|---:|---:|\n");
        for r in sequences {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {:.4} |",
                r.sequence, r.method, r.frames, r.dtssd, r.sad, r.mse
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
        notes: notes.to_vec(),
    };
    std::fs::write(
        args.out.join("eval.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mut md = format!(
        "Matte quality — Composition-1k conventions (SAD, Grad, Conn ÷1000; MSE over the unknown \
         region of the evaluation trimap; dtSSD ×100 as in RVM). Synthetic images {}×{}, \
         evaluation trimap = ground-truth soft region dilated by {} px. {ratio_note}. \
         {} intra-op threads.\n\n",
        args.width, args.height, args.trimap_radius, args.threads
    );
    md.push_str(&summary_markdown(&summary, seq_rows));
    for n in notes {
        let _ = writeln!(md, "\nNote: {n}");
    }
    std::fs::write(args.out.join("eval.md"), &md)?;
    println!("{md}");
    println!(
        "wrote {}/eval.csv, eval_sequences.csv, eval.md, eval.json",
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
            scores: Scores {
                sad,
                mse: sad / 10.0,
                grad: 2.0 * sad,
                conn: 3.0 * sad,
                ms,
            },
        }
    }

    #[test]
    fn summary_means_per_set_and_method_in_order() {
        let rows = [
            r("b", "m1", 1.0, 10.0),
            r("a", "m2", 4.0, 1.0),
            r("b", "m1", 3.0, 30.0),
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].set.as_str(), s[0].method.as_str(), s[0].n),
            ("b", "m1", 2)
        );
        assert_eq!(s[0].scores.sad, 2.0);
        assert_eq!(s[0].scores.mse, 0.2);
        assert_eq!(s[0].scores.grad, 4.0);
        assert_eq!(s[0].scores.conn, 6.0);
        assert_eq!(s[0].scores.ms, 20.0);
        assert_eq!((s[1].set.as_str(), s[1].scores.sad), ("a", 4.0));
    }

    #[test]
    fn csv_has_a_header_and_quotes_commas() {
        let mut row = r("set,1", "m", 0.5, 2.0);
        row.image = "a\"b".into();
        let csv = rows_csv(&[row]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "set,image,method,sad,mse,grad,conn,ms");
        assert_eq!(
            lines[1],
            "\"set,1\",\"a\"\"b\",m,0.500000,0.05000000,1.000000,1.500000,2.000"
        );
    }

    #[test]
    fn summary_json_keeps_its_flat_fields() {
        let s = summarize(&[r("a", "m", 1.0, 2.0)]);
        let json = serde_json::to_string(&s[0]).unwrap();
        assert_eq!(
            json,
            r#"{"set":"a","method":"m","n":1,"sad":1.0,"mse":0.1,"grad":2.0,"conn":3.0,"ms":2.0}"#
        );
        let back: SummaryRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s[0]);
    }
}
