// Shared app state: the bridge, the session, toasts and a ticking clock; the latest sync status in a
// context of its own, so a sync's stream of status events re-renders the sync bar and nothing else.

import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Backend } from './lib/backend';
import type { Session, SyncStatus } from './lib/backend/types';
import { coalescePerFrame } from './lib/coalesce';
import { errorText } from './lib/errors';

export interface Toast {
  id: number;
  text: string;
  kind: 'ok' | 'error' | 'info';
}

export interface AppState {
  backend: Backend;
  session: Session | null;
  setSession(s: Session | null): void;
  toast(text: string, kind?: Toast['kind']): void;
  toastError(err: unknown): void;
  /** Bumped after every local write, so views re-read. */
  revision: number;
  bump(): void;
}

const Ctx = createContext<AppState | null>(null);

export interface SyncStatusState {
  status: SyncStatus | null;
  /** When `status` arrived (to age its durations). */
  statusAt: number;
}

const StatusCtx = createContext<SyncStatusState>({ status: null, statusAt: 0 });

/** The latest sync status (only the components that show it subscribe). */
export function useSyncStatus(): SyncStatusState {
  return useContext(StatusCtx);
}

export function useApp(): AppState {
  const v = useContext(Ctx);
  if (!v) throw new Error('useApp outside AppProvider');
  return v;
}

export function AppProvider({ backend, children }: { backend: Backend; children: ComponentChildren }) {
  const [session, setSession] = useState<Session | null>(null);
  const [statusState, setStatusState] = useState<SyncStatusState>({ status: null, statusAt: Date.now() });
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [revision, setRevision] = useState(0);
  const nextId = useRef(1);
  const lastRefused = useRef<number | null>(null);
  const lastSuccess = useRef<number | null | undefined>(undefined);

  useEffect(() => {
    let off: (() => void) | null = null;
    let alive = true;
    const show = coalescePerFrame((s: SyncStatus) => setStatusState({ status: s, statusAt: Date.now() }));
    backend
      .onSyncStatus((s) => {
        show.push(s);
        // A finished sync may have pulled new data or moved changes to the inbox: reload then, and only
        // then. An offline laptop reports every failed attempt; reloading on each would cancel the
        // lists' queries before they answer.
        const synced = s.phase === 'idle' && s.last_success_at_ms !== lastSuccess.current;
        const refusedChanged = lastRefused.current !== null && s.refused !== lastRefused.current;
        if (synced || refusedChanged) setRevision((r) => r + 1);
        lastSuccess.current = s.last_success_at_ms;
        lastRefused.current = s.refused;
      })
      .then((u) => {
        if (alive) off = u;
        else u();
      });
    return () => {
      alive = false;
      show.cancel();
      off?.();
    };
  }, [backend]);

  useEffect(() => {
    if (!session) return;
    backend
      .sync_status({})
      .then((s) => setStatusState({ status: s, statusAt: Date.now() }))
      .catch(() => undefined);
  }, [backend, session]);

  const toast = useCallback((text: string, kind: Toast['kind'] = 'ok') => {
    const id = nextId.current++;
    setToasts((t) => [...t.slice(-3), { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === 'error' ? 7000 : 4000);
  }, []);
  const toastError = useCallback((err: unknown) => toast(errorText(err), 'error'), [toast]);
  const bump = useCallback(() => setRevision((r) => r + 1), []);

  const value = useMemo<AppState>(
    () => ({ backend, session, setSession, toast, toastError, revision, bump }),
    [backend, session, toast, toastError, revision, bump],
  );
  return (
    <Ctx.Provider value={value}>
      <StatusCtx.Provider value={statusState}>{children}</StatusCtx.Provider>
      <div class="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} class={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : undefined}>
            {t.text}
          </div>
        ))}
      </div>
    </Ctx.Provider>
  );
}

/** Re-renders every `ms` so relative times stay current. */
export function useNow(ms = 15_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Runs an async loader when deps change; exposes data, error and loading without blocking the UI. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: unknown; loading: boolean; reload(): void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    setLoading(true);
    load()
      .then((d) => {
        if (!alive) return;
        setData(d);
        setError(null);
      })
      .catch((e) => alive && setError(e))
      .finally(() => alive && setLoading(false));
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}
