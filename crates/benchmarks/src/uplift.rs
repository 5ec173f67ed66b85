//! The uplift benchmark: training and scoring speed on synthetic storms, and every learner's quality
//! (Qini, AUUC, uplift at 30%) on the public Hillstrom e-mail data, with the S-learner as the weak reference.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use uplift::Matrix;
use uplift::boosting::BoostingParams;
use uplift::features::{FeatureSpec, FittedPipeline, RawTable};
use uplift::learners::{BoostedTLearner, ClassTransformation, SLearner, TLearner, UpliftLearner};
use uplift::metrics::{TopKStrategy, qini_auc_score, uplift_at_k, uplift_auc_score};
use uplift::synthetic::{SyntheticStorm, SyntheticStormConfig};

/// The seed of the Hillstrom split.
pub const SPLIT_SEED: u64 = 42;
/// The share of each stratum that goes to the test set.
pub const TEST_SHARE: f64 = 0.3;

/// The Hillstrom rows of the usual uplift task: "Womens E-Mail" (treated) against "No E-Mail" (control).
#[derive(Debug, Clone)]
pub struct HillstromData {
    pub table: RawTable,
    pub treated: Vec<bool>,
    pub visit: Vec<bool>,
}

/// Reads the gzip CSV, keeping the two segments in file order.
pub fn load_hillstrom(path: &Path) -> anyhow::Result<HillstromData> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(BufReader::new(file)));
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name}"))
    };
    let (recency, history_segment, history, mens, womens, zip, newbie, channel, segment, visit) = (
        column("recency")?,
        column("history_segment")?,
        column("history")?,
        column("mens")?,
        column("womens")?,
        column("zip_code")?,
        column("newbie")?,
        column("channel")?,
        column("segment")?,
        column("visit")?,
    );
    let mut numeric: [Vec<Option<f64>>; 5] = Default::default();
    let mut categorical: [Vec<Option<String>>; 3] = Default::default();
    let (mut treated, mut visits) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record?;
        let is_treated = match &record[segment] {
            "Womens E-Mail" => true,
            "No E-Mail" => false,
            _ => continue,
        };
        for (slot, index) in numeric
            .iter_mut()
            .zip([recency, history, mens, womens, newbie])
        {
            slot.push(Some(
                record[index]
                    .parse::<f64>()
                    .with_context(|| format!("bad number {}", &record[index]))?,
            ));
        }
        for (slot, index) in categorical.iter_mut().zip([history_segment, zip, channel]) {
            slot.push(Some(record[index].to_owned()));
        }
        treated.push(is_treated);
        visits.push(&record[visit] == "1");
    }
    let [recency_v, history_v, mens_v, womens_v, newbie_v] = numeric;
    let [segment_v, zip_v, channel_v] = categorical;
    let table = RawTable::new(treated.len())
        .with_numeric("recency", recency_v)?
        .with_numeric("history", history_v)?
        .with_numeric("mens", mens_v)?
        .with_numeric("womens", womens_v)?
        .with_numeric("newbie", newbie_v)?
        .with_categorical("history_segment", segment_v)?
        .with_categorical("zip_code", zip_v)?
        .with_categorical("channel", channel_v)?;
    Ok(HillstromData {
        table,
        treated,
        visit: visits,
    })
}

/// The Hillstrom feature columns.
pub fn hillstrom_spec() -> FeatureSpec {
    FeatureSpec::new(
        &["recency", "history", "mens", "womens", "newbie"],
        &["history_segment", "zip_code", "channel"],
    )
}

