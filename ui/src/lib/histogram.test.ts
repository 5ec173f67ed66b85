// Unit tests of histogram binning and the mean and spread the health checks use.
import { describe, expect, test } from 'vitest';
import { binScores, mean, stddev } from './histogram';

describe('binScores', () => {
  test('equal-width bins, the last one includes max', () => {
    const h = binScores([0, 0.1, 0.2, 0.25, 0.5, 1], 0, 1, 4);
    expect(h.edges).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(h.counts).toEqual([3, 1, 1, 1]);
    expect(h.total).toBe(6);
  });
  test('out-of-range values go to the end bins and are counted as clamped', () => {
    const h = binScores([-5, 5, 0.5], 0, 1, 2);
    expect(h.counts).toEqual([1, 2]);
    expect(h.clamped).toBe(2);
  });
  test('non-finite values are ignored', () => {
    const h = binScores([Number.NaN, Infinity, 0.3], 0, 1, 2);
    expect(h.counts).toEqual([1, 0]);
    expect(h.ignored).toBe(2);
  });
  test('bad parameters throw', () => {
    expect(() => binScores([], 1, 1, 3)).toThrow();
    expect(() => binScores([], 0, 1, 0)).toThrow();
  });
  test('counts add up at 50,000 scores', () => {
    const scores = Array.from({ length: 50_000 }, (_, i) => ((i % 1000) / 1000) * 1.1 - 0.3);
    const h = binScores(scores, -0.3, 0.8, 30);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(50_000);
  });
});

describe('mean and population stddev', () => {
  test('match hand values', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(stddev([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2);
    expect(Number.isNaN(mean([]))).toBe(true);
  });
});
