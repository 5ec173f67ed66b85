// The field list: properties ranked by uplift with instant filters and search (virtualised, paged),
// beside a tile-free map of the top of the ranking.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { Decision, PropertyQuery, PropertyStatus, RankedProperty, Storm, Territory } from '../lib/backend/types';
import { PROPERTY_STATUSES } from '../lib/backend/types';
import { DecisionBadge, ErrorNote, UpliftBadge } from '../components/common';
import { MapCanvas } from '../components/MapCanvas';
import { VirtualList } from '../components/VirtualList';
import { debounce, filterKey } from '../lib/filters';
import { formatInt, label } from '../lib/format';
import { navigate } from '../lib/route';
import { pagesFor } from '../lib/virtual';

const PAGE = 100;

/**
 * Runs `fn` once, in a task of its own after the next frame has been painted — or after 100 ms when no
 * frame comes: WebKitGTK may not run animation frames at all (seen under Xvfb), and the map must still
 * follow the filters.
 */
function afterPaint(fn: () => void) {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    fn();
  };
  requestAnimationFrame(() => setTimeout(run, 0));
  setTimeout(run, 100);
}
const ROW_HEIGHT = 76;
const MAP_LIMIT = 1000;

interface Filters {
  storm_id: string | null;
  territory_id: string | null;
  status: PropertyStatus | null;
  decision: Decision | null;
  search: string;
}

// Filters survive leaving for a property page and coming back.
let remembered: Filters = { storm_id: null, territory_id: null, status: null, decision: null, search: '' };

