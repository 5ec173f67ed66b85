// The sunlight (high-contrast) theme toggle, remembered in localStorage.

export type Theme = 'standard' | 'contrast';
export const THEME_KEY = 'stormops.theme';

export function loadTheme(storage: Pick<Storage, 'getItem'> | null = safeStorage()): Theme {
  try {
    return storage?.getItem(THEME_KEY) === 'contrast' ? 'contrast' : 'standard';
  } catch {
    return 'standard';
  }
}

export function saveTheme(theme: Theme, storage: Pick<Storage, 'setItem'> | null = safeStorage()) {
  try {
    storage?.setItem(THEME_KEY, theme);
  } catch {
    /* private mode: the choice lasts for this window only */
  }
}

export function applyTheme(theme: Theme) {
  if (typeof document !== 'undefined') document.documentElement.dataset.theme = theme;
}

function safeStorage(): Storage | null {
  try {
    return typeof localStorage !== 'undefined' ? localStorage : null;
  } catch {
    return null;
  }
}
