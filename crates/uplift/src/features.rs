//! The feature pipeline: named numeric and categorical columns in, a dense matrix out. Numeric columns
//! are standard-scaled with training statistics; a missing value (None, NaN or infinity) is imputed with
//! the training mean and flagged in a missing-indicator column; categories are one-hot encoded.

use std::collections::BTreeSet;

use domain::Property;
use serde::{Deserialize, Serialize};

use crate::error::{Result, UpliftError, check_len};
use crate::matrix::Matrix;

/// Raw columns by name, before encoding. Numeric missing values are NaN; categorical ones are None.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTable {
    rows: usize,
    numeric: Vec<(String, Vec<f64>)>,
    categorical: Vec<(String, Vec<Option<String>>)>,
}

impl RawTable {
    /// An empty table of `rows` rows to which columns are added.
    pub fn new(rows: usize) -> Self {
        Self {
            rows,
            numeric: Vec::new(),
            categorical: Vec::new(),
        }
    }

    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Adds a numeric column; None, NaN and infinity all count as missing.
    pub fn with_numeric(mut self, name: &str, values: Vec<Option<f64>>) -> Result<Self> {
        check_len("numeric column", self.rows, values.len())?;
        let values = values
            .into_iter()
            .map(|v| v.filter(|x| x.is_finite()).unwrap_or(f64::NAN))
            .collect();
        self.numeric.push((name.to_owned(), values));
        Ok(self)
    }

    /// Adds a categorical column; None counts as missing.
    pub fn with_categorical(mut self, name: &str, values: Vec<Option<String>>) -> Result<Self> {
        check_len("categorical column", self.rows, values.len())?;
        self.categorical.push((name.to_owned(), values));
        Ok(self)
    }

    /// A new table holding the given rows, in that order (e.g. a train or test split).
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(UpliftError::InvalidParameter {
                name: "rows",
                reason: format!("row {bad} is beyond the table's {} rows", self.rows),
            });
        }
        Ok(Self {
            rows: rows.len(),
            numeric: self
                .numeric
                .iter()
                .map(|(n, v)| (n.clone(), rows.iter().map(|&r| v[r]).collect()))
                .collect(),
            categorical: self
                .categorical
                .iter()
                .map(|(n, v)| (n.clone(), rows.iter().map(|&r| v[r].clone()).collect()))
                .collect(),
        })
    }

    fn numeric_column(&self, name: &str) -> Result<&[f64]> {
        self.numeric
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| UpliftError::UnknownColumn(name.to_owned()))
    }

    fn categorical_column(&self, name: &str) -> Result<&[Option<String>]> {
        self.categorical
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| UpliftError::UnknownColumn(name.to_owned()))
    }
}

/// Which columns the pipeline encodes, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub numeric: Vec<String>,
    pub categorical: Vec<String>,
}