/// Stratified split: strata (treated, visit) in the order (0,0), (0,1), (1,0), (1,1); each stratum's
/// row indices (file order) are shuffled by one ChaCha8 stream seeded with `seed` (rand 0.8
/// `SliceRandom::shuffle`), and the first round(share·n) go to test. Returns (train, test), each sorted.
pub fn stratified_split(
    treated: &[bool],
    outcome: &[bool],
    share: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (t, y) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut stratum: Vec<usize> = (0..treated.len())
            .filter(|&i| treated[i] == t && outcome[i] == y)
            .collect();
        stratum.shuffle(&mut rng);
        let cut = (share * stratum.len() as f64).round() as usize;
        test.extend_from_slice(&stratum[..cut]);
        train.extend_from_slice(&stratum[cut..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| values[i]).collect()
}

/// Runs the suite and returns its Markdown section.
pub fn run(shared_data_dir: &Path) -> anyhow::Result<String> {
    let mut out = String::new();

    // Speed on synthetic storms.
    let train = SyntheticStorm::generate(&SyntheticStormConfig {
        properties: 100_000,
        seed: 1,
        ..Default::default()
    })?;
    let (pipeline, x) = train.feature_matrix()?;
    let treated = train.treated();
    let runs = 7;
    let mut t_times = Vec::new();
    let mut t_model = None;
    for _ in 0..runs {
        let start = Instant::now();
        let model = TLearner::default().fit(&x, &treated, &train.converted)?;
        t_times.push(start.elapsed());
        t_model = Some(model);
    }
    let Some(t_model) = t_model else {
        bail!("no training run")
    };
    let mut b_times = Vec::new();
    let mut b_model = None;
    for _ in 0..3 {
        let start = Instant::now();
        let model = BoostedTLearner::default().fit(&x, &treated, &train.converted)?;
        b_times.push(start.elapsed());
        b_model = Some(model);
    }
    let Some(b_model) = b_model else {
        bail!("no training run")
    };

    let big = SyntheticStorm::generate(&SyntheticStormConfig {
        properties: 1_000_000,
        seed: 2,
        ..Default::default()
    })?;
    let big_table = big.raw_table()?;
    let mut transform_times = Vec::new();
    let mut big_x = None;
    for _ in 0..3 {
        let start = Instant::now();
        let m = pipeline.transform(&big_table)?;
        transform_times.push(start.elapsed());
        big_x = Some(m);
    }
    let Some(big_x) = big_x else {
        bail!("no transform run")
    };
    let time_scoring =
        |model: &uplift::learners::UpliftModel, x: &Matrix| -> anyhow::Result<Duration> {
            let mut times = Vec::new();
            for _ in 0..3 {
                let start = Instant::now();
                let scores = model.predict(x)?;
                times.push(start.elapsed());
                anyhow::ensure!(
                    scores.len() == x.rows(),
                    "scored {} of {} rows",
                    scores.len(),
                    x.rows()
                );
            }
            Ok(median(times))
        };
    let t_score = time_scoring(&t_model, &big_x)?;
    let b_score = time_scoring(&b_model, &big_x)?;

    writeln!(
        out,
        "### Speed (synthetic storm, {} features, single thread)\n",
        x.cols()
    )?;
    writeln!(out, "| measurement | median |")?;
    writeln!(out, "|---|---|")?;
    writeln!(
        out,
        "| T-learner (logistic) training, 100,000 rows, {runs} runs | {} |",
        ms(median(t_times))
    )?;
    writeln!(
        out,
        "| boosted T-learner training (100 trees × 2, depth 3), 100,000 rows, 3 runs | {} |",
        ms(median(b_times))
    )?;
    writeln!(
        out,
        "| feature pipeline transform, 1,000,000 properties | {} |",
        ms(median(transform_times))
    )?;
    writeln!(
        out,
        "| T-learner (logistic) scoring, 1,000,000 properties | {} |",
        ms(t_score)
    )?;
    writeln!(
        out,
        "| boosted T-learner scoring, 1,000,000 properties | {} |",
        ms(b_score)
    )?;

    // Quality on Hillstrom.
    let path = shared_data_dir.join("hillstrom.csv.gz");
    let data = load_hillstrom(&path)?;
    let (train_rows, test_rows) =
        stratified_split(&data.treated, &data.visit, TEST_SHARE, SPLIT_SEED);
    // The pipeline is fitted on the training rows only, so no test statistics leak into scaling.
    let train_table = select_table(&data.table, &train_rows)?;
    let test_table = select_table(&data.table, &test_rows)?;
    let fitted = FittedPipeline::fit(&hillstrom_spec(), &train_table)?;
    let x_train = fitted.transform(&train_table)?;
    let x_test = fitted.transform(&test_table)?;
    let (t_train, y_train) = (
        pick(&data.treated, &train_rows),
        pick(&data.visit, &train_rows),
    );
    let (t_test, y_test) = (
        pick(&data.treated, &test_rows),
        pick(&data.visit, &test_rows),
    );

    writeln!(out, "\n### Quality on Hillstrom (target `visit`)\n")?;
    writeln!(
        out,
        "Data: `hillstrom.csv.gz`, segment \"Womens E-Mail\" (treated) against \"No E-Mail\" (control): {} rows \
         ({} treated). Features: recency, history, mens, womens, newbie (standard-scaled) and one-hot \
         history_segment, zip_code, channel ({} columns). Split: stratified by (treated, visit); strata in the order \
         (0,0), (0,1), (1,0), (1,1); each stratum's row indices (file order, after the segment filter) shuffled by \
         one `ChaCha8Rng::seed_from_u64({SPLIT_SEED})` stream with rand 0.8 `SliceRandom::shuffle`; the first \
         round(0.3·n) of each stratum are the test set: {} train / {} test rows. The feature pipeline is fitted \
         on the train rows. Metrics are scikit-uplift 0.5.1's definitions on the test rows: Qini = \
         `qini_auc_score` (negative_effect=True), AUUC = `uplift_auc_score`, uplift@30% = `uplift_at_k(k=0.3, \
         strategy='overall')`.\n",
        data.treated.len(),
        data.treated.iter().filter(|&&t| t).count(),
        x_train.cols(),
        train_rows.len(),
        test_rows.len(),
    )?;
    writeln!(
        out,
        "| learner | Qini | AUUC | uplift@30% | training time |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    let learners: Vec<(&str, Box<dyn UpliftLearner>)> = vec![
        ("T-learner (logistic)", Box::new(TLearner::default())),
        (
            "class transformation (logistic)",
            Box::new(ClassTransformation::default()),
        ),
        (
            "boosted T-learner (100 trees, depth 3)",
            Box::new(BoostedTLearner::default()),
        ),
        (
            "boosted T-learner (300 trees, lr 0.03, depth 4)",
            Box::new(BoostedTLearner {
                params: BoostingParams {
                    trees: 300,
                    learning_rate: 0.03,
                    max_depth: 4,
                    ..BoostingParams::default()
                },
                ..Default::default()
            }),
        ),
        (
            "S-learner (logistic, treatment as a feature) — weak reference",
            Box::new(SLearner::default()),
        ),
    ];
    for (label, learner) in learners {
        let start = Instant::now();
        let model = learner.fit(&x_train, &t_train, &y_train)?;
        let elapsed = start.elapsed();
        let scores = model.predict_uplift(&x_test)?;
        writeln!(
            out,
            "| {label} | {:.4} | {:.4} | {:.4} | {} |",
            qini_auc_score(&y_test, &scores, &t_test, true)?,
            uplift_auc_score(&y_test, &scores, &t_test)?,
            uplift_at_k(&y_test, &scores, &t_test, 0.3, TopKStrategy::Overall)?,
            ms(elapsed),
        )?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let random: Vec<f64> = (0..test_rows.len())
        .map(|_| rand::Rng::r#gen::<f64>(&mut rng))
        .collect();
    writeln!(
        out,
        "| random scores (ChaCha8 seed 7) — reference | {:.4} | {:.4} | {:.4} | — |",
        qini_auc_score(&y_test, &random, &t_test, true)?,
        uplift_auc_score(&y_test, &random, &t_test)?,
        uplift_at_k(&y_test, &random, &t_test, 0.3, TopKStrategy::Overall)?,
    )?;
    Ok(out)
}

/// The rows `rows` of `table`, as a new table (the pipeline must not see test rows when fitting).
pub fn select_table(table: &RawTable, rows: &[usize]) -> anyhow::Result<RawTable> {
    table.select_rows(rows).context("selecting rows")
}
