// In-memory filtering of ranked properties (the mock bridge's query engine) and a debounce helper.

import type { PropertyQuery, RankedProperty } from './backend/types';

/** Search text as the local store normalises it: lower case, single spaces, trimmed. */
export function normalizeSearch(text: string | null | undefined): string {
  return (text ?? '').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Whether a row passes the query's filters (territory via the lookup of property id → territory id). */
export function matchesQuery(
  row: RankedProperty,
  query: PropertyQuery,
  territoryOf?: (propertyId: string) => string | null | undefined,
  searchable?: string,
): boolean {
  return queryPredicate(query, territoryOf)(row, searchable);
}

/**
 * The query's filters compiled once into a predicate: the search text is normalised once, not once per
 * row, and a row is checked without allocating — the mock's query engine runs it over 50,000 rows on
 * every filter change, on the page's thread.
 */
export function queryPredicate(
  query: PropertyQuery,
  territoryOf?: (propertyId: string) => string | null | undefined,
): (row: RankedProperty, searchable?: string) => boolean {
  const storm = query.storm_id || null;
  const status = query.status || null;
  const decision = query.decision || null;
  const territory = query.territory_id || null;
  const needle = normalizeSearch(query.search);
  return (row, searchable) => {
    const p = row.property;
    if (storm !== null && p.storm_id !== storm) return false;
    if (status !== null && p.status !== status) return false;
    if (decision !== null && row.latest_decision !== decision) return false;
    if (territory !== null && (!territoryOf || territoryOf(p.id) !== territory)) return false;
    if (needle && !(searchable ?? normalizeSearch(p.address)).includes(needle)) return false;
    return true;
  };
}

/** Ranked order: uplift descending, unscored last, id breaking ties (as the local store orders). */
export function compareRanked(a: RankedProperty, b: RankedProperty): number {
  const ua = a.uplift;
  const ub = b.uplift;
  if (ua === null && ub !== null) return 1;
  if (ub === null && ua !== null) return -1;
  if (ua !== null && ub !== null && ua !== ub) return ub - ua;
  return a.property.id < b.property.id ? -1 : a.property.id > b.property.id ? 1 : 0;
}

/** The page of `rows` (already ranked) the query selects; limit 0 means 50. */
export function pageOf<T>(rows: readonly T[], query: Pick<PropertyQuery, 'limit' | 'offset'>): T[] {
  const limit = query.limit === 0 ? 50 : query.limit;
  return rows.slice(query.offset, query.offset + limit);
}

/** Query key without paging, for caching a filtered result across pages. */
export function filterKey(query: PropertyQuery): string {
  return JSON.stringify([
    query.storm_id ?? null,
    query.territory_id ?? null,
    query.status ?? null,
    query.decision ?? null,
    normalizeSearch(query.search),
  ]);
}

export interface Debounced<A extends unknown[]> {
  (...args: A): void;
  cancel(): void;
  flush(): void;
}

/** Calls `fn` once `waitMs` after the last call. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, waitMs: number): Debounced<A> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastArgs: A | null = null;
  const debounced = ((...args: A) => {
    lastArgs = args;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      const a = lastArgs as A;
      lastArgs = null;
      fn(...a);
    }, waitMs);
  }) as Debounced<A>;
  debounced.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    lastArgs = null;
  };
  debounced.flush = () => {
    if (timer !== null && lastArgs) {
      clearTimeout(timer);
      timer = null;
      const a = lastArgs;
      lastArgs = null;
      fn(...a);
    }
  };
  return debounced;
}
