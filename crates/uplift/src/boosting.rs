//! Histogram-based gradient-boosted trees for binary outcomes (log-loss, Newton leaf values), the
//! building block of the boosted T-learner. Features are binned once by training quantiles; trees
//! split on bin boundaries but store raw thresholds, so prediction needs no binning.

use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError, check_len};
use crate::logistic::sigmoid;
use crate::matrix::Matrix;

/// Boosting parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoostingParams {
    pub trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub min_rows_per_leaf: usize,
    /// L2 penalty on leaf values (Newton step −G/(H + l2)).
    pub l2: f64,
    /// At most 256 (bins are stored in a byte).
    pub max_bins: usize,
}

impl Default for BoostingParams {
    fn default() -> Self {
        Self {
            trees: 100,
            learning_rate: 0.1,
            max_depth: 3,
            min_rows_per_leaf: 50,
            l2: 1.0,
            max_bins: 64,
        }
    }
}

impl BoostingParams {
    fn validate(&self) -> Result<()> {
        let invalid = |name, reason: &str| {
            Err(UpliftError::InvalidParameter {
                name,
                reason: reason.into(),
            })
        };
        if self.trees == 0 {
            return invalid("trees", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return invalid("learning_rate", "must be in (0, 1]");
        }
        if !(2..=256).contains(&self.max_bins) {
            return invalid("max_bins", "must be in 2..=256");
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return invalid("l2", "must be >= 0");
        }
        if self.min_rows_per_leaf == 0 {
            return invalid("min_rows_per_leaf", "must be at least 1");
        }
        Ok(())
    }
}

/// A matrix quantised to bins, with the raw threshold at the top of each bin but the last.
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    rows: usize,
    cols: usize,
    bins: Vec<u8>,
    thresholds: Vec<Vec<f64>>,
    stride: usize,
}

impl BinnedMatrix {
    /// Bins `x` (finite) by its own quantiles: a value v falls in bin b when thresholds[b−1] < v ≤ thresholds[b].
    pub fn fit(x: &Matrix, max_bins: usize) -> Result<Self> {
        x.check_finite()?;
        let max_bins = max_bins.clamp(2, 256);
        let mut thresholds = Vec::with_capacity(x.cols());
        let mut column = Vec::with_capacity(x.rows());
        for c in 0..x.cols() {
            column.clear();
            column.extend((0..x.rows()).map(|r| x.row(r)[c]));
            column.sort_by(f64::total_cmp);
            column.dedup();
            let cuts: Vec<f64> = if column.len() <= max_bins {
                // Few distinct values: one bin each, cut midway so unseen values fall to the nearer side.
                column.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
            } else {
                let mut cuts: Vec<f64> = (1..max_bins)
                    .map(|q| column[q * column.len() / max_bins])
                    .collect();
                cuts.dedup();
                cuts
            };
            thresholds.push(cuts);
        }
        let cols = x.cols();
        let mut bins = vec![0u8; x.rows() * cols];
        for r in 0..x.rows() {
            for (c, value) in x.row(r).iter().enumerate() {
                // At most 255 thresholds, so the bin index fits a byte.
                bins[r * cols + c] = thresholds[c].partition_point(|t| t < value) as u8;
            }
        }
        Ok(Self {
            rows: x.rows(),
            cols,
            bins,
            thresholds,
            stride: max_bins,
        })
    }

    pub const fn rows(&self) -> usize {
        self.rows
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        value: f64,
    },
}

/// A fitted ensemble: P(y = true | x) = σ(base + Σ tree(x)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTrees {
    base_score: f64,
    feature_count: usize,
    /// Each tree's nodes, the root first.
    trees: Vec<Vec<Node>>,
}

/// Per-bin sums of gradient, Hessian and row count for every feature.
#[derive(Clone)]
struct Histogram {
    grad: Vec<f64>,
    hess: Vec<f64>,
    count: Vec<u32>,
}

impl Histogram {
    fn zeros(size: usize) -> Self {
        Self {
            grad: vec![0.0; size],
            hess: vec![0.0; size],
            count: vec![0; size],
        }
    }

    fn subtract(&self, other: &Self) -> Self {
        Self {
            grad: self
                .grad
                .iter()
                .zip(&other.grad)
                .map(|(a, b)| a - b)
                .collect(),
            hess: self
                .hess
                .iter()
                .zip(&other.hess)
                .map(|(a, b)| a - b)
                .collect(),
            count: self
                .count
                .iter()
                .zip(&other.count)
                .map(|(a, b)| a - b)
                .collect(),
        }
    }
}

