// Unit tests of the in-memory property filters, ranking order, paging and debounce.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RankedProperty } from './backend/types';
import { compareRanked, debounce, filterKey, matchesQuery, normalizeSearch, pageOf, queryPredicate } from './filters';

function row(id: string, over: Partial<RankedProperty> & { address?: string; status?: RankedProperty['property']['status']; storm?: string } = {}): RankedProperty {
  return {
    property: {
      id,
      storm_id: over.storm ?? 's1',
      external_id: id,
      address: over.address ?? `${id} Main St, Norman, OK`,
      latitude: 35,
      longitude: -97,
      roof_age_years: null,
      roof_material: null,
      square_feet: null,
      home_value: null,
      hail_size_in: null,
      distance_to_core_km: null,
      prior_claims: 0,
      owner_name: null,
      owner_phone: null,
      owner_email: null,
      status: over.status ?? 'new',
    },
    uplift: over.uplift === undefined ? 0.1 : over.uplift,
    p_treat: null,
    p_hold: null,
    model_version: null,
    latest_decision: over.latest_decision ?? null,
  };
}

describe('matchesQuery', () => {
  const q = { limit: 50, offset: 0 };
  test('each filter narrows', () => {
    const r = row('a', { status: 'inspected', latest_decision: 'treat', address: '12 Cedar Ridge Dr' });
    expect(matchesQuery(r, { ...q })).toBe(true);
    expect(matchesQuery(r, { ...q, storm_id: 's2' })).toBe(false);
    expect(matchesQuery(r, { ...q, status: 'new' })).toBe(false);
    expect(matchesQuery(r, { ...q, decision: 'hold' })).toBe(false);
    expect(matchesQuery(r, { ...q, decision: 'treat', status: 'inspected' })).toBe(true);
    expect(matchesQuery(r, { ...q, search: '  CEDAR   ridge ' })).toBe(true);
    expect(matchesQuery(r, { ...q, search: 'oak' })).toBe(false);
    expect(matchesQuery(r, { ...q, territory_id: 't1' }, (id) => (id === 'a' ? 't1' : null))).toBe(true);
    expect(matchesQuery(r, { ...q, territory_id: 't2' }, () => 't1')).toBe(false);
  });
  test('search normalises case and spaces', () => {
    expect(normalizeSearch('  Post   OAK ')).toBe('post oak');
    expect(normalizeSearch(null)).toBe('');
  });
});

describe('ranking and paging', () => {
  test('uplift descending, unscored last, id breaks ties', () => {
    const rows = [row('c', { uplift: null }), row('b', { uplift: 0.2 }), row('a', { uplift: 0.2 }), row('d', { uplift: 0.5 })];
    expect(rows.sort(compareRanked).map((r) => r.property.id)).toEqual(['d', 'a', 'b', 'c']);
  });
  test('limit 0 means 50, offset skips', () => {
    const rows = Array.from({ length: 120 }, (_, i) => i);
    expect(pageOf(rows, { limit: 0, offset: 0 })).toHaveLength(50);
    expect(pageOf(rows, { limit: 100, offset: 100 })).toEqual(rows.slice(100));
  });
  test('filter keys ignore paging and search spacing', () => {
    expect(filterKey({ limit: 1, offset: 0, search: 'Oak ' })).toBe(filterKey({ limit: 100, offset: 300, search: 'oak' }));
    expect(filterKey({ limit: 1, offset: 0, status: 'new' })).not.toBe(filterKey({ limit: 1, offset: 0 }));
  });
});

describe('debounce', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  test('calls once with the last arguments after the wait', () => {
    const fn = vi.fn();
    const d = debounce(fn, 100);
    d('a');
    d('b');
    vi.advanceTimersByTime(99);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledExactlyOnceWith('b');
  });
  test('flush runs now, cancel drops', () => {
    const fn = vi.fn();
    const d = debounce(fn, 100);
    d('x');
    d.flush();
    expect(fn).toHaveBeenCalledWith('x');
    d('y');
    d.cancel();
    vi.advanceTimersByTime(500);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('queryPredicate', () => {
  test('agrees with matchesQuery on every combination of filters', () => {
    const rows = [
      row('a', { status: 'new', address: '12 Oak Ave' }),
      row('b', { status: 'inspected', address: '9 Elm St', storm: 's2' }),
      { ...row('c', { status: 'new', address: '3 OAK  Way' }), latest_decision: 'treat' as const },
      { ...row('d', { status: 'in_progress' }), latest_decision: 'hold' as const },
    ];
    const territory = (id: string) => (id === 'a' || id === 'c' ? 't1' : 't2');
    const queries = [];
    for (const storm_id of [null, 's1', 's2'])
      for (const status of [null, 'new', 'inspected'] as const)
        for (const decision of [null, 'treat', 'hold'] as const)
          for (const territory_id of [null, 't1'])
            for (const search of [null, '', 'oak', '  OAK  ', 'zzz'])
              queries.push({ storm_id, status, decision, territory_id, search, limit: 0, offset: 0 });
    let matched = 0;
    for (const q of queries) {
      const p = queryPredicate(q, territory);
      for (const r of rows) {
        expect(p(r), JSON.stringify(q)).toBe(matchesQuery(r, q, territory));
        if (p(r)) matched += 1;
      }
    }
    expect(matched).toBeGreaterThan(0);
    // A precomputed search key is used instead of the address when given.
    const q = { storm_id: null, search: 'owner smith', limit: 0, offset: 0 };
    expect(queryPredicate(q)(rows[0], '12 oak ave owner smith x1')).toBe(true);
    expect(queryPredicate(q)(rows[0])).toBe(false);
  });
});
