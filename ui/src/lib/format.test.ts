// Unit tests of money, percentage, time and age formatting and the vocabulary labels.
import { describe, expect, test } from 'vitest';
import { formatAgo, formatBytes, formatDateTime, formatDuration, formatEta, formatInt, formatMoney, formatPercent, formatPoints, formatUplift, groupRecoveryKey, label, parseMoneyToCents, utcDay } from './format';

describe('money', () => {
  test('cents print as dollars, whole amounts without decimals', () => {
    expect(formatMoney(1_450_000)).toBe('$14,500');
    expect(formatMoney(1_450_050)).toBe('$14,500.50');
    expect(formatMoney(5)).toBe('$0.05');
    expect(formatMoney(0)).toBe('$0');
    expect(formatMoney(null)).toBe('—');
  });
  test('typed dollars parse to integer cents', () => {
    expect(parseMoneyToCents('14,500')).toBe(1_450_000);
    expect(parseMoneyToCents('$14,500.5')).toBe(1_450_050);
    expect(parseMoneyToCents(' 0.07 ')).toBe(7);
    expect(parseMoneyToCents('')).toBeNull();
    expect(parseMoneyToCents('-3')).toBeNull();
    expect(parseMoneyToCents('1.234')).toBeNull();
    expect(parseMoneyToCents('abc')).toBeNull();
  });
});

describe('numbers', () => {
  test('integers, percentages and points', () => {
    expect(formatInt(50_000)).toBe('50,000');
    expect(formatInt(Number.NaN)).toBe('—');
    expect(formatPercent(0.1234)).toBe('12.3%');
    expect(formatPercent(0.5, 0)).toBe('50%');
    expect(formatPoints(0.051)).toBe('+5.1 pts');
    expect(formatPoints(-0.02)).toBe('−2.0 pts');
    expect(formatPoints(0)).toBe('0.0 pts');
  });
  test('uplift scores print as signed points, unscored in words', () => {
    expect(formatUplift(0.234)).toBe('+23');
    expect(formatUplift(-0.05)).toBe('−5');
    expect(formatUplift(0.001)).toBe('0');
    expect(formatUplift(null)).toBe('unscored');
  });
  test('bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2_254_857_830)).toBe('2.1 GB');
    expect(formatBytes(10 * 1024 ** 3)).toBe('10 GB');
  });
});

describe('time and age', () => {
  test('durations in plain words', () => {
    expect(formatDuration(30_000)).toBe('under a minute');
    expect(formatDuration(4 * 60_000)).toBe('4 min');
    expect(formatDuration(3 * 3_600_000)).toBe('3 h');
    expect(formatDuration(3 * 3_600_000 + 5 * 60_000)).toBe('3 h 5 min');
    expect(formatDuration(26 * 3_600_000)).toBe('1 day');
    expect(formatDuration(9 * 86_400_000)).toBe('9 days');
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(null)).toBe('—');
  });
  test('ages relative to now', () => {
    const now = 1_800_000_000_000;
    expect(formatAgo(now - 10_000, now)).toBe('just now');
    expect(formatAgo(now - 42 * 60_000, now)).toBe('42 min ago');
    expect(formatAgo(null, now)).toBe('never');
  });
  test('time left', () => {
    expect(formatEta(500)).toBe('almost done');
    expect(formatEta(12_300)).toBe('about 13 s left');
    expect(formatEta(5 * 60_000)).toBe('about 5 min left');
    expect(formatEta(null)).toBe('');
  });
  test('UTC dates', () => {
    const t = Date.UTC(2026, 3, 14, 9, 5);
    expect(formatDateTime(t)).toBe('Apr 14, 09:05 UTC');
    expect(utcDay(t)).toBe('2026-04-14');
  });
});

describe('labels', () => {
  test('snake_case words read as plain words', () => {
    expect(label('door_knock')).toBe('Door knock');
    expect(label('left_info')).toBe('Left info');
    expect(label('crew_chief')).toBe('Crew chief');
    expect(label('storage_bytes')).toBe('Storage');
    expect(label(null)).toBe('—');
  });
  test('recovery keys group in fours', () => {
    expect(groupRecoveryKey('0123456789abcdef')).toBe('0123-4567-89ab-cdef');
  });
});