impl FeatureSpec {
    pub fn new(numeric: &[&str], categorical: &[&str]) -> Self {
        Self {
            numeric: numeric.iter().map(|s| (*s).to_owned()).collect(),
            categorical: categorical.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Training statistics of one numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NumericEncoding {
    name: String,
    mean: f64,
    scale: f64,
    /// Only columns that had missing values in training get an indicator, so the width is fixed at fit time.
    missing_indicator: bool,
}

/// The levels seen in training for one categorical column, sorted for a deterministic layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CategoricalEncoding {
    name: String,
    levels: Vec<String>,
    /// Missing gets its own column when training had missing values.
    missing_level: bool,
}

/// A pipeline fitted on training data; applies the same encoding to any later table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedPipeline {
    numeric: Vec<NumericEncoding>,
    categorical: Vec<CategoricalEncoding>,
}

impl FittedPipeline {
    /// Learns means, scales and category levels from `training`.
    pub fn fit(spec: &FeatureSpec, training: &RawTable) -> Result<Self> {
        if training.rows == 0 {
            return Err(UpliftError::EmptyInput {
                action: "fit the feature pipeline on",
            });
        }
        let mut numeric = Vec::with_capacity(spec.numeric.len());
        for name in &spec.numeric {
            let column = training.numeric_column(name)?;
            let (mut n, mut sum) = (0usize, 0.0);
            for v in column.iter().filter(|v| v.is_finite()) {
                n += 1;
                sum += v;
            }
            // An all-missing column carries no information but must not poison the matrix: centre at 0.
            let mean = if n == 0 { 0.0 } else { sum / n as f64 };
            let variance = column
                .iter()
                .filter(|v| v.is_finite())
                .map(|v| (v - mean) * (v - mean))
                .sum::<f64>()
                / n.max(1) as f64;
            let std = variance.sqrt();
            // A constant column would divide by zero; leaving it unscaled makes it a zero column after centring.
            let scale = if std > 1e-12 { std } else { 1.0 };
            numeric.push(NumericEncoding {
                name: name.clone(),
                mean,
                scale,
                missing_indicator: n < column.len(),
            });
        }
        let mut categorical = Vec::with_capacity(spec.categorical.len());
        for name in &spec.categorical {
            let column = training.categorical_column(name)?;
            let levels: BTreeSet<&str> = column.iter().flatten().map(String::as_str).collect();
            categorical.push(CategoricalEncoding {
                name: name.clone(),
                levels: levels.into_iter().map(str::to_owned).collect(),
                missing_level: column.iter().any(Option::is_none),
            });
        }
        Ok(Self {
            numeric,
            categorical,
        })
    }

    /// The encoded column names, in matrix order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for n in &self.numeric {
            names.push(n.name.clone());
            if n.missing_indicator {
                names.push(format!("{}_missing", n.name));
            }
        }
        for c in &self.categorical {
            names.extend(c.levels.iter().map(|l| format!("{}={l}", c.name)));
            if c.missing_level {
                names.push(format!("{}_missing", c.name));
            }
        }
        names
    }

    pub fn width(&self) -> usize {
        self.numeric
            .iter()
            .map(|n| 1 + usize::from(n.missing_indicator))
            .sum::<usize>()
            + self
                .categorical
                .iter()
                .map(|c| c.levels.len() + usize::from(c.missing_level))
                .sum::<usize>()
    }

    /// Encodes `table`. A category unseen in training encodes as all zeros (no level lights up); a
    /// missing value in a column that had none in training is imputed without an indicator.
    pub fn transform(&self, table: &RawTable) -> Result<Matrix> {
        let width = self.width();
        let mut data = vec![0.0; table.rows * width];
        let mut offset = 0;
        for n in &self.numeric {
            let column = table.numeric_column(&n.name)?;
            for (row, v) in column.iter().enumerate() {
                let cell = row * width + offset;
                if v.is_finite() {
                    data[cell] = (v - n.mean) / n.scale;
                } else if n.missing_indicator {
                    // The imputed mean scales to 0; the indicator carries the missingness.
                    data[cell + 1] = 1.0;
                }
            }
            offset += 1 + usize::from(n.missing_indicator);
        }
        for c in &self.categorical {
            let column = table.categorical_column(&c.name)?;
            for (row, v) in column.iter().enumerate() {
                let base = row * width + offset;
                match v {
                    Some(level) => {
                        if let Ok(i) = c.levels.binary_search_by(|l| l.as_str().cmp(level)) {
                            data[base + i] = 1.0;
                        }
                    }
                    None if c.missing_level => data[base + c.levels.len()] = 1.0,
                    None => {}
                }
            }
            offset += c.levels.len() + usize::from(c.missing_level);
        }
        Matrix::new(table.rows, width, data)
    }
}

/// The property attributes the uplift model uses, as column names.
pub fn property_feature_spec() -> FeatureSpec {
    FeatureSpec::new(
        &[
            "roof_age_years",
            "square_feet",
            "home_value_dollars",
            "hail_size_in",
            "distance_to_core_km",
            "prior_claims",
        ],
        &["roof_material"],
    )
}

