// Crew chief dashboards: the crew's day, the storm's territories, and each laptop's sync health.

import { useEffect, useState } from 'preact/hooks';
import { useApp, useLoad, useNow } from '../context';
import type { Crew, CrewDaySummary, CrewSyncHealth, DeviceSyncHealth } from '../lib/backend/types';
import { CHANNELS, TOUCH_RESULTS } from '../lib/backend/types';
import { Empty, ErrorNote, Loading, PageHeader, Stat } from '../components/common';
import { errorText } from '../lib/errors';
import { formatAgo, formatInt, formatMoney, label, utcDay } from '../lib/format';

export function CrewDayScreen() {
  const { backend, session, revision } = useApp();
  const [day, setDay] = useState(() => utcDay(Date.now()));
  const [crewId, setCrewId] = useState<string>(session?.role === 'crew_chief' && session.crew_id ? session.crew_id : '');
  const crews = useLoad<Crew[]>(() => backend.crews({}), []);
  const summary = useLoad<CrewDaySummary>(() => backend.crew_day({ crew_id: crewId || null, day }), [day, crewId, revision]);
  const s = summary.data;
  const channels = CHANNELS.filter((c) => s?.users.some((u) => u.by_channel[c]));
  const results = TOUCH_RESULTS.filter((r) => s?.users.some((u) => u.by_result[r]));
  const maxTouches = Math.max(1, ...(s?.users.map((u) => u.touches) ?? [1]));
  return (
    <section class="page">
      <PageHeader title="Crew day" subtitle="Touches by person, channel and result; conversions. Days are UTC.">
        <label class="field field-inline">
          <span>Day</span>
          <input type="date" value={day} onInput={(e) => e.currentTarget.value && setDay(e.currentTarget.value)} name="day" />
        </label>
        <label class="field field-inline">
          <span>Crew</span>
          <select value={crewId} onChange={(e) => setCrewId(e.currentTarget.value)} name="crew">
            <option value="">Everyone</option>
            {crews.data?.map((c) => (
              <option value={c.id} key={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
      </PageHeader>
      <ErrorNote error={summary.error} />
      {!s && summary.loading && <Loading what="the day" />}
      {s && (
        <>
          <div class="stats" data-testid="crew-stats">
            <Stat label="Touches" value={formatInt(s.touches)} />
            <Stat label="People out" value={formatInt(s.users.length)} />
            <Stat label="Properties touched" value={formatInt(s.users.reduce((a, u) => a + u.properties, 0))} />
            <Stat label="Conversions" value={formatInt(s.conversions)} hint={formatMoney(s.contract_value)} />
          </div>
          {s.users.length === 0 ? (
            <Empty>No touches logged on {s.day} yet.</Empty>
          ) : (
            <div class="card table-card">
              <table class="table" data-testid="crew-table">
                <caption class="sr-only">Touches per person on {s.day}</caption>
                <thead>
                  <tr>
                    <th scope="col">Person</th>
                    <th scope="col" class="num">
                      Touches
                    </th>
                    <th scope="col" class="num">
                      Homes
                    </th>
                    <th scope="col" class="num">
                      Signed
                    </th>
                    <th scope="col">By channel</th>
                    <th scope="col">By result</th>
                  </tr>
                </thead>
                <tbody>
                  {s.users.map((u) => (
                    <tr key={u.user_id}>
                      <th scope="row">
                        {u.user_name ?? 'Unknown user'}
                        <span class="mini-bar" aria-hidden="true">
                          <span style={{ width: `${(u.touches / maxTouches) * 100}%` }} />
                        </span>
                      </th>
                      <td class="num">{u.touches}</td>
                      <td class="num">{u.properties}</td>
                      <td class="num">{u.signed}</td>
                      <td>
                        <span class="chips">
                          {channels
                            .filter((c) => u.by_channel[c])
                            .map((c) => (
                              <span class="chip" key={c}>
                                {label(c)} {u.by_channel[c]}
                              </span>
                            ))}
                        </span>
                      </td>
                      <td>
                        <span class="chips">
                          {results
                            .filter((r) => u.by_result[r])
                            .map((r) => (
                              <span class={`chip chip-${r}`} key={r}>
                                {label(r)} {u.by_result[r]}
                              </span>
                            ))}
                        </span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

export function TerritoriesScreen() {
  const { backend } = useApp();
  const storms = useLoad(() => backend.storms({}), []);
  const [stormId, setStormId] = useState<string>('');
  useEffect(() => {
    if (!stormId && storms.data?.length) setStormId((storms.data.find((s) => s.status === 'active') ?? storms.data[0]).id);
  }, [storms.data]);
  const crews = useLoad(() => backend.crews({}), []);
  const data = useLoad(async () => {
    if (!stormId) return [];
    const ts = await backend.territories({ storm_id: stormId });
    return Promise.all(
      ts.map(async (t) => {
        const base = { storm_id: stormId, territory_id: t.id, limit: 1, offset: 0 };
        const [total, treat, fresh] = await Promise.all([
          backend.property_count({ query: base }),
          backend.property_count({ query: { ...base, decision: 'treat' } }),
          backend.property_count({ query: { ...base, status: 'new' } }),
        ]);
        return { t, total, treat, untouched: fresh };
      }),
    );
  }, [stormId]);
  return (
    <section class="page">
      <PageHeader title="Territories" subtitle="Which crew works which part of the storm, and how much is left.">
        <label class="field field-inline">
          <span>Storm</span>
          <select value={stormId} onChange={(e) => setStormId(e.currentTarget.value)} name="storm">
            {storms.data?.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
      </PageHeader>
      <ErrorNote error={data.error ?? storms.error} />
      {data.loading && !data.data && <Loading what="territories" />}
      {data.data && data.data.length === 0 && <Empty>This storm has no territories yet. The office draws them.</Empty>}
      <div class="tiles">
        {data.data?.map(({ t, total, treat, untouched }) => (
          <article class="card tile" key={t.id} data-testid="territory">
            <h2>{t.name}</h2>
            <p class="muted">{crews.data?.find((c) => c.id === t.crew_id)?.name ?? 'No crew assigned'}</p>
            <dl class="facts facts-compact">
              <div>
                <dt>Properties</dt>
                <dd>{formatInt(total)}</dd>
              </div>
              <div>
                <dt>To treat</dt>
                <dd>{formatInt(treat)}</dd>
              </div>
              <div>
                <dt>Not yet touched</dt>
                <dd>{formatInt(untouched)}</dd>
              </div>
            </dl>
            <div class="progress" role="progressbar" aria-label={`${t.name} worked`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={total ? Math.round(((total - untouched) / total) * 100) : 0}>
              <span class="progress-fill" style={{ width: `${total ? ((total - untouched) / total) * 100 : 0}%` }} />
            </div>
          </article>
        ))}
      </div>
    </section>
  );
}

/** A laptop's health in plain words, from what is known of it (see `DeviceSyncHealth`). */
export function laptopHealth(d: DeviceSyncHealth, now: number): [string, string] {
  if (d.status === 'revoked') return ['Removed', 'badge-none'];
  // Refused changes this laptop still holds, or a refusal the server saw after the last accepted batch.
  const refusedSincePush = d.last_refused_at_ms !== null && (d.last_push_at_ms === null || d.last_refused_at_ms > d.last_push_at_ms);
  if ((d.refused ?? 0) > 0 || refusedSincePush) return ['Needs attention', 'badge-alert'];
  const last = d.last_sync_at_ms;
  if (last === null || now - last > 12 * 3_600_000) return ['Not syncing', 'badge-alert'];
  if ((d.pending ?? 0) > 50 || now - last > 2 * 3_600_000) return ['Behind', 'badge-warn'];
  return ['Healthy', 'badge-ok'];
}

export function SyncHealthScreen() {
  const { backend, revision } = useApp();
  const now = useNow();
  const { data, error, loading } = useLoad<CrewSyncHealth>(() => backend.crew_sync_health({}), [revision]);
  // Server times are aged by the server's clock at the answer, so a laptop clock that is off does not
  // make every laptop look behind.
  const skew = data ? Date.now() - data.as_of_ms : 0;
  const ago = (at: number | null) => formatAgo(at === null ? null : at + skew, now);
  return (
    <section class="page">
      <PageHeader title="Sync health" subtitle="Each laptop: when the server last heard from it, what it sent, and what the server refused." />
      <ErrorNote error={error} />
      {data && !data.from_server && (
        <p class="error-note" role="status" data-testid="sync-health-local-only">
          Showing this laptop only — the server's list of laptops is not available: {errorText(data.server_error)}
        </p>
      )}
      {loading && !data && <Loading what="laptops" />}
      {data && (
        <div class="card table-card">
          <table class="table" data-testid="sync-health">
            <thead>
              <tr>
                <th scope="col">Laptop</th>
                <th scope="col">Health</th>
                <th scope="col">Last sync</th>
                <th scope="col">Last batch sent</th>
                <th scope="col" class="num">
                  Waiting
                </th>
                <th scope="col" class="num">
                  Refused
                </th>
              </tr>
            </thead>
            <tbody>
              {data.devices.map((d) => {
                const [text, cls] = laptopHealth(d, now);
                const refused = d.refused ?? d.refused_total;
                return (
                  <tr key={d.device_id} data-device-id={d.device_id} class={d.this_laptop ? 'row-self' : undefined}>
                    <th scope="row">
                      {d.user_name}
                      <span class="muted"> · {d.this_laptop ? 'this laptop' : d.device_name}</span>
                    </th>
                    <td>
                      <span class={`badge ${cls}`}>{text}</span>
                    </td>
                    <td>{d.this_laptop ? formatAgo(d.last_sync_at_ms, now) : ago(d.last_sync_at_ms)}</td>
                    <td>
                      {d.last_push_at_ms === null
                        ? d.this_laptop
                          ? '—'
                          : 'never'
                        : `${formatInt(d.last_push_changes ?? 0)} ${d.last_push_changes === 1 ? 'change' : 'changes'}, ${ago(d.last_push_at_ms)}`}
                    </td>
                    <td class="num">{d.pending === null ? <span aria-label="not reported">—</span> : formatInt(d.pending)}</td>
                    <td class="num" title={d.refused === null && d.last_refused_at_ms !== null ? `last refused ${ago(d.last_refused_at_ms)}` : undefined}>
                      {refused === null ? '—' : formatInt(refused)}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p class="muted table-note">
            Waiting: only a laptop knows what it still holds, so it is shown for this laptop; for the others the server reports when it last heard from them and
            the size of their last batch. Refused: this laptop's inbox; for the others, every change the server has refused from them.
          </p>
        </div>
      )}
    </section>
  );
}
