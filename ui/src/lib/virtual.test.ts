// Unit tests of the virtual list's windowing math, scroll-to-reveal and page coverage.
import { describe, expect, test } from 'vitest';
import { pagesFor, scrollToReveal, windowRange } from './virtual';

describe('windowRange', () => {
  test('renders only the rows in view plus overscan', () => {
    const r = windowRange({ scrollTop: 0, viewportHeight: 600, rowHeight: 76, count: 50_000, overscan: 6 });
    expect(r.start).toBe(0);
    expect(r.end).toBe(Math.ceil(600 / 76) + 1 + 6);
    expect(r.totalHeight).toBe(50_000 * 76);
  });
  test('mid-list window is bounded and offset', () => {
    const r = windowRange({ scrollTop: 76 * 1000 + 10, viewportHeight: 600, rowHeight: 76, count: 50_000, overscan: 5 });
    expect(r.start).toBe(995);
    expect(r.end).toBe(1000 + 9 + 5);
    expect(r.offsetTop).toBe(995 * 76);
    expect(r.end - r.start).toBeLessThan(30);
  });
  test('clamps past the end and handles empty lists', () => {
    const r = windowRange({ scrollTop: 1e9, viewportHeight: 600, rowHeight: 50, count: 100, overscan: 3 });
    expect(r.end).toBe(100);
    expect(r.start).toBeGreaterThan(80);
    expect(windowRange({ scrollTop: 0, viewportHeight: 600, rowHeight: 50, count: 0, overscan: 3 })).toEqual({ start: 0, end: 0, offsetTop: 0, totalHeight: 0 });
    const short = windowRange({ scrollTop: 0, viewportHeight: 600, rowHeight: 50, count: 3, overscan: 3 });
    expect([short.start, short.end]).toEqual([0, 3]);
  });
});

describe('scrollToReveal', () => {
  test('scrolls only as far as needed', () => {
    expect(scrollToReveal(5, 0, 500, 50)).toBe(0);
    expect(scrollToReveal(12, 0, 500, 50)).toBe(650 - 500);
    expect(scrollToReveal(2, 400, 500, 50)).toBe(100);
  });
});

describe('pagesFor', () => {
  test('covers a window with the pages it spans', () => {
    expect(pagesFor(0, 20, 100)).toEqual([0]);
    expect(pagesFor(95, 110, 100)).toEqual([0, 1]);
    expect(pagesFor(250, 250, 100)).toEqual([]);
  });
});
