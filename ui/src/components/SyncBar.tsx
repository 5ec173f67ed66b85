// The always-visible sync bar: connection state, pending work and its age, progress, last sync, Sync now.

import { useApp, useNow, useSyncStatus } from '../context';
import type { SyncStatus } from '../lib/backend/types';
import { errorText } from '../lib/errors';
import { formatAgo, formatDuration, formatEta, formatInt } from '../lib/format';
import { navigate } from '../lib/route';

const STATE_TEXT: Record<SyncStatus['connectivity'], string> = {
  unknown: 'Not connected yet',
  online: 'Online',
  offline: 'Offline',
  syncing: 'Syncing',
  error: 'Sync error',
  needs_sign_in: 'Needs sign-in',
  revoked: 'Laptop removed',
};

/** The progress fraction of a sync (push counts first, pull after). */
export function syncFraction(s: SyncStatus): number | null {
  if (s.connectivity !== 'syncing') return null;
  if (s.phase === 'authenticating') return 0.02;
  if (s.phase === 'pushing') return s.push.total ? 0.05 + 0.75 * (s.push.done / Math.max(1, s.push.total)) : 0.1;
  if (s.phase === 'pulling') return 0.85;
  return null;
}

export function SyncBar() {
  const { backend, session, toastError } = useApp();
  const { status, statusAt } = useSyncStatus();
  const now = useNow(10_000);
  if (!status || !session) return null;
  const syncing = status.connectivity === 'syncing';
  const age = status.oldest_pending_age_ms === null ? null : status.oldest_pending_age_ms + (now - statusAt);
  const fraction = syncFraction(status);
  const canSync = session.role !== 'viewer' || status.pending > 0;
  const sync = () => backend.sync_now({}).catch(toastError);

  let progressText = '';
  if (syncing) {
    if (status.phase === 'authenticating') progressText = 'Signing in…';
    else if (status.phase === 'pushing') progressText = `Sending ${formatInt(status.push.done)} of ${formatInt(status.push.total ?? 0)} changes`;
    else if (status.phase === 'pulling') progressText = `Receiving updates: ${formatInt(status.pull.done)} records`;
    const eta = formatEta(status.eta_ms);
    if (eta) progressText += ` · ${eta}`;
  }

  return (
    <div class={`syncbar syncbar-${status.connectivity}`} role="region" aria-label="Sync status" data-connectivity={status.connectivity}>
      <span class="sync-pill" data-testid="sync-state">
        <i class="sync-dot" aria-hidden="true" />
        {STATE_TEXT[status.connectivity]}
      </span>
      <span class="sync-item" data-testid="sync-pending">
        {status.pending === 0 ? 'Nothing waiting to sync' : `${formatInt(status.pending)} waiting to sync`}
        {status.pending > 0 && age !== null && <span class="muted"> · oldest {formatDuration(age)}</span>}
      </span>
      {syncing && (
        <span class="sync-progress" aria-live="polite">
          <span class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round((fraction ?? 0) * 100)} aria-label="Sync progress">
            <span class="progress-fill" style={{ width: `${Math.round((fraction ?? 0) * 100)}%` }} />
          </span>
          <span class="muted">{progressText}</span>
        </span>
      )}
      {!syncing && status.last_error && status.connectivity !== 'online' && <span class="sync-item sync-error">{errorText(status.last_error)}</span>}
      {status.refused > 0 && (
        <a class="sync-item sync-refused" href="#/inbox" onClick={() => navigate('inbox')}>
          {status.refused === 1 ? '1 change refused' : `${status.refused} changes refused`} — open inbox
        </a>
      )}
      <span class="sync-spacer" />
      <span class="sync-item muted" data-testid="sync-last">
        Last sync {formatAgo(status.last_success_at_ms, now)}
      </span>
      {status.connectivity === 'needs_sign_in' ? (
        <a class="btn btn-small btn-primary" href="#/sign-in">
          Sign in
        </a>
      ) : (
        canSync && (
          <button type="button" class="btn btn-small" onClick={sync} disabled={syncing} aria-disabled={syncing}>
            {syncing ? 'Syncing…' : 'Sync now'}
          </button>
        )
      )}
    </div>
  );
}
