// Small shared pieces: badges, error notes, empty states, segmented big-button choices, page headers.

import type { ComponentChildren } from 'preact';
import type { Decision, RecordSyncState } from '../lib/backend/types';
import { errorText } from '../lib/errors';
import { formatUplift, label } from '../lib/format';

export function PageHeader({ title, children, subtitle }: { title: string; subtitle?: string; children?: ComponentChildren }) {
  return (
    <header class="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p class="muted">{subtitle}</p>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </header>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error-note" role="alert">
      {errorText(error)}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="loading" aria-busy="true">
      Loading {what}…
    </div>
  );
}

export function DecisionBadge({ decision }: { decision: Decision | null }) {
  if (!decision) return <span class="badge badge-none">No decision</span>;
  return <span class={`badge badge-${decision}`}>{decision === 'treat' ? 'Treat' : 'Hold'}</span>;
}

export function UpliftBadge({ uplift, fresh }: { uplift: number | null; fresh?: boolean | null }) {
  if (uplift === null) return <span class="badge badge-none">Unscored</span>;
  const tier = uplift >= 0.25 ? 'high' : uplift >= 0.1 ? 'mid' : 'low';
  return (
    <span class={`badge badge-uplift-${tier}`} title="Uplift: points of conversion chance a visit adds">
      {formatUplift(uplift)} uplift
      {fresh === false && <span class="stale-dot"> · stale</span>}
      {fresh === true && <span> · fresh</span>}
    </span>
  );
}

export function SyncStateBadge({ state }: { state: RecordSyncState }) {
  if (state.state === 'synced') return <span class="badge badge-ok">Synced</span>;
  if (state.state === 'pending')
    return <span class="badge badge-warn">{state.changes === 1 ? '1 change waiting to sync' : `${state.changes} changes waiting to sync`}</span>;
  return (
    <span class="badge badge-alert" title={state.reason}>
      Refused by server — see inbox
    </span>
  );
}

/** A group of large toggle buttons (radio semantics) for gloved, one-handed choice. */
export function Choice<T extends string>({
  legend,
  options,
  value,
  onChange,
  name,
  labelOf = label,
  columns,
}: {
  legend: string;
  options: readonly T[];
  value: T | null;
  onChange(v: T): void;
  name: string;
  labelOf?: (v: T) => string;
  columns?: number;
}) {
  const onKey = (e: KeyboardEvent, i: number) => {
    const delta = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? -1 : 0;
    if (!delta) return;
    e.preventDefault();
    const next = (i + delta + options.length) % options.length;
    onChange(options[next]);
    const group = (e.currentTarget as HTMLElement).parentElement;
    (group?.children[next] as HTMLElement | undefined)?.focus();
  };
  const active = value ?? options[0];
  return (
    <fieldset class="choice">
      <legend>{legend}</legend>
      <div class="choice-grid" role="radiogroup" aria-label={legend} style={columns ? { gridTemplateColumns: `repeat(${columns}, minmax(0, 1fr))` } : undefined}>
        {options.map((o, i) => (
          <button
            type="button"
            role="radio"
            aria-checked={value === o}
            tabIndex={o === active ? 0 : -1}
            class={`choice-btn${value === o ? ' selected' : ''}`}
            data-name={name}
            data-value={o}
            onClick={() => onChange(o)}
            onKeyDown={(e) => onKey(e, i)}
            key={o}
          >
            {labelOf(o)}
          </button>
        ))}
      </div>
    </fieldset>
  );
}

export function Stat({ label: l, value, hint }: { label: string; value: ComponentChildren; hint?: string }) {
  return (
    <div class="stat">
      <div class="stat-label">{l}</div>
      <div class="stat-value">{value}</div>
      {hint && <div class="stat-hint">{hint}</div>}
    </div>
  );
}