struct TreeBuilder<'a> {
    binned: &'a BinnedMatrix,
    grad: &'a [f64],
    hess: &'a [f64],
    params: &'a BoostingParams,
    nodes: Vec<Node>,
    /// The raw-score increment of every training row, indexed by row.
    increments: &'a mut [f64],
}

struct BestSplit {
    gain: f64,
    feature: usize,
    bin: usize,
}

impl TreeBuilder<'_> {
    fn histogram(&self, rows: &[u32]) -> Histogram {
        let cols = self.binned.cols;
        let stride = self.binned.stride;
        let mut h = Histogram::zeros(cols * stride);
        for &r in rows {
            let r = r as usize;
            let (g, hs) = (self.grad[r], self.hess[r]);
            let row_bins = &self.binned.bins[r * cols..(r + 1) * cols];
            for (f, &b) in row_bins.iter().enumerate() {
                let i = f * stride + b as usize;
                h.grad[i] += g;
                h.hess[i] += hs;
                h.count[i] += 1;
            }
        }
        h
    }

    fn best_split(&self, h: &Histogram, rows: usize) -> Option<BestSplit> {
        let stride = self.binned.stride;
        let lambda = self.params.l2;
        let min_rows = self.params.min_rows_per_leaf;
        let mut best: Option<BestSplit> = None;
        for f in 0..self.binned.cols {
            let bins_in_feature = self.binned.thresholds[f].len() + 1;
            let base = f * stride;
            let g_total: f64 = h.grad[base..base + bins_in_feature].iter().sum();
            let h_total: f64 = h.hess[base..base + bins_in_feature].iter().sum();
            let parent_score = g_total * g_total / (h_total + lambda);
            let (mut gl, mut hl, mut cl) = (0.0, 0.0, 0usize);
            for b in 0..bins_in_feature - 1 {
                gl += h.grad[base + b];
                hl += h.hess[base + b];
                cl += h.count[base + b] as usize;
                let cr = rows - cl;
                if cl < min_rows {
                    continue;
                }
                if cr < min_rows {
                    break;
                }
                let (gr, hr) = (g_total - gl, h_total - hl);
                let gain = gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parent_score;
                // Strictly greater keeps the first of equal splits: deterministic.
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(BestSplit {
                        gain,
                        feature: f,
                        bin: b,
                    });
                }
            }
        }
        best
    }

    fn leaf(&mut self, rows: &[u32], h: &Histogram) -> u32 {
        // Any one feature's bins cover every row, so feature 0's sums are the node's sums.
        let bins0 = self.binned.thresholds.first().map_or(1, |t| t.len() + 1);
        let g: f64 = h.grad[..bins0].iter().sum();
        let hs: f64 = h.hess[..bins0].iter().sum();
        let value = -g / (hs + self.params.l2) * self.params.learning_rate;
        for &r in rows {
            self.increments[r as usize] = value;
        }
        self.nodes.push(Node::Leaf { value });
        (self.nodes.len() - 1) as u32
    }

    fn grow(&mut self, rows: &mut [u32], h: Histogram, depth: usize) -> u32 {
        let split = if depth < self.params.max_depth && self.binned.cols > 0 {
            self.best_split(&h, rows.len())
        } else {
            None
        };
        let Some(split) = split else {
            return self.leaf(rows, &h);
        };
        let cols = self.binned.cols;
        let bins = &self.binned.bins;
        // In-place partition: rows going left first.
        let mut boundary = 0;
        for i in 0..rows.len() {
            if bins[rows[i] as usize * cols + split.feature] as usize <= split.bin {
                rows.swap(i, boundary);
                boundary += 1;
            }
        }
        let (left_rows, right_rows) = rows.split_at_mut(boundary);
        // Histogram subtraction: build the smaller child, derive the larger from the parent.
        let (left_h, right_h) = if left_rows.len() <= right_rows.len() {
            let l = self.histogram(left_rows);
            let r = h.subtract(&l);
            (l, r)
        } else {
            let r = self.histogram(right_rows);
            let l = h.subtract(&r);
            (l, r)
        };
        drop(h);
        let index = self.nodes.len();
        self.nodes.push(Node::Leaf { value: 0.0 });
        let left = self.grow(left_rows, left_h, depth + 1);
        let right = self.grow(right_rows, right_h, depth + 1);
        self.nodes[index] = Node::Split {
            feature: split.feature as u32,
            threshold: self.binned.thresholds[split.feature][split.bin],
            left,
            right,
        };
        index as u32
    }
}

