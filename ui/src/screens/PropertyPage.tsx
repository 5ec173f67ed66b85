// One property: facts, score and sync state, one-handed touch logging, outcome, treat/hold decision
// (with an override's required reason), and the journey timeline.

import { useState } from 'preact/hooks';
import { useApp, useLoad } from '../context';
import type { Channel, Decision, PolicyDecision, PolicyMode, PropertyDetail, TimelineEntry, TouchResult } from '../lib/backend/types';
import { CHANNELS } from '../lib/backend/types';
import { Choice, DecisionBadge, ErrorNote, Loading, SyncStateBadge, UpliftBadge } from '../components/common';
import { Dialog } from '../components/Dialog';
import { formatDateTime, formatMoney, formatPercent, formatUplift, label, parseMoneyToCents } from '../lib/format';
import { canOverridePolicy, canWriteFieldData } from '../lib/roles';
import { navigate } from '../lib/route';

/** Results that make sense for each channel (the first is the usual one). */
const RESULTS_FOR: Record<Channel, TouchResult[]> = {
  door_knock: ['no_answer', 'left_info', 'talked', 'interested', 'not_interested', 'scheduled'],
  call: ['no_answer', 'talked', 'interested', 'scheduled', 'not_interested', 'declined'],
  text: ['no_answer', 'interested', 'scheduled', 'not_interested'],
  mailer: ['left_info'],
  inspection: ['scheduled', 'completed', 'declined'],
  estimate: ['completed', 'declined', 'interested'],
  contract_signed: ['signed'],
};

/** The policy's current call: the latest non-override decision, else none. */
export function policyDecision(timeline: TimelineEntry[]): (PolicyDecision & { kind: 'decision' }) | null {
  for (let i = timeline.length - 1; i >= 0; i -= 1) {
    const e = timeline[i];
    if (e.kind === 'decision' && !e.is_override) return e;
  }
  return null;
}

export function PropertyPage({ id }: { id: string }) {
  const { backend, revision } = useApp();
  const [local, setLocal] = useState(0);
  const { data, error, loading } = useLoad(() => backend.property_detail({ property_id: id }), [id, revision, local]);
  const refresh = () => setLocal((n) => n + 1);

  if (error) {
    return (
      <section class="page">
        <BackLink />
        <ErrorNote error={error} />
      </section>
    );
  }
  if (!data) return <section class="page">{loading && <Loading what="the property" />}</section>;
  return <PropertyView detail={data} refresh={refresh} />;
}

function BackLink() {
  return (
    <a class="back-link" href="#/properties" onClick={(e) => (e.preventDefault(), history.length > 1 ? history.back() : navigate('properties'))}>
      ← Back to the list
    </a>
  );
}

function PropertyView({ detail, refresh }: { detail: PropertyDetail; refresh(): void }) {
  const { session } = useApp();
  const p = detail.property;
  const latest = [...detail.timeline].reverse().find((e) => e.kind === 'decision') as (PolicyDecision & { kind: 'decision' }) | undefined;
  const canWrite = canWriteFieldData(session?.role ?? null);
  return (
    <section class="page property-page">
      <BackLink />
      <header class="page-header">
        <div>
          <h1>{p.address}</h1>
          <p class="muted">
            {p.external_id} · {p.owner_name ?? 'Owner unknown'}
            {p.owner_phone && (
              <>
                {' · '}
                <a href={`tel:${p.owner_phone}`}>{p.owner_phone}</a>
              </>
            )}
          </p>
        </div>
        <div class="badges">
          <UpliftBadge uplift={detail.score?.uplift ?? null} fresh={detail.score_fresh} />
          <DecisionBadge decision={latest?.decision ?? null} />
          <SyncStateBadge state={detail.sync_state} />
        </div>
      </header>
      {detail.sync_state.state === 'refused' && (
        <p class="error-note" role="alert">
          The server refused a change to this property: {detail.sync_state.reason}. <a href="#/inbox">Open the inbox</a> to fix or discard it.
        </p>
      )}
      <div class="property-grid">
        <div class="stack">
          {canWrite && <LogTouch detail={detail} onDone={refresh} />}
          {canWrite && <DecisionPanel detail={detail} onDone={refresh} />}
          {canWrite && <OutcomePanel detail={detail} onDone={refresh} />}
        </div>
        <div class="stack">
          <Facts detail={detail} />
          <Timeline entries={detail.timeline} />
        </div>
      </div>
    </section>
  );
}

