// Office dashboards: storms and CSV import, users and crews, experiment and lift, uplift health, usage.

import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp, useLoad } from '../context';
import type { ImportReport, Storm, UsageItem } from '../lib/backend/types';
import { Empty, ErrorNote, Loading, PageHeader, Stat } from '../components/common';
import { LiftChart, RateBars, UpliftHistogram } from '../components/charts';
import { Dialog } from '../components/Dialog';
import { formatBytes, formatDate, formatDateTime, formatInt, formatPercent, formatPoints, label } from '../lib/format';
import { isAdmin } from '../lib/roles';

const SAMPLE_CSV = `external_id,address,latitude,longitude,roof_material,roof_age_years,home_value_cents,owner_name
NRM-900001,1412 Cedar Ridge Dr, Norman, OK,35.2301,-97.4412,asphalt_shingle,17,28500000,Alex Nguyen`;

/** The storm picker shared by the office pages; remembers the choice across pages. */
let rememberedStorm = '';
function useStormPicker() {
  const { backend, revision } = useApp();
  const storms = useLoad(() => backend.storms({}), [revision]);
  const [stormId, setStormId] = useState(rememberedStorm);
  useEffect(() => {
    if (storms.data?.length && !storms.data.some((s) => s.id === stormId)) {
      setStormId((storms.data.find((s) => s.status === 'active') ?? storms.data[0]).id);
    }
  }, [storms.data]);
  useEffect(() => {
    rememberedStorm = stormId;
  }, [stormId]);
  const picker = (
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
  );
  return { storms, stormId, setStormId, picker };
}

