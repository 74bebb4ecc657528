//! Model cards (JSON + Markdown) and the results table.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::distill::TrainCfg;

/// Test-split errors with Composition-1k conventions (means over the test images).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Errors {
    pub sad: f64,
    pub mse: f64,
    pub grad: f64,
    pub conn: f64,
}

impl From<slimmatte_measure::metrics::MatteErrors> for Errors {
    fn from(e: slimmatte_measure::metrics::MatteErrors) -> Self {
        Errors {
            sad: e.sad,
            mse: e.mse,
            grad: e.grad,
            conn: e.conn,
        }
    }
}

/// Everything a model card says.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    pub name: String,
    pub file: String,
    pub role: String,
    pub method: String,
    pub architecture: String,
    pub input: String,
    pub output: String,
    pub widths: Vec<(String, usize)>,
    pub params: u64,
    pub flops_640x368: u64,
    pub flops_note: String,
    pub latency_ms_640x368: f64,
    pub latency_threads: usize,
    pub latency_note: String,
    pub test: Errors,
    pub test_description: String,
    pub onnx_vs_tch_max_abs_diff: f64,
    pub training: Vec<TrainCfg>,
    pub training_seconds: f64,
    pub seed: u64,
    pub data: String,
    pub notes: Vec<String>,
}

impl ModelCard {
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}.json", self.name)),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        std::fs::write(dir.join(format!("{}.md", self.name)), self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s += &format!("# {} — model card\n\n", self.name);
        s += &format!(
            "**File:** `{}`  \n**Role:** {}  \n**Method:** {}\n\n",
            self.file, self.role, self.method
        );
        s += "## Interface\n\n";
        s += &format!("- input: {}\n- output: {}\n\n", self.input, self.output);
        s += "## Architecture\n\n";
        s += &format!("{}\n\n", self.architecture);
        s += "| layer | channels |\n|---|---|\n";
        for (n, w) in &self.widths {
            s += &format!("| {n} | {w} |\n");
        }
        s += &format!(
            "\n- parameters (BatchNorm folded): {}\n- FLOPs at 640×368 (640×360 padded to a multiple of 16): {:.3} G ({})\n- latency at 640×368 here, {} threads, ONNX Runtime via `slimmatte::model::Model`: **{:.2} ms** ({})\n- ONNX vs tch max abs difference: {:.2e}\n\n",
            self.params,
            self.flops_640x368 as f64 / 1e9,
            self.flops_note,
            self.latency_threads,
            self.latency_ms_640x368,
            self.latency_note,
            self.onnx_vs_tch_max_abs_diff
        );
        s += "## Test split (Composition-1k conventions)\n\n";
        s += &format!("{}\n\n", self.test_description);
        s += "| SAD | MSE | Grad | Conn |\n|---|---|---|---|\n";
        s += &format!(
            "| {:.3} | {:.5} | {:.3} | {:.3} |\n\n",
            self.test.sad, self.test.mse, self.test.grad, self.test.conn
        );
        s += "## Training\n\n";
        s += &format!(
            "Seed {}; {:.0} s of training on this machine.\n\n",
            self.seed, self.training_seconds
        );
        s += "| run | steps | batch | lr | L1 enc/dec | w_gt | w_kd | w_spkd |\n|---|---|---|---|---|---|---|---|\n";
        for c in &self.training {
            s += &format!(
                "| {} | {} | {} | {} | {}/{} | {} | {} | {} |\n",
                c.name, c.steps, c.batch, c.lr, c.l1_enc, c.l1_dec, c.w_gt, c.w_kd, c.w_spkd
            );
        }
        s += &format!("\n## Data\n\n{}\n", self.data);
        if !self.notes.is_empty() {
            s += "\n## Notes\n\n";
            for n in &self.notes {
                s += &format!("- {n}\n");
            }
        }
        s
    }
}

/// One row of the results table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub model: String,
    pub method: String,
    pub params: u64,
    pub flops: u64,
    pub latency_ms: f64,
    pub test: Errors,
}

/// The paper-style table in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| model | method | params | GFLOPs @640×368 | latency ms @640×368, 2 thr | SAD | MSE | Grad | Conn |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.3} | {:.2} | {:.3} | {:.5} | {:.3} | {:.3} |\n",
            r.model,
            r.method,
            r.params,
            r.flops as f64 / 1e9,
            r.latency_ms,
            r.test.sad,
            r.test.mse,
            r.test.grad,
            r.test.conn
        );
    }
    s
}