function Facts({ detail }: { detail: PropertyDetail }) {
  const p = detail.property;
  const s = detail.score;
  const rows: [string, string][] = [
    ['Status', label(p.status)],
    ['Roof', `${p.roof_material ? label(p.roof_material) : 'Material unknown'}${p.roof_age_years !== null ? `, ${p.roof_age_years} years` : ''}`],
    ['Size', p.square_feet !== null ? `${p.square_feet.toLocaleString('en-US')} sq ft` : '—'],
    ['Home value', formatMoney(p.home_value)],
    ['Hail at the home', p.hail_size_in !== null ? `${p.hail_size_in} in` : '—'],
    ['Distance to storm core', p.distance_to_core_km !== null ? `${p.distance_to_core_km} km` : '—'],
    ['Prior claims', String(p.prior_claims)],
    ['Owner email', p.owner_email ?? '—'],
  ];
  return (
    <section class="card" aria-labelledby="facts-title">
      <h2 id="facts-title">About this home</h2>
      <dl class="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <h3>Uplift score</h3>
      {s ? (
        <dl class="facts">
          <div>
            <dt>Uplift</dt>
            <dd>{formatUplift(s.uplift)} points</dd>
          </div>
          <div>
            <dt>Chance if visited</dt>
            <dd>{formatPercent(s.p_treat)}</dd>
          </div>
          <div>
            <dt>Chance if not</dt>
            <dd>{formatPercent(s.p_hold)}</dd>
          </div>
          <div>
            <dt>Model</dt>
            <dd>
              {s.model_version}, trained {formatDateTime(s.trained_at)}
              {detail.score_fresh === false && <span class="warn"> — stale: newer data is waiting for the next retrain</span>}
            </dd>
          </div>
        </dl>
      ) : (
        <p class="muted">Not scored yet. Scores arrive with the next sync after the office retrains.</p>
      )}
    </section>
  );
}

function LogTouch({ detail, onDone }: { detail: PropertyDetail; onDone(): void }) {
  const { backend, toast, toastError, bump } = useApp();
  const [channel, setChannel] = useState<Channel>('door_knock');
  const [result, setResult] = useState<TouchResult | null>(null);
  const [notes, setNotes] = useState('');
  const [busy, setBusy] = useState(false);
  const results = RESULTS_FOR[channel];
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!result) return;
    setBusy(true);
    try {
      await backend.log_touch({ property_id: detail.property.id, storm_id: detail.property.storm_id, channel, result, notes: notes.trim() });
      toast(`${label(channel)} logged: ${label(result).toLowerCase()}. Saved on this laptop; it goes with the next sync.`);
      setResult(null);
      setNotes('');
      bump();
      onDone();
    } catch (err) {
      toastError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="touch-title">
      <h2 id="touch-title">Log a touch</h2>
      <Choice
        legend="Channel"
        name="channel"
        options={CHANNELS}
        value={channel}
        onChange={(c) => {
          setChannel(c);
          setResult(RESULTS_FOR[c].length === 1 ? RESULTS_FOR[c][0] : null);
        }}
        columns={4}
      />
      <Choice<TouchResult> legend="Result" name="result" options={results} value={result} onChange={(v) => setResult(v)} columns={3} />
      <label class="field">
        <span>Notes (optional)</span>
        <textarea name="notes" rows={2} maxLength={4000} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} />
      </label>
      <button type="submit" class="btn btn-primary btn-big btn-block" disabled={!result || busy}>
        {result ? `Log ${label(channel).toLowerCase()} — ${label(result).toLowerCase()}` : 'Choose a result to log'}
      </button>
    </form>
  );
}

function DecisionPanel({ detail, onDone }: { detail: PropertyDetail; onDone(): void }) {
  const { backend, session, toast, toastError, bump } = useApp();
  const [overrideOpen, setOverrideOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [reasonError, setReasonError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const policy = policyDecision(detail.timeline);
  // A planned decision keeps the mode it was made in; otherwise the office's synced mode (or the default).
  const mode: PolicyMode = policy?.mode ?? detail.policy.mode;
  const recommended: Decision | null = policy?.decision ?? (detail.score ? (detail.score.uplift >= 0.15 ? 'treat' : 'hold') : null);
  const other: Decision = recommended === 'treat' ? 'hold' : 'treat';
  const mayOverride = canOverridePolicy(session?.role ?? null);

  const decide = async (decision: Decision, isOverride: boolean) => {
    setBusy(true);
    try {
      await backend.decide({
        property_id: detail.property.id,
        storm_id: detail.property.storm_id,
        decision,
        mode,
        is_override: isOverride,
        reason: isOverride ? reason.trim() : null,
      });
      toast(isOverride ? `Override saved: ${decision}.` : `Decision confirmed: ${decision}.`);
      setOverrideOpen(false);
      setReason('');
      bump();
      onDone();
    } catch (err) {
      if (isOverride) setReasonError(err);
      else toastError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="decision-title">
      <h2 id="decision-title">Treat or hold</h2>
      {recommended ? (
        <p>
          The policy ({mode}{!policy && detail.policy.source === 'office' ? ', set by the office' : ''}) says <strong data-testid="policy-says">{recommended === 'treat' ? 'treat: visit, call or offer an inspection' : 'hold: do not spend a visit here'}</strong>
          {policy?.reason ? ` — ${policy.reason.toLowerCase()}` : ''}.
        </p>
      ) : (
        <p class="muted">No score yet, so the policy has no call. Choose by what you see.</p>
      )}
      <div class="button-row">
        <button type="button" class="btn btn-secondary btn-big" disabled={busy} onClick={() => decide(recommended ?? 'treat', false)}>
          Confirm {recommended ?? 'treat'}
        </button>
        {mayOverride ? (
          <button
            type="button"
            class="btn btn-warn btn-big"
            disabled={busy}
            onClick={() => {
              setReasonError(null);
              setOverrideOpen(true);
            }}
          >
            Override to {other}…
          </button>
        ) : (
          <p class="muted small">Overrides are made by your crew chief.</p>
        )}
      </div>
      <Dialog open={overrideOpen} title={`Override the policy to ${other}`} onClose={() => setOverrideOpen(false)} id="override-dialog">
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!reason.trim()) {
              setReasonError({ code: 'validation.required', message: 'an override needs a reason' });
              return;
            }
            decide(other, true);
          }}
        >
          <p>An override is kept with the score and model it went against. Say why, in a sentence the office will understand.</p>
          <label class="field">
            <span>Reason (required)</span>
            <textarea name="reason" rows={3} value={reason} onInput={(e) => setReason(e.currentTarget.value)} aria-required="true" autoFocus />
          </label>
          <ErrorNote error={reasonError} />
          <div class="form-actions">
            <button type="button" class="btn btn-ghost" onClick={() => setOverrideOpen(false)}>
              Cancel
            </button>
            <button type="submit" class="btn btn-warn" disabled={busy}>
              Save override
            </button>
          </div>
        </form>
      </Dialog>
    </section>
  );
}

