//! L2-regularised logistic regression fitted by Newton's method (IRLS) with a Cholesky solve and a
//! backtracking line search. Deterministic; label `true` is the positive class, always.

use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError, check_len};
use crate::matrix::Matrix;

/// Fitting parameters. The penalty is `l2/2·‖w‖²` on the summed log-loss; the intercept is not penalised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogisticParams {
    pub l2: f64,
    pub max_iterations: usize,
    /// Stop when half the Newton decrement (the predicted loss reduction) falls below this.
    pub tolerance: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            l2: 1.0,
            max_iterations: 100,
            tolerance: 1e-10,
        }
    }
}

/// A fitted model: P(y = true | x) = σ(intercept + weights·x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub iterations: usize,
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Solves `a·x = b` for symmetric positive definite `a` (n×n, row-major) by Cholesky; None if not PD.
fn cholesky_solve(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in i + 1..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

struct Problem<'a> {
    x: &'a Matrix,
    y: &'a [bool],
    weights: Option<&'a [f64]>,
    l2: f64,
}

impl Problem<'_> {
    fn linear(&self, beta: &[f64], row: usize) -> f64 {
        beta[0]
            + self
                .x
                .row(row)
                .iter()
                .zip(&beta[1..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
    }

    fn weight(&self, row: usize) -> f64 {
        self.weights.map_or(1.0, |w| w[row])
    }

    fn loss(&self, beta: &[f64]) -> f64 {
        let data: f64 = (0..self.x.rows())
            .map(|i| {
                let z = self.linear(beta, i);
                self.weight(i) * (softplus(z) - if self.y[i] { z } else { 0.0 })
            })
            .sum();
        data + 0.5 * self.l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
    }

    /// Gradient and Hessian (row-major, (d+1)²) at `beta`.
    fn gradient_and_hessian(&self, beta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = beta.len();
        let mut grad = vec![0.0; n];
        let mut hess = vec![0.0; n * n];
        let mut augmented = vec![1.0; n];
        for i in 0..self.x.rows() {
            augmented[1..].copy_from_slice(self.x.row(i));
            let p = sigmoid(self.linear(beta, i));
            let w = self.weight(i);
            let residual = w * (p - if self.y[i] { 1.0 } else { 0.0 });
            let curvature = w * p * (1.0 - p);
            for a in 0..n {
                grad[a] += residual * augmented[a];
                let scaled = curvature * augmented[a];
                // Upper triangle only; mirrored below.
                for b in a..n {
                    hess[a * n + b] += scaled * augmented[b];
                }
            }
        }
        for a in 1..n {
            grad[a] += self.l2 * beta[a];
            hess[a * n + a] += self.l2;
        }
        for a in 0..n {
            for b in 0..a {
                hess[a * n + b] = hess[b * n + a];
            }
        }
        (grad, hess)
    }
}

impl LogisticModel {
    /// Fits on `x` (finite), labels `y`, optional non-negative sample weights.
    pub fn fit(
        x: &Matrix,
        y: &[bool],
        sample_weights: Option<&[f64]>,
        params: &LogisticParams,
    ) -> Result<Self> {
        check_len("labels", x.rows(), y.len())?;
        if let Some(w) = sample_weights {
            check_len("sample weights", x.rows(), w.len())?;
            if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(UpliftError::InvalidParameter {
                    name: "sample weights",
                    reason: "must be finite and non-negative".into(),
                });
            }
        }
        if x.rows() == 0 {
            return Err(UpliftError::EmptyInput {
                action: "fit a logistic regression on",
            });
        }
        if !(params.l2 >= 0.0 && params.l2.is_finite()) {
            return Err(UpliftError::InvalidParameter {
                name: "l2",
                reason: format!("must be >= 0, got {}", params.l2),
            });
        }
        x.check_finite()?;
        let problem = Problem {
            x,
            y,
            weights: sample_weights,
            l2: params.l2,
        };
        let mut beta = vec![0.0; x.cols() + 1];
        let mut loss = problem.loss(&beta);
        for iteration in 1..=params.max_iterations {
            let (grad, hess) = problem.gradient_and_hessian(&beta);
            let step = cholesky_solve(&hess, &grad, beta.len()).ok_or_else(|| {
                UpliftError::SolverFailed(
                    "the Hessian is not positive definite (collinear or constant features with l2 = 0)".into(),
                )
            })?;
            let decrement: f64 = grad.iter().zip(&step).map(|(g, s)| g * s).sum();
            if decrement / 2.0 <= params.tolerance {
                // Inside the quadratic region a last full Newton step lands on the optimum to machine precision.
                let last: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - s).collect();
                let best = if problem.loss(&last) <= loss {
                    last
                } else {
                    beta
                };
                return Ok(Self::from_beta(&best, iteration));
            }
            // Backtracking (Armijo) keeps every step a descent step even far from the optimum.
            let mut alpha = 1.0;
            loop {
                let candidate: Vec<f64> =
                    beta.iter().zip(&step).map(|(b, s)| b - alpha * s).collect();
                let candidate_loss = problem.loss(&candidate);
                if candidate_loss <= loss - 1e-4 * alpha * decrement {
                    beta = candidate;
                    loss = candidate_loss;
                    break;
                }
                alpha /= 2.0;
                if alpha < 1e-10 {
                    // No further progress is representable: the current point is as good as it gets.
                    return Ok(Self::from_beta(&beta, iteration));
                }
            }
        }
        Err(UpliftError::SolverFailed(format!(
            "no convergence in {} Newton iterations (separable data needs l2 > 0)",
            params.max_iterations
        )))
    }

    fn from_beta(beta: &[f64], iterations: usize) -> Self {
        Self {
            intercept: beta[0],
            weights: beta[1..].to_vec(),
            iterations,
        }
    }

    /// P(y = true) for one row of the width the model was fitted on.
    pub fn probability(&self, row: &[f64]) -> f64 {
        sigmoid(
            self.intercept
                + row
                    .iter()
                    .zip(&self.weights)
                    .map(|(a, b)| a * b)
                    .sum::<f64>(),
        )
    }

    /// P(y = true) for every row.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_len("feature columns", self.weights.len(), x.cols())?;
        Ok((0..x.rows()).map(|i| self.probability(x.row(i))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn unpenalised_fit_matches_the_closed_form_for_a_binary_feature() {
        // x = 0: 3 of 10 positive; x = 1: 6 of 8 positive. The MLE reproduces each group's log-odds.
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..10 {
            rows.push(vec![0.0]);
            y.push(i < 3);
        }
        for i in 0..8 {
            rows.push(vec![1.0]);
            y.push(i < 6);
        }
        let x = Matrix::from_rows(&rows).expect("matrix");
        let params = LogisticParams {
            l2: 0.0,
            ..LogisticParams::default()
        };
        let m = LogisticModel::fit(&x, &y, None, &params).expect("fit");
        assert!((m.intercept - logit(0.3)).abs() < 1e-9, "{m:?}");
        assert!(
            (m.weights[0] - (logit(0.75) - logit(0.3))).abs() < 1e-9,
            "{m:?}"
        );
        // Orientation: the positive label is `true`, however rare.
        assert!((m.probability(&[1.0]) - 0.75).abs() < 1e-9);
    }

    #[test]
    fn penalised_fit_matches_long_gradient_descent() {
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                let a = f64::from(i) / 10.0 - 2.0;
                vec![a, ((i * 7) % 11) as f64 / 5.0 - 1.0]
            })
            .collect();
        let y: Vec<bool> = (0..40).map(|i| (i * 13) % 7 < 3 + i / 14).collect();
        let x = Matrix::from_rows(&rows).expect("matrix");
        let params = LogisticParams {
            l2: 2.0,
            ..LogisticParams::default()
        };
        let m = LogisticModel::fit(&x, &y, None, &params).expect("fit");

        // Plain gradient descent on the same objective, many small steps.
        let mut beta = [0.0f64; 3];
        for _ in 0..200_000 {
            let mut grad = [0.0, 2.0 * beta[1], 2.0 * beta[2]];
            for (row, &label) in rows.iter().zip(&y) {
                let p = sigmoid(beta[0] + beta[1] * row[0] + beta[2] * row[1]);
                let r = p - if label { 1.0 } else { 0.0 };
                grad[0] += r;
                grad[1] += r * row[0];
                grad[2] += r * row[1];
            }
            for k in 0..3 {
                beta[k] -= 0.01 * grad[k];
            }
        }
        assert!((m.intercept - beta[0]).abs() < 1e-6, "{m:?} vs {beta:?}");
        assert!((m.weights[0] - beta[1]).abs() < 1e-6, "{m:?} vs {beta:?}");
        assert!((m.weights[1] - beta[2]).abs() < 1e-6, "{m:?} vs {beta:?}");
    }

    #[test]
    fn separable_data_with_a_penalty_gets_finite_weights_of_the_right_sign() {
        let x = Matrix::from_rows(&[vec![-1.0], vec![-0.5], vec![0.5], vec![1.0]]).expect("matrix");
        let y = [false, false, true, true];
        let m = LogisticModel::fit(&x, &y, None, &LogisticParams::default()).expect("fit");
        assert!(m.weights[0] > 0.5 && m.weights[0] < 10.0, "{m:?}");
        assert!(m.probability(&[1.0]) > 0.5);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let x = Matrix::from_rows(&[vec![1.0], vec![f64::NAN]]).expect("matrix");
        assert_eq!(
            LogisticModel::fit(&x, &[true, false], None, &LogisticParams::default())
                .expect_err("nan")
                .code(),
            "non_finite_feature"
        );
        let x = Matrix::from_rows(&[vec![1.0], vec![2.0]]).expect("matrix");
        assert_eq!(
            LogisticModel::fit(&x, &[true], None, &LogisticParams::default())
                .expect_err("short")
                .code(),
            "length_mismatch"
        );
        let negative = LogisticParams {
            l2: -1.0,
            ..LogisticParams::default()
        };
        assert_eq!(
            LogisticModel::fit(&x, &[true, false], None, &negative)
                .expect_err("l2")
                .code(),
            "invalid_parameter"
        );
    }

    #[test]
    fn sample_weights_act_like_repeated_rows() {
        let x = Matrix::from_rows(&[vec![0.0], vec![0.0], vec![1.0], vec![1.0]]).expect("matrix");
        let y = [true, false, true, false];
        let w = [3.0, 1.0, 1.0, 1.0];
        let params = LogisticParams {
            l2: 0.0,
            ..LogisticParams::default()
        };
        let m = LogisticModel::fit(&x, &y, Some(&w), &params).expect("fit");
        assert!((m.probability(&[0.0]) - 0.75).abs() < 1e-9);
        assert!((m.probability(&[1.0]) - 0.5).abs() < 1e-9);
    }
}