/// The raw feature table of properties (columns of `property_feature_spec`).
pub fn property_table(properties: &[Property]) -> Result<RawTable> {
    let column =
        |f: &dyn Fn(&Property) -> Option<f64>| properties.iter().map(f).collect::<Vec<_>>();
    RawTable::new(properties.len())
        .with_numeric("roof_age_years", column(&|p| p.roof_age_years))?
        .with_numeric("square_feet", column(&|p| p.square_feet))?
        .with_numeric(
            "home_value_dollars",
            column(&|p| p.home_value.map(|c| c.0 as f64 / 100.0)),
        )?
        .with_numeric("hail_size_in", column(&|p| p.hail_size_in))?
        .with_numeric("distance_to_core_km", column(&|p| p.distance_to_core_km))?
        .with_numeric("prior_claims", column(&|p| Some(f64::from(p.prior_claims))))?
        .with_categorical(
            "roof_material",
            properties
                .iter()
                .map(|p| p.roof_material.map(|m| m.as_str().to_owned()))
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RawTable {
        RawTable::new(4)
            .with_numeric("age", vec![Some(10.0), Some(20.0), None, Some(f64::NAN)])
            .and_then(|t| t.with_numeric("size", vec![Some(1.0), Some(3.0), Some(1.0), Some(3.0)]))
            .and_then(|t| {
                t.with_categorical(
                    "roof",
                    vec![
                        Some("metal".into()),
                        Some("asphalt".into()),
                        None,
                        Some("metal".into()),
                    ],
                )
            })
            .expect("table")
    }

    #[test]
    fn scaling_imputation_and_one_hot_use_training_statistics() {
        let spec = FeatureSpec::new(&["age", "size"], &["roof"]);
        let pipeline = FittedPipeline::fit(&spec, &table()).expect("fit");
        assert_eq!(
            pipeline.feature_names(),
            [
                "age",
                "age_missing",
                "size",
                "roof=asphalt",
                "roof=metal",
                "roof_missing"
            ]
        );
        let m = pipeline.transform(&table()).expect("transform");
        assert_eq!(m.cols(), 6);
        // age: mean 15, population std 5.
        assert_eq!(m.row(0), &[-1.0, 0.0, -1.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.row(1), &[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(m.row(2), &[0.0, 1.0, -1.0, 0.0, 0.0, 1.0]);
        assert_eq!(m.row(3), &[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        assert!(m.check_finite().is_ok());
    }

    #[test]
    fn later_tables_reuse_the_fitted_layout() {
        let spec = FeatureSpec::new(&["age", "size"], &["roof"]);
        let pipeline = FittedPipeline::fit(&spec, &table()).expect("fit");
        let later = RawTable::new(1)
            .with_numeric("age", vec![Some(25.0)])
            .and_then(|t| t.with_numeric("size", vec![None]))
            .and_then(|t| t.with_categorical("roof", vec![Some("tile".into())]))
            .expect("table");
        let m = pipeline.transform(&later).expect("transform");
        // Unseen category "tile" lights no level; missing size imputes to the mean (0 after scaling).
        assert_eq!(m.row(0), &[2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_tables_are_refused() {
        let spec = FeatureSpec::new(&["age"], &[]);
        let err = FittedPipeline::fit(&spec, &RawTable::new(0)).expect_err("empty");
        assert_eq!(err.code(), "empty_input");
        let err = FittedPipeline::fit(&FeatureSpec::new(&["height"], &[]), &table())
            .expect_err("unknown");
        assert_eq!(err, UpliftError::UnknownColumn("height".into()));
        assert_eq!(
            table().select_rows(&[4]).expect_err("row").code(),
            "invalid_parameter"
        );
        assert_eq!(table().select_rows(&[3, 0]).expect("rows").rows(), 2);
        let err = RawTable::new(2)
            .with_numeric("age", vec![Some(1.0)])
            .expect_err("short");
        assert_eq!(err.code(), "length_mismatch");
    }

    #[test]
    fn an_all_missing_column_stays_finite() {
        let t = RawTable::new(2)
            .with_numeric("x", vec![None, None])
            .expect("table");
        let pipeline = FittedPipeline::fit(&FeatureSpec::new(&["x"], &[]), &t).expect("fit");
        let m = pipeline.transform(&t).expect("transform");
        assert_eq!(m.as_slice(), &[0.0, 1.0, 0.0, 1.0]);
    }
}