function OutcomePanel({ detail, onDone }: { detail: PropertyDetail; onDone(): void }) {
  const { backend, toast, bump } = useApp();
  const [converted, setConverted] = useState<'yes' | 'no' | null>(null);
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const cents = converted === 'yes' ? parseMoneyToCents(value) : 0;
    if (cents === null) {
      setError({ code: 'validation.invalid_format', message: 'enter the contract value in dollars, e.g. 14,500' });
      return;
    }
    setBusy(true);
    try {
      await backend.log_outcome({ property_id: detail.property.id, storm_id: detail.property.storm_id, converted: converted === 'yes', contract_value_cents: cents });
      toast(converted === 'yes' ? `Contract logged: ${formatMoney(cents)}.` : 'Outcome logged: not converted.');
      setConverted(null);
      setValue('');
      bump();
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="outcome-title">
      <h2 id="outcome-title">Outcome</h2>
      <Choice<'yes' | 'no'> legend="Did the owner sign?" name="converted" options={['yes', 'no'] as const} value={converted} onChange={(v) => setConverted(v)} labelOf={(v) => (v === 'yes' ? 'Signed a contract' : 'Did not convert')} columns={2} />
      {converted === 'yes' && (
        <label class="field">
          <span>Contract value (dollars)</span>
          <input name="contract_value" inputMode="decimal" value={value} onInput={(e) => setValue(e.currentTarget.value)} placeholder="14,500" required />
        </label>
      )}
      <ErrorNote error={error} />
      <button type="submit" class="btn btn-secondary btn-big btn-block" disabled={!converted || busy}>
        Log outcome
      </button>
    </form>
  );
}

function Timeline({ entries }: { entries: TimelineEntry[] }) {
  const { backend } = useApp();
  const users = useLoad(() => backend.users({}).catch(() => []), []);
  const nameOf = (id: string) => users.data?.find((u) => u.id === id)?.name ?? 'A crew member';
  return (
    <section class="card" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Journey</h2>
      {entries.length === 0 ? (
        <p class="muted">No touches yet. Log the first one when you reach the door.</p>
      ) : (
        <ol class="timeline" data-testid="timeline">
          {[...entries].reverse().map((e) => (
            <li key={e.id} class={`tl tl-${e.kind}`}>
              <span class="tl-time">{formatDateTime(e.kind === 'decision' ? e.decided_at : e.occurred_at)}</span>
              {e.kind === 'touch' && (
                <span>
                  <strong>
                    {label(e.channel)} — {label(e.result).toLowerCase()}
                  </strong>{' '}
                  <span class="muted">by {nameOf(e.user_id)}</span>
                  {e.notes && <span class="tl-notes">{e.notes}</span>}
                </span>
              )}
              {e.kind === 'outcome' && (
                <span>
                  <strong>{e.converted ? `Contract signed: ${formatMoney(e.contract_value)}` : 'Did not convert'}</strong>
                </span>
              )}
              {e.kind === 'decision' && (
                <span>
                  <strong>
                    {e.is_override ? 'Override' : 'Policy'}: {e.decision}
                  </strong>{' '}
                  <span class="muted">
                    ({e.mode}, uplift {formatUplift(e.uplift_score)}
                    {e.model_version ? `, ${e.model_version}` : ''}
                    {e.is_override ? `, by ${nameOf(e.decided_by)}` : ''})
                  </span>
                  {e.reason && <span class="tl-notes">{e.reason}</span>}
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
