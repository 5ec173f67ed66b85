// Unit tests of role navigation and permissions, the theme memory and hash routes.
import { describe, expect, test } from 'vitest';
import { ROLES } from './backend/types';
import { canOverridePolicy, canWriteFieldData, homeRoute, navFor, routeAllowed } from './roles';
import { parseHash } from './route';
import { loadTheme, saveTheme, THEME_KEY } from './theme';

describe('roles', () => {
  test('every role has a home it may open', () => {
    for (const r of ROLES) expect(routeAllowed(r, homeRoute(r))).toBe(true);
  });
  test('viewers get dashboards only, no inbox or property writing', () => {
    const routes = navFor('viewer').map((n) => n.route);
    expect(routes).not.toContain('inbox');
    expect(routes).not.toContain('properties');
    expect(routeAllowed('viewer', 'storms')).toBe(false);
    // Laptops' sync health names people's laptops: crew chiefs and admins only, as on the server.
    expect(routeAllowed('viewer', 'sync-health')).toBe(false);
    expect(routeAllowed('crew_chief', 'sync-health')).toBe(true);
    expect(canWriteFieldData('viewer')).toBe(false);
  });
  test('override is for chiefs and admins, as the domain says', () => {
    expect(canOverridePolicy('field_user')).toBe(false);
    expect(canOverridePolicy('crew_chief')).toBe(true);
    expect(canOverridePolicy('admin')).toBe(true);
    expect(canWriteFieldData('field_user')).toBe(true);
  });
  test('the property page belongs to the properties list', () => {
    expect(routeAllowed('field_user', 'property')).toBe(true);
    expect(routeAllowed('field_user', 'usage')).toBe(false);
  });
});

describe('routes', () => {
  test('parse name and param', () => {
    expect(parseHash('#/property/abc%20d')).toEqual({ name: 'property', param: 'abc d' });
    expect(parseHash('')).toEqual({ name: '', param: null });
    expect(parseHash('#/inbox')).toEqual({ name: 'inbox', param: null });
  });
});

describe('theme memory', () => {
  test('round-trips through storage and defaults to standard', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    expect(loadTheme(storage)).toBe('standard');
    saveTheme('contrast', storage);
    expect(store.get(THEME_KEY)).toBe('contrast');
    expect(loadTheme(storage)).toBe('contrast');
    expect(loadTheme({ getItem: () => { throw new Error('denied'); } })).toBe('standard');
  });
});