impl BoostedTrees {
    /// Fits on the rows `rows` of `binned` with labels `y` (indexed by row of `binned`).
    pub fn fit(
        binned: &BinnedMatrix,
        rows: &[u32],
        y: &[bool],
        params: &BoostingParams,
    ) -> Result<Self> {
        params.validate()?;
        check_len("labels", binned.rows(), y.len())?;
        if rows.is_empty() {
            return Err(UpliftError::EmptyInput {
                action: "fit boosted trees on",
            });
        }
        let positives = rows.iter().filter(|&&r| y[r as usize]).count() as f64;
        let n = rows.len() as f64;
        // Start from the base rate's log-odds, clamped so a near-pure arm does not start at infinity.
        let rate = (positives / n).clamp(1e-6, 1.0 - 1e-6);
        let base_score = (rate / (1.0 - rate)).ln();
        let total = binned.rows();
        let mut raw = vec![base_score; total];
        let mut grad = vec![0.0; total];
        let mut hess = vec![0.0; total];
        let mut increments = vec![0.0; total];
        let mut work: Vec<u32> = rows.to_vec();
        let mut trees = Vec::with_capacity(params.trees);
        for _ in 0..params.trees {
            for &r in rows {
                let r = r as usize;
                let p = sigmoid(raw[r]);
                grad[r] = p - if y[r] { 1.0 } else { 0.0 };
                hess[r] = (p * (1.0 - p)).max(1e-16);
            }
            let mut builder = TreeBuilder {
                binned,
                grad: &grad,
                hess: &hess,
                params,
                nodes: Vec::new(),
                increments: &mut increments,
            };
            let root = builder.histogram(&work);
            builder.grow(&mut work, root, 0);
            trees.push(builder.nodes);
            for &r in rows {
                raw[r as usize] += increments[r as usize];
            }
        }
        Ok(Self {
            base_score,
            feature_count: binned.cols,
            trees,
        })
    }

    /// P(y = true) for one row.
    pub fn probability(&self, row: &[f64]) -> f64 {
        let mut score = self.base_score;
        for tree in &self.trees {
            let mut index = 0usize;
            loop {
                match tree[index] {
                    Node::Leaf { value } => {
                        score += value;
                        break;
                    }
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        index = if row[feature as usize] <= threshold {
                            left as usize
                        } else {
                            right as usize
                        };
                    }
                }
            }
        }
        sigmoid(score)
    }

    pub const fn feature_count(&self) -> usize {
        self.feature_count
    }

    /// Feeds every split and leaf into a fingerprint (for the model version).
    pub(crate) fn fingerprint(&self, hasher: &mut crate::stable_hash::Fnv1a) {
        hasher.write_f64(self.base_score);
        for tree in &self.trees {
            for node in tree {
                match *node {
                    Node::Leaf { value } => hasher.write_f64(value),
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        hasher.write_u64(u64::from(feature));
                        hasher.write_f64(threshold);
                        hasher.write_u64(u64::from(left) << 32 | u64::from(right));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_agree_with_raw_thresholds() {
        let x = Matrix::from_rows(
            &(0..1000)
                .map(|i| vec![f64::from(i % 97), f64::from(i)])
                .collect::<Vec<_>>(),
        )
        .expect("matrix");
        let binned = BinnedMatrix::fit(&x, 16).expect("bins");
        for r in 0..x.rows() {
            for c in 0..2 {
                let b = binned.bins[r * 2 + c] as usize;
                let t = &binned.thresholds[c];
                let v = x.row(r)[c];
                assert!(b == t.len() || v <= t[b]);
                assert!(b == 0 || v > t[b - 1]);
            }
        }
    }

    #[test]
    fn trees_learn_a_step_function() {
        // P(y) = 0.9 when x > 0.5, else 0.1 (deterministic pattern).
        let rows: Vec<Vec<f64>> = (0..2000).map(|i| vec![f64::from(i) / 2000.0]).collect();
        let y: Vec<bool> = (0..2000)
            .map(|i| if i >= 1000 { i % 10 != 0 } else { i % 10 == 0 })
            .collect();
        let x = Matrix::from_rows(&rows).expect("matrix");
        let binned = BinnedMatrix::fit(&x, 32).expect("bins");
        let all: Vec<u32> = (0..2000).collect();
        let params = BoostingParams {
            trees: 50,
            ..BoostingParams::default()
        };
        let model = BoostedTrees::fit(&binned, &all, &y, &params).expect("fit");
        assert!(
            (model.probability(&[0.9]) - 0.9).abs() < 0.03,
            "{}",
            model.probability(&[0.9])
        );
        assert!(
            (model.probability(&[0.1]) - 0.1).abs() < 0.03,
            "{}",
            model.probability(&[0.1])
        );
    }
}
