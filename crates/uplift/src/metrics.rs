//! Uplift quality metrics with scikit-uplift 0.5.1's exact definitions: Qini and uplift curves (ties
//! grouped, stable mergesort reversed, (0, 0) prepended), perfect curves, Qini AUC, AUUC, uplift at k.
//!
//! Outcomes and treatment flags are booleans; scores are finite f64 (NaN is refused, not sorted).

use std::cmp::Ordering;

use crate::error::{Result, UpliftError, check_len};

/// A curve: x is a row count (fractional only for the perfect Qini curve without negative effects).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// How `uplift_at_k` takes its top slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKStrategy {
    /// The top ⌊k·N⌋ rows, whatever their group.
    Overall,
    /// The top ⌊k·N_T⌋ treated rows and the top ⌊k·N_C⌋ control rows, separately.
    ByGroup,
}

fn check_inputs(converted: &[bool], scores: &[f64], treated: &[bool]) -> Result<()> {
    check_len("scores", converted.len(), scores.len())?;
    check_len("treatment flags", converted.len(), treated.len())?;
    if converted.is_empty() {
        return Err(UpliftError::EmptyInput { action: "score" });
    }
    if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
        return Err(UpliftError::NonFiniteScore { row });
    }
    Ok(())
}

/// Row indices by descending score exactly as `np.argsort(kind="mergesort")[::-1]`: a stable ascending
/// sort, then reversed, so among equal scores the later row comes first (this matters for uplift at k).
fn descending_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Scores are checked finite before this, so partial_cmp always answers; -0.0 == 0.0 as in numpy.
    order.sort_by(|&a, &b| scores[a].partial_cmp(&scores[b]).unwrap_or(Ordering::Equal));
    order.reverse();
    order
}

/// Cumulative counts at the last row of each run of equal scores.
struct Thresholds {
    rows: Vec<f64>,
    treated: Vec<f64>,
    treated_responders: Vec<f64>,
    control_responders: Vec<f64>,
}

fn thresholds(converted: &[bool], scores: &[f64], treated: &[bool]) -> Thresholds {
    let order = descending_order(scores);
    let mut out = Thresholds {
        rows: Vec::new(),
        treated: Vec::new(),
        treated_responders: Vec::new(),
        control_responders: Vec::new(),
    };
    let (mut n_t, mut y_t, mut y_c) = (0.0, 0.0, 0.0);
    for (position, &row) in order.iter().enumerate() {
        if treated[row] {
            n_t += 1.0;
            if converted[row] {
                y_t += 1.0;
            }
        } else if converted[row] {
            y_c += 1.0;
        }
        let last_of_run = order
            .get(position + 1)
            .is_none_or(|&next| scores[next] != scores[row]);
        if last_of_run {
            out.rows.push((position + 1) as f64);
            out.treated.push(n_t);
            out.treated_responders.push(y_t);
            out.control_responders.push(y_c);
        }
    }
    out
}

fn ratio_or_zero(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}

fn with_origin(x: Vec<f64>, y: Vec<f64>) -> Curve {
    // sklift prepends (0, 0) whenever the first point is not already the origin, which for
    // non-empty input is always (the first x is at least one row).
    let mut cx = Vec::with_capacity(x.len() + 1);
    let mut cy = Vec::with_capacity(y.len() + 1);
    cx.push(0.0);
    cy.push(0.0);
    cx.extend(x);
    cy.extend(y);
    Curve { x: cx, y: cy }
}

/// Qini curve: Q(k) = Y_T(k) − Y_C(k)·N_T(k)/N_C(k), the ratio term 0 while N_C(k) = 0.
pub fn qini_curve(converted: &[bool], scores: &[f64], treated: &[bool]) -> Result<Curve> {
    check_inputs(converted, scores, treated)?;
    let t = thresholds(converted, scores, treated);
    let y = (0..t.rows.len())
        .map(|i| {
            let n_c = t.rows[i] - t.treated[i];
            t.treated_responders[i] - t.control_responders[i] * ratio_or_zero(t.treated[i], n_c)
        })
        .collect();
    Ok(with_origin(t.rows, y))
}

