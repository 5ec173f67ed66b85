// Bins uplift scores into equal-width buckets for the distribution chart.

export interface Histogram {
  /** bins+1 edges from min to max. */
  edges: number[];
  counts: number[];
  /** Values outside [min, max], counted into the end bins. */
  clamped: number;
  /** Non-finite values, ignored. */
  ignored: number;
  total: number;
}

/** Equal-width bins over [min, max]; the last bin includes max; values outside go to the end bins. */
export function binScores(scores: readonly number[], min: number, max: number, bins: number): Histogram {
  if (!(bins >= 1) || !(max > min)) throw new Error('binScores needs bins >= 1 and max > min');
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + i * width);
  const counts = new Array<number>(bins).fill(0);
  let clamped = 0;
  let ignored = 0;
  let total = 0;
  for (const s of scores) {
    if (!Number.isFinite(s)) {
      ignored += 1;
      continue;
    }
    let i = Math.floor((s - min) / width);
    if (s < min || s > max) clamped += 1;
    if (i < 0) i = 0;
    if (i >= bins) i = bins - 1;
    counts[i] += 1;
    total += 1;
  }
  return { edges, counts, clamped, ignored, total };
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Population standard deviation (as the server's health check computes it). */
export function stddev(values: readonly number[]): number {
  const m = mean(values);
  if (!Number.isFinite(m)) return NaN;
  let sq = 0;
  for (const v of values) sq += (v - m) * (v - m);
  return Math.sqrt(sq / values.length);
}
