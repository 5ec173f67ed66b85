// The inbox of changes the server refused: why, and retry, edit or discard each.

import { useState } from 'preact/hooks';
import { useApp, useLoad, useNow } from '../context';
import type { InboxItem } from '../lib/backend/types';
import { Empty, ErrorNote, Loading, PageHeader } from '../components/common';
import { Dialog } from '../components/Dialog';
import { ERROR_TEXT, errorText } from '../lib/errors';
import { formatAgo, formatDateTime, label } from '../lib/format';
import { canWriteFieldData } from '../lib/roles';

/** One line describing a change's record. */
export function describeChange(item: InboxItem): string {
  const p = (item.change.payload ?? {}) as Record<string, unknown>;
  switch (item.change.entity) {
    case 'journey_touch':
      return `${label(String(p.channel ?? 'touch'))} — ${label(String(p.result ?? '')).toLowerCase()}${typeof p.occurred_at === 'number' ? `, ${formatDateTime(p.occurred_at)}` : ''}`;
    case 'outcome':
      return p.converted ? 'Outcome: contract signed' : 'Outcome: did not convert';
    case 'policy_decision':
      return `${p.is_override ? 'Override' : 'Decision'}: ${String(p.decision ?? '')}`;
    default:
      return `${label(item.change.entity)} ${item.change.op}`;
  }
}

export function InboxScreen() {
  const { backend, revision, bump, toast, toastError, session } = useApp();
  const now = useNow();
  const [local, setLocal] = useState(0);
  const { data, error, loading } = useLoad(() => backend.inbox({}), [revision, local]);
  const [editing, setEditing] = useState<InboxItem | null>(null);
  const canWrite = canWriteFieldData(session?.role ?? null);
  const after = (text: string) => {
    toast(text);
    setLocal((n) => n + 1);
    bump();
  };
  return (
    <section class="page">
      <PageHeader title="Inbox" subtitle="Changes the server refused. Nothing here is lost: fix, retry or discard each one." />
      <ErrorNote error={error} />
      {loading && !data && <Loading what="the inbox" />}
      {data && data.length === 0 && <Empty>The inbox is empty. Every change you made was accepted or is waiting to sync.</Empty>}
      {data && data.length > 0 && (
        <ul class="inbox-list">
          {data.map((item) => (
            <li class="card inbox-item" key={item.change.id} data-testid="inbox-item">
              <div class="inbox-main">
                <strong>{describeChange(item)}</strong>
                <p class="error-text">{ERROR_TEXT[item.code] ?? errorText({ code: item.code, message: item.reason })}</p>
                <p class="muted small">
                  Server said: {item.reason} · refused {formatAgo(item.refused_at, now)}
                </p>
              </div>
              {canWrite && (
                <div class="button-row">
                  <button type="button" class="btn btn-secondary" onClick={() => backend.inbox_retry({ change_id: item.change.id }).then(() => after('Sent back to the outbox; it goes with the next sync.'), toastError)}>
                    Retry
                  </button>
                  <button type="button" class="btn btn-secondary" onClick={() => setEditing(item)}>
                    Edit…
                  </button>
                  <button type="button" class="btn btn-danger" onClick={() => backend.inbox_discard({ change_id: item.change.id }).then(() => after('Change discarded.'), toastError)}>
                    Discard
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      <EditDialog item={editing} onClose={() => setEditing(null)} onSaved={() => (setEditing(null), after('Edited and sent back to the outbox.'))} />
    </section>
  );
}

function EditDialog({ item, onClose, onSaved }: { item: InboxItem | null; onClose(): void; onSaved(): void }) {
  const { backend } = useApp();
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [lastId, setLastId] = useState<string | null>(null);
  if (item && item.change.id !== lastId) {
    setLastId(item.change.id);
    setText(JSON.stringify(item.change.payload, null, 2));
    setError(null);
  }
  const save = async (e: Event) => {
    e.preventDefault();
    if (!item) return;
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      setError({ code: 'local.json', message: 'The record is not valid JSON: check quotes, commas and braces.' });
      return;
    }
    try {
      await backend.inbox_edit({ change_id: item.change.id, payload });
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Dialog open={item !== null} title="Edit the refused change" onClose={onClose} id="edit-dialog">
      <form class="form" onSubmit={save}>
        <p class="muted">Correct the value the server refused{item ? ` (${item.reason})` : ''}. Times are Unix milliseconds.</p>
        <label class="field">
          <span>Record</span>
          <textarea class="code" rows={14} value={text} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} name="payload" />
        </label>
        <ErrorNote error={error} />
        <div class="form-actions">
          <button type="button" class="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary">
            Save and retry
          </button>
        </div>
      </form>
    </Dialog>
  );
}
