// Unit tests of component helpers: chart ticks, map colours, sync progress, inbox wording, policy lookup.
import { describe, expect, test } from 'vitest';
import { ticks } from './charts';
import { pointColour } from './MapCanvas';
import { syncFraction } from './SyncBar';
import { describeChange } from '../screens/InboxScreen';
import { policyDecision } from '../screens/PropertyPage';
import type { SyncStatus, TimelineEntry } from '../lib/backend/types';

describe('chart ticks', () => {
  test('round steps covering the range', () => {
    expect(ticks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(ticks(-0.3, 0.8, 11)).toEqual([-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    expect(ticks(5, 5)).toEqual([5]);
  });
});

describe('map colours', () => {
  test('decision and uplift pick the colour; the contrast theme differs', () => {
    expect(pointColour({ uplift: 0.3, latest_decision: 'treat' }, false)).toBe('#d9480f');
    expect(pointColour({ uplift: 0.1, latest_decision: 'treat' }, false)).toBe('#f08c00');
    expect(pointColour({ uplift: 0.3, latest_decision: 'hold' }, false)).toBe('#6b7f99');
    expect(pointColour({ uplift: null, latest_decision: null }, true)).toBe('#555555');
  });
});

describe('sync progress', () => {
  const base: SyncStatus = {
    connectivity: 'syncing',
    phase: 'pushing',
    push: { done: 50, total: 100, bytes: 0 },
    pull: { done: 0, total: null, bytes: 0 },
    eta_ms: null,
    pending: 0,
    oldest_pending_age_ms: null,
    refused: 0,
    last_success_at_ms: null,
    last_error: null,
    consecutive_failures: 0,
  };
  test('push half-way is under the pull phase; idle has none', () => {
    expect(syncFraction(base)).toBeCloseTo(0.425);
    expect(syncFraction({ ...base, phase: 'pulling' })).toBe(0.85);
    expect(syncFraction({ ...base, connectivity: 'online', phase: 'idle' })).toBeNull();
  });
});

describe('inbox and policy wording', () => {
  test('changes read as what the user did', () => {
    const change = { id: 'c', hlc: 'h', device_id: 'd', entity_id: 'e', op: 'insert' as const };
    expect(describeChange({ change: { ...change, entity: 'journey_touch', payload: { channel: 'call', result: 'scheduled' } }, code: 'x', reason: 'y', refused_at: 0 })).toBe('Call — scheduled');
    expect(describeChange({ change: { ...change, entity: 'outcome', payload: { converted: true } }, code: 'x', reason: 'y', refused_at: 0 })).toBe('Outcome: contract signed');
  });
  test('the policy is the latest non-override decision', () => {
    const d = (id: string, decision: 'treat' | 'hold', is_override: boolean): TimelineEntry => ({
      kind: 'decision',
      id,
      property_id: 'p',
      storm_id: 's',
      decision,
      mode: 'moderate',
      uplift_score: 0.2,
      model_version: 'm',
      reason: is_override ? 'r' : null,
      is_override,
      decided_by: 'u',
      decided_at: 1,
    });
    expect(policyDecision([d('a', 'treat', false), d('b', 'hold', true)])?.id).toBe('a');
    expect(policyDecision([])).toBeNull();
  });
});