export function PropertiesScreen() {
  const { backend, revision } = useApp();
  const [storms, setStorms] = useState<Storm[]>([]);
  const [territories, setTerritories] = useState<Territory[]>([]);
  const [filters, setFilters] = useState<Filters>(remembered);
  const [searchText, setSearchText] = useState(remembered.search);
  const [count, setCount] = useState<number | null>(null);
  const [pages, setPages] = useState<Map<number, RankedProperty[]>>(new Map());
  const [mapRows, setMapRows] = useState<RankedProperty[]>([]);
  const [error, setError] = useState<unknown>(null);
  const loading = useRef(new Set<number>());
  const generation = useRef(0);

  useEffect(() => {
    remembered = { ...filters, search: searchText };
  }, [filters, searchText]);

  useEffect(() => {
    backend
      .storms({})
      .then((s) => {
        setStorms(s);
        if (!filters.storm_id && s.length > 0) {
          const active = s.find((x) => x.status === 'active') ?? s[0];
          setFilters((f) => ({ ...f, storm_id: active.id }));
        }
      })
      .catch(setError);
  }, [backend, revision]);

  useEffect(() => {
    if (!filters.storm_id) return;
    backend.territories({ storm_id: filters.storm_id }).then(setTerritories).catch(setError);
  }, [backend, filters.storm_id]);

  // Search is debounced; the other filters apply at once.
  const applySearch = useMemo(() => debounce((s: string) => setFilters((f) => ({ ...f, search: s })), 140), []);
  useEffect(() => () => applySearch.cancel(), [applySearch]);

  const query: PropertyQuery = useMemo(
    () => ({
      storm_id: filters.storm_id,
      territory_id: filters.territory_id,
      status: filters.status,
      decision: filters.decision,
      search: filters.search.trim() || null,
      limit: PAGE,
      offset: 0,
    }),
    [filters],
  );
  const key = filterKey(query);

  // Pages loaded for the current query and data (a ref, so range callbacks never see stale state).
  // After a write or a sync the shown pages stay until their fresh copies arrive, so nothing flickers.
  const fresh = useRef(new Set<number>());
  const shownKey = useRef(key);
  const lastRange = useRef<[number, number]>([0, 0]);
  const queryRef = useRef(query);
  queryRef.current = query;

  const ensure = (start: number, end: number) => {
    lastRange.current = [start, end];
    for (const p of pagesFor(start, end, PAGE)) {
      if (fresh.current.has(p) || loading.current.has(p)) continue;
      loading.current.add(p);
      const gen = generation.current;
      backend
        .ranked_properties({ query: { ...queryRef.current, offset: p * PAGE } })
        .then((rows) => {
          if (gen !== generation.current) return;
          loading.current.delete(p);
          fresh.current.add(p);
          setPages((old) => new Map(old).set(p, rows));
        })
        .catch(setError);
    }
  };

  // New filters (or new data after a write or a sync): count, the pages in view, and the map's top rows.
  // A layout effect, so the query starts in the same task as the render that follows the change; a plain
  // effect would first wait for a frame to be painted.
  useLayoutEffect(() => {
    if (!filters.storm_id) return;
    const gen = ++generation.current;
    loading.current = new Set();
    fresh.current = new Set();
    if (shownKey.current !== key) {
      shownKey.current = key;
      setPages(new Map());
    }
    setError(null);
    // The map's top 1,000 rows are the largest answer of a filter change (in the app, JSON decoded on
    // this thread): they are asked for once the count and the list have been painted, so the list never
    // waits for the map; a newer filter change skips a map load that has not started yet.
    const loadMap = () => {
      if (gen !== generation.current) return;
      backend
        .ranked_properties({ query: { ...query, limit: MAP_LIMIT } })
        .then((rows) => gen === generation.current && setMapRows(rows))
        .catch(() => undefined);
    };
    backend
      .property_count({ query })
      .then((n) => {
        if (gen !== generation.current) return;
        setCount(n);
        const [start, end] = lastRange.current;
        ensure(start, Math.max(end, start + 1));
        afterPaint(loadMap);
      })
      .catch((e) => gen === generation.current && setError(e));
  }, [backend, key, revision]);

  const onRange = (start: number, end: number) => ensure(start, end);

  const rowAt = (i: number): RankedProperty | undefined => pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const open = (i: number) => {
    const r = rowAt(i);
    if (r) navigate('property', r.property.id);
  };
  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setFilters((f) => ({ ...f, [k]: v, ...(k === 'storm_id' ? { territory_id: null } : {}) }));
  const activeFilters = [filters.territory_id, filters.status, filters.decision, filters.search].filter(Boolean).length;

  return (
    <section class="page page-wide properties-page">
      <header class="page-header">
        <div>
          <h1>Properties</h1>
          <p class="muted" aria-live="polite" data-testid="result-count">
            {count === null ? 'Loading…' : `${formatInt(count)} ${count === 1 ? 'property' : 'properties'} · ranked by uplift, treat first`}
          </p>
        </div>
      </header>
      <div class="filters" role="search">
        <label class="field field-inline field-search">
          <span>Search</span>
          <input
            id="search"
            type="search"
            placeholder="Address, owner or ID   ( / )"
            value={searchText}
            onInput={(e) => {
              setSearchText(e.currentTarget.value);
              applySearch(e.currentTarget.value);
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter') applySearch.flush();
              if (e.key === 'ArrowDown') {
                e.preventDefault();
                document.getElementById('property-list')?.focus();
              }
            }}
            aria-controls="property-list"
          />
        </label>
        <label class="field field-inline">
          <span>Storm</span>
          <select value={filters.storm_id ?? ''} onChange={(e) => set('storm_id', e.currentTarget.value || null)} name="storm">
            {storms.map((s) => (
              <option value={s.id} key={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label class="field field-inline">
          <span>Territory</span>
          <select value={filters.territory_id ?? ''} onChange={(e) => set('territory_id', e.currentTarget.value || null)} name="territory">
            <option value="">All territories</option>
            {territories.map((t) => (
              <option value={t.id} key={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label class="field field-inline">
          <span>Status</span>
          <select value={filters.status ?? ''} onChange={(e) => set('status', (e.currentTarget.value || null) as PropertyStatus | null)} name="status">
            <option value="">Any status</option>
            {PROPERTY_STATUSES.map((s) => (
              <option value={s} key={s}>
                {label(s)}
              </option>
            ))}
          </select>
        </label>
        <label class="field field-inline">
          <span>Decision</span>
          <select value={filters.decision ?? ''} onChange={(e) => set('decision', (e.currentTarget.value || null) as Decision | null)} name="decision">
            <option value="">Treat and hold</option>
            <option value="treat">Treat only</option>
            <option value="hold">Hold only</option>
          </select>
        </label>
        {activeFilters > 0 && (
          <button
            type="button"
            class="btn btn-ghost btn-clear"
            onClick={() => {
              setSearchText('');
              applySearch.cancel();
              setFilters((f) => ({ ...f, territory_id: null, status: null, decision: null, search: '' }));
            }}
          >
            Clear filters
          </button>
        )}
      </div>
      <ErrorNote error={error} />
      <div class="split">
        <div class="list-pane">
          {count === 0 ? (
            <div class="empty">No property matches these filters. Clear a filter or change the search.</div>
          ) : (
            <VirtualList
              id="property-list"
              label="Properties ranked by uplift"
              count={count ?? 0}
              rowHeight={ROW_HEIGHT}
              resetKey={key}
              onRange={onRange}
              onActivate={open}
              renderRow={(i) => {
                const r = rowAt(i);
                if (!r) return <div class="prow prow-loading">Loading…</div>;
                const p = r.property;
                return (
                  <div class="prow" data-property-id={p.id}>
                    <span class="prow-rank">{i + 1}</span>
                    <span class="prow-main">
                      <span class="prow-address">{p.address}</span>
                      <span class="prow-meta muted">
                        {p.owner_name ?? 'Owner unknown'} · {p.roof_age_years !== null ? `${p.roof_age_years}-yr roof` : 'roof age unknown'}
                        {p.hail_size_in !== null ? ` · ${p.hail_size_in}" hail` : ''} · {label(p.status)}
                      </span>
                    </span>
                    <span class="prow-badges">
                      <UpliftBadge uplift={r.uplift} />
                      <DecisionBadge decision={r.latest_decision} />
                    </span>
                  </div>
                );
              }}
            />
          )}
        </div>
        <div class="map-pane">
          <MapCanvas rows={mapRows} onPick={(id) => navigate('property', id)} caption={`Top ${formatInt(Math.min(mapRows.length, MAP_LIMIT))} by uplift`} />
        </div>
      </div>
    </section>
  );
}
