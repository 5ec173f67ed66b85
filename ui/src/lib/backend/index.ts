// Picks the bridge: Tauri inside the shell, the mock in a browser or when the URL asks for `?mock=...`.
// The mock (its demo data generator and query engine) is a chunk of its own, loaded only when chosen,
// so the app inside the shell neither downloads nor parses it at start.

import type { Backend } from './commands';
import { type MockPreset, MOCK_PRESETS } from './presets';
import { createTauriBackend, insideTauri } from './tauri';

export type { Backend } from './commands';

export function mockPresetFromUrl(search: string): MockPreset | null {
  const value = new URLSearchParams(search).get('mock');
  if (value === null) return null;
  return (MOCK_PRESETS as readonly string[]).includes(value) ? (value as MockPreset) : 'field';
}

export async function selectBackend(): Promise<Backend> {
  const search = typeof location !== 'undefined' ? location.search : '';
  const preset = mockPresetFromUrl(search);
  if (preset === null && insideTauri()) return createTauriBackend();
  const params = new URLSearchParams(search);
  const { createMockBackend } = await import('./mock');
  return createMockBackend({
    preset: preset ?? 'field',
    offline: params.get('net') === 'offline',
    latencyMs: Number(params.get('latency') ?? '') || undefined,
  });
}