export function StormsScreen() {
  const { backend, session, bump, toast } = useApp();
  const { storms, stormId, picker } = useStormPicker();
  const [creating, setCreating] = useState(false);
  const [csv, setCsv] = useState('');
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const admin = isAdmin(session?.role ?? null);
  const reportRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Bring the error report into view and give it focus, so the lines to fix are what the user sees next.
    if (report && report.errors.length > 0 && reportRef.current) {
      reportRef.current.scrollIntoView({ block: 'center' });
      reportRef.current.focus({ preventScroll: true });
    }
  }, [report]);

  const importCsv = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      const r = await backend.property_import_csv({ storm_id: stormId, csv_text: csv });
      setReport(r);
      if (r.errors.length === 0) {
        toast(`${formatInt(r.imported)} properties imported.`);
        bump();
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const readFile = async (file: File | undefined) => {
    if (!file) return;
    setCsv(await file.text());
    setReport(null);
  };

  return (
    <section class="page">
      <PageHeader title="Storms & import" subtitle="Create a storm, then import the affected properties.">
        {admin && (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>
            New storm
          </button>
        )}
      </PageHeader>
      <ErrorNote error={storms.error} />
      {storms.loading && !storms.data && <Loading what="storms" />}
      <div class="card table-card">
        <table class="table" data-testid="storms">
          <thead>
            <tr>
              <th scope="col">Storm</th>
              <th scope="col">Event</th>
              <th scope="col">Started</th>
              <th scope="col" class="num">
                Hail
              </th>
              <th scope="col" class="num">
                Wind
              </th>
              <th scope="col">Area</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {storms.data?.map((s) => (
              <tr key={s.id}>
                <th scope="row">{s.name}</th>
                <td>{s.event_id}</td>
                <td>{formatDate(s.started_at)}</td>
                <td class="num">{s.hail_size_in} in</td>
                <td class="num">{s.wind_mph} mph</td>
                <td>{s.affected_area}</td>
                <td>
                  <span class={`badge badge-storm-${s.status}`}>{label(s.status)}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {admin && (
        <form class="card form" onSubmit={importCsv} aria-labelledby="import-title">
          <h2 id="import-title">Import properties (CSV)</h2>
          <p class="muted">
            First line names the columns. Required: external_id, address, latitude, longitude. Optional: roof_age_years, roof_material, square_feet, home_value_cents,
            hail_size_in, distance_to_core_km, prior_claims, owner_name, owner_phone, owner_email, status. Quote cells that contain commas. If any line has an error,
            nothing is imported.
          </p>
          <div class="form-row">
            {picker}
            <label class="field field-inline">
              <span>CSV file</span>
              <input type="file" accept=".csv,text/csv" onChange={(e) => readFile(e.currentTarget.files?.[0])} name="csv_file" />
            </label>
          </div>
          <label class="field">
            <span>Or paste the CSV</span>
            <textarea class="code" rows={8} name="csv_text" value={csv} placeholder={SAMPLE_CSV.replace('1412 Cedar Ridge Dr, Norman, OK', '"1412 Cedar Ridge Dr, Norman, OK"')} onInput={(e) => setCsv(e.currentTarget.value)} />
          </label>
          <ErrorNote error={error} />
          <div class="form-actions form-actions-left">
            <button type="submit" class="btn btn-primary" disabled={busy || !csv.trim() || !stormId}>
              {busy ? 'Importing…' : 'Import'}
            </button>
          </div>
          {report && report.errors.length === 0 && (
            <p class="ok-note" role="status">
              Imported {formatInt(report.imported)} properties.
            </p>
          )}
          {report && report.errors.length > 0 && (
            <div class="import-errors" role="alert" data-testid="import-errors" ref={reportRef} tabIndex={-1}>
              <p>
                <strong>Nothing was imported.</strong> Fix {report.errors.length === 1 ? 'this line' : `these ${report.errors.length} lines`} and import again:
              </p>
              <table class="table table-compact">
                <thead>
                  <tr>
                    <th scope="col" class="num">
                      Line
                    </th>
                    <th scope="col">Column</th>
                    <th scope="col">Problem</th>
                  </tr>
                </thead>
                <tbody>
                  {report.errors.map((e, i) => (
                    <tr key={i}>
                      <td class="num">{e.line}</td>
                      <td>{e.field}</td>
                      <td>{e.message}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </form>
      )}
      <NewStormDialog open={creating} onClose={() => setCreating(false)} onCreated={(s) => (setCreating(false), toast(`Storm “${s.name}” created.`), bump())} />
    </section>
  );
}

function NewStormDialog({ open, onClose, onCreated }: { open: boolean; onClose(): void; onCreated(s: Storm): void }) {
  const { backend } = useApp();
  const [f, setF] = useState({ name: '', event_id: '', started: new Date().toISOString().slice(0, 10), ended: '', hail: '1.75', wind: '60', area: '' });
  const [error, setError] = useState<unknown>(null);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const s = await backend.storm_create({
        name: f.name.trim(),
        event_id: f.event_id.trim(),
        started_at: Date.parse(`${f.started}T00:00:00Z`),
        ended_at: f.ended ? Date.parse(`${f.ended}T23:59:59Z`) : null,
        hail_size_in: Number(f.hail),
        wind_mph: Number(f.wind),
        affected_area: f.area.trim(),
      });
      onCreated(s);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Dialog open={open} title="New storm" onClose={onClose} id="storm-dialog">
      <form class="form" onSubmit={submit}>
        <div class="form-grid">
          <label class="field">
            <span>Name</span>
            <input value={f.name} onInput={set('name')} required placeholder="May 3 hail — Edmond" name="name" />
          </label>
          <label class="field">
            <span>Weather service event ID</span>
            <input value={f.event_id} onInput={set('event_id')} required placeholder="NWS-OUN-2026-0503" name="event_id" />
          </label>
          <label class="field">
            <span>Started (UTC day)</span>
            <input type="date" value={f.started} onInput={set('started')} required name="started" />
          </label>
          <label class="field">
            <span>Ended (optional)</span>
            <input type="date" value={f.ended} onInput={set('ended')} name="ended" />
          </label>
          <label class="field">
            <span>Largest hail (inches)</span>
            <input type="number" step="0.25" min="0" max="10" value={f.hail} onInput={set('hail')} required name="hail" />
          </label>
          <label class="field">
            <span>Peak wind (mph)</span>
            <input type="number" step="1" min="0" max="300" value={f.wind} onInput={set('wind')} required name="wind" />
          </label>
        </div>
        <label class="field">
          <span>Affected area</span>
          <input value={f.area} onInput={set('area')} placeholder="Edmond and north Oklahoma City" name="area" />
        </label>
        <ErrorNote error={error} />
        <div class="form-actions">
          <button type="button" class="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary">
            Create storm
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function PeopleScreen() {
  const { backend } = useApp();
  const users = useLoad(() => backend.users({}), []);
  const crews = useLoad(() => backend.crews({}), []);
  const crewName = (id: string | null) => crews.data?.find((c) => c.id === id)?.name ?? '—';
  return (
    <section class="page">
      <PageHeader title="Users & crews" subtitle="Who signs in, their role, and which crew they work with. Accounts are managed on the server." />
      <ErrorNote error={users.error ?? crews.error} />
      <div class="tiles">
        {crews.data?.map((c) => (
          <article class="card tile" key={c.id}>
            <h2>{c.name}</h2>
            <p class="muted">Chief: {users.data?.find((u) => u.id === c.chief_id)?.name ?? 'none'}</p>
            <p>{users.data?.filter((u) => u.crew_id === c.id).length ?? 0} people</p>
          </article>
        ))}
      </div>
      <div class="card table-card">
        <table class="table" data-testid="users">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Crew</th>
            </tr>
          </thead>
          <tbody>
            {users.data?.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.name}</th>
                <td>{u.email}</td>
                <td>
                  <span class={`badge badge-role-${u.role}`}>{label(u.role)}</span>
                </td>
                <td>{crewName(u.crew_id)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function ExperimentScreen() {
  const { backend, session, toast } = useApp();
  const { stormId, picker } = useStormPicker();
  const [local, setLocal] = useState(0);
  const summary = useLoad(() => (stormId ? backend.experiment_summary({ storm_id: stormId }) : Promise.resolve(null)), [stormId, local]);
  const [share, setShare] = useState(80);
  const [error, setError] = useState<unknown>(null);
  const admin = isAdmin(session?.role ?? null);
  const s = summary.data;
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await backend.experiment_create({ storm_id: stormId, treatment_share: share / 100 });
      toast('Experiment started. Properties are assigned to arms as they sync.');
      setLocal((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section class="page">
      <PageHeader title="Experiment & lift" subtitle="A random holdout keeps lift measurable: treated conversion minus control conversion.">
        {picker}
      </PageHeader>
      <ErrorNote error={summary.error} />
      {summary.loading && !s && <Loading what="the experiment" />}
      {!summary.loading && !s && (
        <div class="card form">
          <h2>No experiment for this storm yet</h2>
          {admin ? (
            <form onSubmit={create} class="form">
              <p>Choose how much of the storm the policy may treat. The rest is a random control holdout that is never targeted, so lift can be measured.</p>
              <label class="field">
                <span>
                  Treatment share: <strong>{share}%</strong> treated, {100 - share}% held out
                </span>
                <input type="range" min={50} max={95} step={5} value={share} onInput={(e) => setShare(Number(e.currentTarget.value))} name="treatment_share" />
              </label>
              <ErrorNote error={error} />
              <div class="form-actions form-actions-left">
                <button type="submit" class="btn btn-primary">
                  Start experiment
                </button>
              </div>
            </form>
          ) : (
            <p class="muted">An office admin sets up the experiment.</p>
          )}
        </div>
      )}
      {s && !s.lift && (
        <div class="card" data-testid="lift-waiting">
          <h2>Waiting for outcomes</h2>
          <p class="muted">
            The experiment is running (treatment share {formatPercent(s.treatment_share, 0)}). Lift and its confidence interval appear once both the treated and the control arm have outcomes: {formatInt(s.treated.rows)} treated and {formatInt(s.control.rows)} control so far.
          </p>
        </div>
      )}
      {s && s.lift && (
        <>
          <div class="stats">
            <Stat label="Lift" value={formatPoints(s.lift.lift)} hint={`95% CI ${formatPoints(s.lift.ci_low)} to ${formatPoints(s.lift.ci_high)}`} />
            <Stat label="Treated conversion" value={formatPercent(s.lift.treated_rate)} hint={`${formatInt(s.treated.conversions)} of ${formatInt(s.treated.rows)}`} />
            <Stat label="Control conversion" value={formatPercent(s.lift.control_rate)} hint={`${formatInt(s.control.conversions)} of ${formatInt(s.control.rows)}`} />
            <Stat label="p-value" value={s.lift.p_value < 0.001 ? '< 0.001' : s.lift.p_value.toFixed(3)} hint={`z = ${s.lift.z.toFixed(2)}`} />
          </div>
          <section class="card" aria-labelledby="lift-title">
            <h2 id="lift-title">Conversion lift with 95% confidence interval</h2>
            <LiftChart lift={s.lift} />
            <p class="muted">
              {s.lift.ci_low > 0.05
                ? 'The whole interval is above the 5-point target: treating by uplift clearly pays.'
                : s.lift.ci_low > 0
                  ? 'Lift is positive, but the interval reaches below the 5-point target. Keep the holdout and collect more outcomes.'
                  : 'The interval includes zero: the data cannot yet tell treated from control. Check policy compliance and collect more outcomes.'}
            </p>
            <RateBars treated={s.lift.treated_rate} control={s.lift.control_rate} />
            <p class="muted small">
              Treatment share {formatPercent(s.treatment_share, 0)} · holdout {formatPercent(1 - s.treatment_share, 0)}
            </p>
          </section>
          {s.model && (
            <section class="card" aria-labelledby="model-title">
              <h2 id="model-title">Current model</h2>
              <dl class="facts">
                <div>
                  <dt>Version</dt>
                  <dd>{s.model.version}</dd>
                </div>
                <div>
                  <dt>Learner</dt>
                  <dd>{label(s.model.learner)}</dd>
                </div>
                <div>
                  <dt>Trained</dt>
                  <dd>{formatDateTime(s.model.trained_at)}</dd>
                </div>
                <div>
                  <dt>Qini coefficient</dt>
                  <dd>{s.model.qini.toFixed(3)}</dd>
                </div>
                <div>
                  <dt>AUUC</dt>
                  <dd>{s.model.auuc.toFixed(3)}</dd>
                </div>
                <div>
                  <dt>Uplift at top 30%</dt>
                  <dd>{formatPoints(s.model.uplift_at_30)}</dd>
                </div>
              </dl>
            </section>
          )}
        </>
      )}
    </section>
  );
}

export function ModelHealthScreen() {
  const { backend } = useApp();
  const { stormId, picker } = useStormPicker();
  const dist = useLoad(() => (stormId ? backend.uplift_distribution({ storm_id: stormId }) : Promise.resolve(null)), [stormId]);
  const d = dist.data;
  const meanReading = d?.readings.find((r) => r.check === 'uplift_mean');
  const alerts = d?.readings.filter((r) => r.status !== 'ok') ?? [];
  const fmt = (check: string, v: number) => (check === 'nulls' ? formatInt(v) : check === 'volume' ? formatPercent(v) : formatPoints(v));
  return (
    <section class="page">
      <PageHeader title="Uplift health" subtitle="The distribution of this storm's scores and the data-health checks, with what to do when one fails.">
        {picker}
      </PageHeader>
      <ErrorNote error={dist.error} />
      {dist.loading && !d && <Loading what="scores" />}
      {d && (
        <>
          {alerts.length > 0 && (
            <section class="alerts" aria-labelledby="alerts-title" data-testid="drift-alerts">
              <h2 id="alerts-title" class="sr-only">
                Alerts
              </h2>
              {alerts.map((a) => (
                <div class={`alert alert-${a.status}`} role="alert" key={a.check}>
                  <strong>
                    {label(a.check)} is {fmt(a.check, a.value)}
                  </strong>{' '}
                  — expected {a.check === 'conversion_lift' || a.check === 'volume' ? `at least ${fmt(a.check, a.expected_low)}` : `${fmt(a.check, a.expected_low)} to ${fmt(a.check, a.expected_high)}`}.
                  <div class="runbook">
                    <span class="runbook-label">Runbook:</span> {a.runbook}.
                  </div>
                </div>
              ))}
            </section>
          )}
          <section class="card" aria-labelledby="hist-title">
            <h2 id="hist-title">Distribution of uplift scores ({formatInt(d.scores.length)} scored properties)</h2>
            {d.scores.length === 0 ? <Empty>No scores yet for this storm.</Empty> : <UpliftHistogram scores={d.scores} expectedLow={meanReading?.expected_low} expectedHigh={meanReading?.expected_high} />}
          </section>
          <div class="card table-card">
            <table class="table" data-testid="health-readings">
              <thead>
                <tr>
                  <th scope="col">Check</th>
                  <th scope="col" class="num">
                    Value
                  </th>
                  <th scope="col">Expected</th>
                  <th scope="col">Status</th>
                  <th scope="col">Runbook</th>
                </tr>
              </thead>
              <tbody>
                {d.readings.map((r) => (
                  <tr key={r.check}>
                    <th scope="row">{label(r.check)}</th>
                    <td class="num">{fmt(r.check, r.value)}</td>
                    <td>{r.expected_high >= 1 && r.check !== 'nulls' ? `≥ ${fmt(r.check, r.expected_low)}` : `${fmt(r.check, r.expected_low)} – ${fmt(r.check, r.expected_high)}`}</td>
                    <td>
                      <span class={`badge badge-q-${r.status}`}>{r.status === 'ok' ? 'OK' : r.status === 'warn' ? 'Warning' : 'Alert'}</span>
                    </td>
                    <td class="small">{r.runbook}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

export function usageFormat(item: UsageItem, v: number): string {
  return item.kind === 'storage_bytes' ? formatBytes(v) : item.kind === 'requests' ? `${formatInt(v)}/min` : formatInt(v);
}

export function UsageScreen() {
  const { backend } = useApp();
  const { data, error, loading } = useLoad(() => backend.usage({}), []);
  return (
    <section class="page">
      <PageHeader title="Usage & plan" subtitle={data ? `${label(data.plan)} plan · this period since ${formatDate(data.period_start_ms)}` : undefined} />
      <ErrorNote error={error} />
      {loading && !data && <Loading what="usage" />}
      {data?.recommendation && (
        <div class="alert alert-warn" role="status">
          {data.recommendation}
        </div>
      )}
      {data && (
        <div class="card">
          <ul class="usage-list" data-testid="usage">
            {data.items.map((it) => {
              const share = it.soft_limit > 0 ? it.used / it.soft_limit : 0;
              const level = it.used >= it.hard_limit ? 'over' : share >= 0.9 ? 'near' : 'ok';
              return (
                <li key={it.kind} class={`usage usage-${level}`}>
                  <div class="usage-head">
                    <strong>{label(it.kind)}</strong>
                    <span>
                      {usageFormat(it, it.used)} of {usageFormat(it, it.soft_limit)}
                      {it.hard_limit > it.soft_limit && <span class="muted"> (hard limit {usageFormat(it, it.hard_limit)})</span>}
                    </span>
                  </div>
                  <div class="progress" role="progressbar" aria-label={label(it.kind)} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(Math.min(1, share) * 100)}>
                    <span class="progress-fill" style={{ width: `${Math.min(100, share * 100)}%` }} />
                  </div>
                </li>
              );
            })}
          </ul>
        </div>
      )}
    </section>
  );
}
