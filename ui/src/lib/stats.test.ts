// Unit tests of the lift estimate against the Rust crate's statsmodels reference values.
import { describe, expect, test } from 'vitest';
import { conversionLift, erfc } from './stats';

describe('conversionLift', () => {
  test('matches statsmodels (56/70 vs 48/80), as crates/uplift does', () => {
    const e = conversionLift({ rows: 70, conversions: 56 }, { rows: 80, conversions: 48 });
    expect(e.lift).toBeCloseTo(0.2, 12);
    expect(e.ci_low).toBeCloseTo(0.05243147240236498, 9);
    expect(e.ci_high).toBeCloseTo(0.33387265403690614, 9);
    expect(e.z).toBeCloseTo(2.6501719512585336, 9);
    expect(e.p_value).toBeCloseTo(0.00804508136819656, 6);
  });
  test('no variation: z 0, p 1, interval spans zero', () => {
    const e = conversionLift({ rows: 10, conversions: 0 }, { rows: 10, conversions: 0 });
    expect([e.z, e.p_value]).toEqual([0, 1]);
    expect(e.ci_low).toBeLessThan(0);
    expect(e.ci_high).toBeGreaterThan(0);
  });
  test('empty groups throw', () => {
    expect(() => conversionLift({ rows: 0, conversions: 0 }, { rows: 1, conversions: 0 })).toThrow();
  });
  test('erfc is close to reference values', () => {
    expect(erfc(0)).toBeCloseTo(1, 6);
    expect(erfc(1)).toBeCloseTo(0.157299207050285, 6);
    expect(erfc(-1)).toBeCloseTo(1.842700792949715, 6);
  });
});
