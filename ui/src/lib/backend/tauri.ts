// The real bridge: each command is a Tauri `invoke`, sync status arrives on the `sync-status` event.

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { toCommandError } from '../errors';
import { COMMAND_NAMES, EVENTS, type ArgsOf, type Backend, type CommandName, type ResultOf } from './commands';
import type { SyncStatus } from './types';

async function call<K extends CommandName>(name: K, args: ArgsOf<K>): Promise<ResultOf<K>> {
  try {
    return await invoke<ResultOf<K>>(name, (args ?? {}) as Record<string, unknown>);
  } catch (err) {
    // Rejections become `{code, message}` whatever shape the shell used.
    throw toCommandError(err);
  }
}

export function createTauriBackend(): Backend {
  const methods = Object.fromEntries(
    COMMAND_NAMES.map((name) => [name, (args: ArgsOf<typeof name>) => call(name, args)]),
  ) as unknown as Omit<Backend, 'kind' | 'onSyncStatus'>;
  return {
    ...methods,
    kind: 'tauri',
    async onSyncStatus(listener: (status: SyncStatus) => void) {
      const unlisten = await listen<SyncStatus>(EVENTS.syncStatus, (event) => listener(event.payload));
      return unlisten;
    },
  };
}

/** Whether the page runs inside the Tauri shell. */
export function insideTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}
