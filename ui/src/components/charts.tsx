// Hand-drawn SVG charts: the conversion lift with its 95% interval, and the uplift histogram.

import type { LiftEstimate } from '../lib/backend/types';
import { formatPercent, formatPoints } from '../lib/format';
import { binScores, mean } from '../lib/histogram';

/** Nice tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, target = 6): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= target) ?? raw;
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  // Integer multiples of the step, rounded so 0.1 * 3 prints as 0.3 and -0 as 0.
  for (let k = first; k <= last; k += 1) out.push(Number((k * step).toFixed(10)) || 0);
  return out;
}

export function LiftChart({ lift, threshold = 0.05 }: { lift: LiftEstimate; threshold?: number }) {
  const W = 640;
  const H = 150;
  const padL = 24;
  const padR = 24;
  const lo = Math.min(lift.ci_low, 0, threshold) - 0.02;
  const hi = Math.max(lift.ci_high, threshold) + 0.02;
  const x = (v: number) => padL + ((v - lo) / (hi - lo)) * (W - padL - padR);
  const y = 62;
  const significant = lift.ci_low > 0;
  return (
    <svg class="chart lift-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Conversion lift ${formatPoints(lift.lift)}, 95% interval ${formatPoints(lift.ci_low)} to ${formatPoints(lift.ci_high)}`}>
      <title>Conversion lift with its 95% confidence interval</title>
      {ticks(lo, hi).map((t) => (
        <g key={t}>
          <line x1={x(t)} x2={x(t)} y1={20} y2={104} class="grid" />
          <text x={x(t)} y={124} class="tick" text-anchor="middle">
            {formatPoints(t, 0).replace(' pts', '')}
          </text>
        </g>
      ))}
      <text x={W / 2} y={144} class="axis-label" text-anchor="middle">
        Treated minus control conversion (percentage points)
      </text>
      <line x1={x(0)} x2={x(0)} y1={14} y2={108} class="zero" />
      <line x1={x(threshold)} x2={x(threshold)} y1={14} y2={108} class="threshold" />
      <text x={x(threshold) + 4} y={16} class="note">
        target {formatPoints(threshold, 0)}
      </text>
      <line x1={x(lift.ci_low)} x2={x(lift.ci_high)} y1={y} y2={y} class={`ci ${significant ? 'ci-sig' : 'ci-ns'}`} />
      <line x1={x(lift.ci_low)} x2={x(lift.ci_low)} y1={y - 12} y2={y + 12} class={`ci ${significant ? 'ci-sig' : 'ci-ns'}`} />
      <line x1={x(lift.ci_high)} x2={x(lift.ci_high)} y1={y - 12} y2={y + 12} class={`ci ${significant ? 'ci-sig' : 'ci-ns'}`} />
      <circle cx={x(lift.lift)} cy={y} r={8} class="point" />
      <text x={x(lift.lift)} y={y - 18} class="value" text-anchor="middle">
        {formatPoints(lift.lift)}
      </text>
      <text x={x(lift.ci_low)} y={y + 30} class="tick" text-anchor="middle">
        {formatPoints(lift.ci_low)}
      </text>
      <text x={x(lift.ci_high)} y={y + 30} class="tick" text-anchor="middle">
        {formatPoints(lift.ci_high)}
      </text>
    </svg>
  );
}

export function RateBars({ treated, control }: { treated: number; control: number }) {
  const max = Math.max(treated, control, 0.01);
  return (
    <div class="rate-bars">
      {[
        ['Treated', treated, 'bar-treat'],
        ['Control (holdout)', control, 'bar-control'],
      ].map(([name, v, cls]) => (
        <div class="rate-row" key={name as string}>
          <span class="rate-name">{name}</span>
          <span class="rate-track">
            <span class={`rate-fill ${cls}`} style={{ width: `${((v as number) / max) * 100}%` }} />
          </span>
          <span class="rate-value">{formatPercent(v as number)}</span>
        </div>
      ))}
    </div>
  );
}

export function UpliftHistogram({ scores, expectedLow = 0.1, expectedHigh = 0.3, bins = 22 }: { scores: number[]; expectedLow?: number; expectedHigh?: number; bins?: number }) {
  const W = 640;
  const H = 260;
  const padL = 52;
  const padR = 16;
  const padT = 30;
  const padB = 48;
  // 22 bins of 5 points from −30 to +80: an edge falls on zero, so no bar mixes signs.
  const lo = -0.3;
  const hi = 0.8;
  const hist = binScores(scores, lo, hi, bins);
  const maxCount = Math.max(1, ...hist.counts);
  const x = (v: number) => padL + ((v - lo) / (hi - lo)) * (W - padL - padR);
  const y = (c: number) => padT + (1 - c / maxCount) * (H - padT - padB);
  const m = mean(scores);
  const barW = (W - padL - padR) / bins;
  return (
    <svg class="chart histogram" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Uplift histogram of ${hist.total} scores, mean ${Number.isFinite(m) ? formatPoints(m) : 'none'}`}>
      <title>Distribution of uplift scores</title>
      <rect x={x(expectedLow)} y={padT} width={x(expectedHigh) - x(expectedLow)} height={H - padT - padB} class="expected-band" />
      {ticks(0, maxCount, 4).map((t) => (
        <g key={`y${t}`}>
          <line x1={padL} x2={W - padR} y1={y(t)} y2={y(t)} class="grid" />
          <text x={padL - 8} y={y(t) + 4} class="tick" text-anchor="end">
            {t.toLocaleString('en-US')}
          </text>
        </g>
      ))}
      {hist.counts.map((c, i) => (
        <rect key={i} x={x(hist.edges[i]) + 1} y={y(c)} width={Math.max(1, barW - 2)} height={H - padB - y(c)} class={hist.edges[i] < 0 ? 'bar bar-neg' : 'bar'}>
          <title>{`${formatPoints(hist.edges[i], 0)} to ${formatPoints(hist.edges[i + 1], 0)}: ${c} properties`}</title>
        </rect>
      ))}
      {ticks(lo, hi, 11).map((t) => (
        <text key={`x${t}`} x={x(t)} y={H - padB + 18} class="tick" text-anchor="middle">
          {Math.round(t * 100)}
        </text>
      ))}
      <line x1={x(0)} x2={x(0)} y1={padT} y2={H - padB} class="zero" />
      {Number.isFinite(m) && (
        <g>
          <line x1={x(m)} x2={x(m)} y1={padT} y2={H - padB} class="mean-line" />
          <text x={x(m) + 4} y={padT - 10} class="note">
            mean {formatPoints(m)}
          </text>
        </g>
      )}
      <text x={(W + padL) / 2} y={H - 8} class="axis-label" text-anchor="middle">
        Uplift (points of conversion chance); shaded: expected mean range
      </text>
    </svg>
  );
}