/// Uplift curve: G(k) = (Y_T(k)/N_T(k) − Y_C(k)/N_C(k))·k, a group's mean 0 while the group is empty.
pub fn uplift_curve(converted: &[bool], scores: &[f64], treated: &[bool]) -> Result<Curve> {
    check_inputs(converted, scores, treated)?;
    let t = thresholds(converted, scores, treated);
    let y = (0..t.rows.len())
        .map(|i| {
            let n_c = t.rows[i] - t.treated[i];
            (ratio_or_zero(t.treated_responders[i], t.treated[i])
                - ratio_or_zero(t.control_responders[i], n_c))
                * t.rows[i]
        })
        .collect();
    Ok(with_origin(t.rows, y))
}

/// The overall effect R = Y_T − N_T·Y_C/N_C.
fn total_qini_effect(converted: &[bool], treated: &[bool]) -> Result<f64> {
    let (mut n_t, mut y_t, mut n_c, mut y_c) = (0.0, 0.0, 0.0, 0.0);
    for (&y, &t) in converted.iter().zip(treated) {
        let yv = if y { 1.0 } else { 0.0 };
        if t {
            n_t += 1.0;
            y_t += yv;
        } else {
            n_c += 1.0;
            y_c += yv;
        }
    }
    if n_c == 0.0 {
        return Err(UpliftError::DegenerateInput {
            reason: "no control rows".into(),
        });
    }
    Ok(y_t - n_t * y_c / n_c)
}

/// Perfect Qini curve. With `negative_effect` it is the Qini curve of the score y·t − y·(1 − t);
/// without, the points (0, 0), (R, R), (N, R), which needs R > 0 (else `no_positive_effect`).
pub fn perfect_qini_curve(
    converted: &[bool],
    treated: &[bool],
    negative_effect: bool,
) -> Result<Curve> {
    check_len("treatment flags", converted.len(), treated.len())?;
    if converted.is_empty() {
        return Err(UpliftError::EmptyInput { action: "score" });
    }
    if negative_effect {
        let ideal: Vec<f64> = converted
            .iter()
            .zip(treated)
            .map(|(&y, &t)| match (y, t) {
                (true, true) => 1.0,
                (true, false) => -1.0,
                (false, _) => 0.0,
            })
            .collect();
        qini_curve(converted, &ideal, treated)
    } else {
        let r = total_qini_effect(converted, treated)?;
        if r <= 0.0 {
            return Err(UpliftError::NoPositiveEffect { total_effect: r });
        }
        let n = converted.len() as f64;
        Ok(Curve {
            x: vec![0.0, r, n],
            y: vec![0.0, r, r],
        })
    }
}

/// Perfect uplift curve: the uplift curve of 2·1{y = t} + (y if CR > TN else t), CR = control
/// responders, TN = treated non-responders.
pub fn perfect_uplift_curve(converted: &[bool], treated: &[bool]) -> Result<Curve> {
    check_len("treatment flags", converted.len(), treated.len())?;
    let control_responders = converted
        .iter()
        .zip(treated)
        .filter(|&(&y, &t)| y && !t)
        .count();
    let treated_non_responders = converted
        .iter()
        .zip(treated)
        .filter(|&(&y, &t)| !y && t)
        .count();
    let ideal: Vec<f64> = converted
        .iter()
        .zip(treated)
        .map(|(&y, &t)| {
            let summand = if control_responders > treated_non_responders {
                y
            } else {
                t
            };
            2.0 * f64::from(u8::from(y == t)) + f64::from(u8::from(summand))
        })
        .collect();
    uplift_curve(converted, &ideal, treated)
}

