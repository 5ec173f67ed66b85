// The demo presets of the mock bridge (`?mock=...`) and what the unlock screen suggests for them. Kept
// apart from the mock itself, which is loaded only in a browser: the app inside the shell never loads it.

export const MOCK_PRESETS = ['field', 'chief', 'office', 'viewer', 'big'] as const;
export type MockPreset = (typeof MOCK_PRESETS)[number];

/** The local user of the demo file each preset suggests on the unlock screen. */
export const PRESET_USER: Record<MockPreset, string> = {
  field: 'sam',
  chief: 'marco',
  office: 'dana',
  viewer: 'helen',
  big: 'sam',
};

/** Every local user's passphrase in the demo file. */
export const DEMO_PASSPHRASE = 'storm-season-2026';
