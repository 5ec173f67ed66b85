//! A dense row-major matrix of f64: the one shape features take between the pipeline and the learners.

use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError};

/// Rows are observations (properties), columns are features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps row-major `data`; its length must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        let expected = rows
            .checked_mul(cols)
            .ok_or_else(|| UpliftError::InvalidParameter {
                name: "matrix shape",
                reason: format!("{rows} x {cols} overflows"),
            })?;
        crate::error::check_len("matrix data", expected, data.len())?;
        Ok(Self { rows, cols, data })
    }

    /// Builds from rows of equal width.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            crate::error::check_len("matrix row", cols, row.len())?;
            data.extend_from_slice(row);
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            data,
        })
    }

    pub const fn rows(&self) -> usize {
        self.rows
    }

    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// One row's features.
    pub fn row(&self, index: usize) -> &[f64] {
        &self.data[index * self.cols..(index + 1) * self.cols]
    }

    /// The whole row-major buffer.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// A new matrix holding the given rows, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// A new matrix with one extra column appended on the right.
    pub fn with_column(&self, column: &[f64]) -> Result<Self> {
        crate::error::check_len("appended column", self.rows, column.len())?;
        let mut data = Vec::with_capacity(self.rows * (self.cols + 1));
        for (i, value) in column.iter().enumerate() {
            data.extend_from_slice(self.row(i));
            data.push(*value);
        }
        Ok(Self {
            rows: self.rows,
            cols: self.cols + 1,
            data,
        })
    }

    /// The first non-finite cell, if any.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        let position = self.data.iter().position(|v| !v.is_finite())?;
        Some((position / self.cols.max(1), position % self.cols.max(1)))
    }

    /// Refuses a matrix holding NaN or infinity.
    pub fn check_finite(&self) -> Result<()> {
        match self.first_non_finite() {
            Some((row, column)) => Err(UpliftError::NonFiniteFeature { row, column }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_checked_and_rows_are_addressable() {
        assert_eq!(
            Matrix::new(2, 3, vec![0.0; 5]).expect_err("short").code(),
            "length_mismatch"
        );
        let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]]).expect("matrix");
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.select_rows(&[1, 0]).row(0), &[3.0, 4.0]);
        assert_eq!(
            m.with_column(&[9.0, 8.0]).expect("col").row(1),
            &[3.0, 4.0, 8.0]
        );
        let bad = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, f64::NAN]]).expect("matrix");
        assert_eq!(
            bad.check_finite(),
            Err(UpliftError::NonFiniteFeature { row: 1, column: 1 })
        );
    }
}