/// Area under a curve by the trapezoid rule (x non-decreasing).
pub fn trapezoid_area(curve: &Curve) -> f64 {
    curve
        .x
        .windows(2)
        .zip(curve.y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

fn normalised_area(actual: &Curve, perfect: &Curve) -> Result<f64> {
    let last_x = perfect.x.last().copied().unwrap_or(0.0);
    let last_y = perfect.y.last().copied().unwrap_or(0.0);
    let random = Curve {
        x: vec![0.0, last_x],
        y: vec![0.0, last_y],
    };
    let random_area = trapezoid_area(&random);
    let perfect_gain = trapezoid_area(perfect) - random_area;
    if perfect_gain == 0.0 || !perfect_gain.is_finite() {
        return Err(UpliftError::DegenerateInput {
            reason: "the perfect curve has no area above random".into(),
        });
    }
    Ok((trapezoid_area(actual) - random_area) / perfect_gain)
}

/// Qini coefficient (`qini_auc_score`): (AUC_model − AUC_random)/(AUC_perfect − AUC_random).
pub fn qini_auc_score(
    converted: &[bool],
    scores: &[f64],
    treated: &[bool],
    negative_effect: bool,
) -> Result<f64> {
    let actual = qini_curve(converted, scores, treated)?;
    let perfect = perfect_qini_curve(converted, treated, negative_effect)?;
    normalised_area(&actual, &perfect)
}

/// AUUC (`uplift_auc_score`): the same ratio with the uplift curves.
pub fn uplift_auc_score(converted: &[bool], scores: &[f64], treated: &[bool]) -> Result<f64> {
    let actual = uplift_curve(converted, scores, treated)?;
    let perfect = perfect_uplift_curve(converted, treated)?;
    normalised_area(&actual, &perfect)
}

fn mean_of(values: impl Iterator<Item = bool>) -> f64 {
    let (mut n, mut sum) = (0usize, 0usize);
    for v in values {
        n += 1;
        sum += usize::from(v);
    }
    // numpy's mean of an empty slice is NaN; uplift at k inherits that.
    if n == 0 {
        f64::NAN
    } else {
        sum as f64 / n as f64
    }
}

/// Uplift at k (a fraction in (0, 1)): treated conversion minus control conversion in the top slice.
/// NaN when the slice has no control (or no treated) rows, as in scikit-uplift.
pub fn uplift_at_k(
    converted: &[bool],
    scores: &[f64],
    treated: &[bool],
    k: f64,
    strategy: TopKStrategy,
) -> Result<f64> {
    check_inputs(converted, scores, treated)?;
    if !(k > 0.0 && k < 1.0) {
        return Err(UpliftError::InvalidParameter {
            name: "k",
            reason: format!("must be in (0, 1), got {k}"),
        });
    }
    let n_treated = treated.iter().filter(|&&t| t).count();
    let n_control = treated.len() - n_treated;
    if n_treated == 0 || n_control == 0 {
        return Err(UpliftError::DegenerateInput {
            reason: "uplift at k needs treated and control rows".into(),
        });
    }
    let order = descending_order(scores);
    let (score_treated, score_control) = match strategy {
        TopKStrategy::Overall => {
            let size = (converted.len() as f64 * k).floor() as usize;
            let top = &order[..size];
            (
                mean_of(top.iter().filter(|&&i| treated[i]).map(|&i| converted[i])),
                mean_of(top.iter().filter(|&&i| !treated[i]).map(|&i| converted[i])),
            )
        }
        TopKStrategy::ByGroup => {
            let size_t = (n_treated as f64 * k).floor() as usize;
            let size_c = (n_control as f64 * k).floor() as usize;
            (
                mean_of(
                    order
                        .iter()
                        .filter(|&&i| treated[i])
                        .take(size_t)
                        .map(|&i| converted[i]),
                ),
                mean_of(
                    order
                        .iter()
                        .filter(|&&i| !treated[i])
                        .take(size_c)
                        .map(|&i| converted[i]),
                ),
            )
        }
    };
    Ok(score_treated - score_control)
}

/// Spearman rank correlation (average ranks for ties). NaN when either side is constant.
pub fn spearman_correlation(a: &[f64], b: &[f64]) -> Result<f64> {
    check_len("second series", a.len(), b.len())?;
    if a.len() < 2 {
        return Err(UpliftError::EmptyInput {
            action: "correlate",
        });
    }
    if let Some(row) = a.iter().chain(b).position(|v| !v.is_finite()) {
        return Err(UpliftError::NonFiniteScore { row: row % a.len() });
    }
    Ok(pearson(&average_ranks(a), &average_ranks(b)))
}

fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&x, &y| values[x].partial_cmp(&values[y]).unwrap_or(Ordering::Equal));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end - 1) as f64 / 2.0 + 1.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut cov, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - mean_a) * (y - mean_b);
        var_a += (x - mean_a) * (x - mean_a);
        var_b += (y - mean_b) * (y - mean_b);
    }
    cov / (var_a * var_b).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The golden values of research/uplift-metrics.md are printed to 4-6 digits.
    const TOL: f64 = 1e-6;
    // Values printed with four decimals (e.g. 0.3333) are compared at that precision.
    const TOL_4DP: f64 = 5e-5;

    fn flags(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }
    fn y() -> Vec<bool> {
        flags(&[1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0])
    }
    fn t() -> Vec<bool> {
        flags(&[1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0])
    }
    const DISTINCT: [f64; 12] = [0.9, 0.8, 0.7, 0.65, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0];
    const TIED: [f64; 12] = [0.9, 0.9, 0.7, 0.7, 0.6, 0.5, 0.5, 0.3, 0.2, 0.1, 0.1, 0.0];

    fn assert_close_all(actual: &[f64], expected: &[f64], tol: f64) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() <= tol, "{actual:?} vs {expected:?}");
        }
    }

    fn assert_close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "got {actual}, expected {expected}"
        );
    }

    fn zero_to_twelve() -> Vec<f64> {
        (0..=12).map(f64::from).collect()
    }

    #[test]
    fn golden_qini_curve_distinct_scores() {
        let c = qini_curve(&y(), &DISTINCT, &t()).expect("curve");
        assert_close_all(&c.x, &zero_to_twelve(), 0.0);
        let expected = [
            0.0, 1.0, 1.0, 2.0, -1.0, 0.5, 1.0, 0.3333, -0.3333, 0.5, 1.0, 0.6, 1.0,
        ];
        assert_close_all(&c.y, &expected, TOL_4DP);
    }

    #[test]
    fn golden_perfect_qini_curve_with_negative_effect() {
        let c = perfect_qini_curve(&y(), &t(), true).expect("curve");
        assert_close_all(&c.x, &[0.0, 3.0, 10.0, 12.0], 0.0);
        assert_close_all(&c.y, &[0.0, 3.0, 3.0, 1.0], TOL);
    }

    #[test]
    fn golden_uplift_curve_distinct_scores() {
        let c = uplift_curve(&y(), &DISTINCT, &t()).expect("curve");
        assert_close_all(&c.x, &zero_to_twelve(), 0.0);
        let expected = [
            0.0, 1.0, 1.0, 2.0, -1.3333, 0.8333, 1.5, 0.5833, -0.5333, 0.9, 2.0, 1.1, 2.0,
        ];
        assert_close_all(&c.y, &expected, TOL_4DP);
    }

    #[test]
    fn golden_perfect_uplift_curve() {
        let c = perfect_uplift_curve(&y(), &t()).expect("curve");
        assert_close_all(&c.x, &[0.0, 3.0, 7.0, 10.0, 12.0], 0.0);
        assert_close_all(&c.y, &[0.0, 3.0, 7.0, 5.0, 2.0], TOL);
    }

    #[test]
    fn golden_auc_scores_distinct_scores() {
        assert_close(
            qini_auc_score(&y(), &DISTINCT, &t(), true).expect("qini"),
            0.046809,
            TOL,
        );
        assert_close(
            qini_auc_score(&y(), &DISTINCT, &t(), false).expect("qini"),
            0.200000,
            TOL,
        );
        assert_close(
            uplift_auc_score(&y(), &DISTINCT, &t()).expect("auuc"),
            -0.052000,
            TOL,
        );
    }

    #[test]
    fn golden_uplift_at_k_distinct_scores() {
        let (y, t) = (y(), t());
        assert_close(
            uplift_at_k(&y, &DISTINCT, &t, 0.5, TopKStrategy::Overall).expect("k"),
            0.25,
            TOL,
        );
        assert_close(
            uplift_at_k(&y, &DISTINCT, &t, 0.5, TopKStrategy::ByGroup).expect("k"),
            0.0,
            TOL,
        );
        assert!(
            uplift_at_k(&y, &DISTINCT, &t, 0.25, TopKStrategy::Overall)
                .expect("k")
                .is_nan()
        );
    }

    #[test]
    fn golden_tied_scores() {
        let (y, t) = (y(), t());
        let c = qini_curve(&y, &TIED, &t).expect("curve");
        assert_close_all(&c.x, &[0.0, 2.0, 4.0, 5.0, 7.0, 8.0, 9.0, 11.0, 12.0], 0.0);
        assert_close_all(
            &c.y,
            &[0.0, 1.0, -1.0, 0.5, 0.3333, -0.3333, 0.5, 0.6, 1.0],
            TOL_4DP,
        );
        assert_close(
            qini_auc_score(&y, &TIED, &t, true).expect("qini"),
            -0.103546,
            TOL,
        );
        assert_close(
            qini_auc_score(&y, &TIED, &t, false).expect("qini"),
            -0.442424,
            TOL,
        );
        assert_close(
            uplift_auc_score(&y, &TIED, &t).expect("auuc"),
            -0.170889,
            TOL,
        );
        assert_close(
            uplift_at_k(&y, &TIED, &t, 0.5, TopKStrategy::Overall).expect("k"),
            0.0,
            TOL,
        );
        // Depends on the reversed stable sort: rows 1, 0, 3 come first, not 0, 1, 2.
        assert_close(
            uplift_at_k(&y, &TIED, &t, 0.25, TopKStrategy::Overall).expect("k"),
            -0.5,
            TOL,
        );
    }

    #[test]
    fn perfect_scores_reach_one_and_reversed_scores_go_below_zero() {
        let (y, t) = (y(), t());
        let ideal: Vec<f64> = y
            .iter()
            .zip(&t)
            .map(|(&y, &t)| {
                if y && t {
                    1.0
                } else if y {
                    -1.0
                } else {
                    0.0
                }
            })
            .collect();
        assert_close(
            qini_auc_score(&y, &ideal, &t, true).expect("qini"),
            1.0,
            1e-12,
        );
        let reversed: Vec<f64> = ideal.iter().map(|s| -s).collect();
        assert!(qini_auc_score(&y, &reversed, &t, true).expect("qini") < 0.0);
    }

    #[test]
    fn bad_metric_inputs_are_refused() {
        let (y, t) = (y(), t());
        assert_eq!(
            qini_curve(&y, &DISTINCT[..5], &t)
                .expect_err("short")
                .code(),
            "length_mismatch"
        );
        assert_eq!(
            qini_curve(&[], &[], &[]).expect_err("empty").code(),
            "empty_input"
        );
        let mut nan = DISTINCT;
        nan[3] = f64::NAN;
        assert_eq!(
            uplift_curve(&y, &nan, &t).expect_err("nan"),
            UpliftError::NonFiniteScore { row: 3 }
        );
        assert_eq!(
            uplift_at_k(&y, &DISTINCT, &t, 1.0, TopKStrategy::Overall)
                .expect_err("k")
                .code(),
            "invalid_parameter"
        );
        // Control converts more than treatment: R < 0, so the non-negative perfect curve is undefined.
        let y2 = flags(&[0, 1, 1, 1]);
        let t2 = flags(&[1, 0, 1, 0]);
        let err = perfect_qini_curve(&y2, &t2, false).expect_err("negative R");
        assert_eq!(err.code(), "no_positive_effect");
        assert_eq!(
            qini_auc_score(&y2, &[0.1, 0.2, 0.3, 0.4], &t2, false)
                .expect_err("negative R")
                .code(),
            "no_positive_effect"
        );
    }

    #[test]
    fn spearman_matches_hand_computed_values() {
        assert_close(
            spearman_correlation(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]).expect("rho"),
            1.0,
            1e-12,
        );
        assert_close(
            spearman_correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).expect("rho"),
            -1.0,
            1e-12,
        );
        // Ranks [1, 2.5, 2.5, 4] against [1, 2, 3, 4]: r = 4.5 / sqrt(4.5 * 5).
        assert_close(
            spearman_correlation(&[1.0, 2.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0]).expect("rho"),
            4.5 / (4.5f64 * 5.0).sqrt(),
            1e-12,
        );
    }
}
