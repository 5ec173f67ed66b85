// Conversion lift with Newcombe's hybrid score interval, as crates/uplift/src/experiment.rs computes it.

import type { GroupOutcomes, LiftEstimate } from './backend/types';

const Z_95 = 1.959963984540054;

function wilson(group: GroupOutcomes): [number, number] {
  const n = group.rows;
  const p = group.conversions / n;
  const z2 = Z_95 * Z_95;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (Z_95 / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [centre - half, centre + half];
}

/** Complementary error function (Numerical Recipes erfcc, relative error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export function conversionLift(treated: GroupOutcomes, control: GroupOutcomes): LiftEstimate {
  if (treated.rows === 0 || control.rows === 0) throw new Error('each group needs at least one row');
  const p1 = treated.conversions / treated.rows;
  const p2 = control.conversions / control.rows;
  const lift = p1 - p2;
  const [l1, u1] = wilson(treated);
  const [l2, u2] = wilson(control);
  const ciLow = lift - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2);
  const ciHigh = lift + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2);
  const pooled = (treated.conversions + control.conversions) / (treated.rows + control.rows);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / treated.rows + 1 / control.rows));
  const z = se > 0 ? lift / se : 0;
  const pValue = Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
  return { treated_rate: p1, control_rate: p2, lift, ci_low: ciLow, ci_high: ciHigh, z, p_value: pValue };
}
