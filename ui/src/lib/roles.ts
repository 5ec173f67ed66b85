// What each role may see and do: the navigation per role and the write permissions the UI honours.

import type { Role } from './backend/types';

export interface NavItem {
  route: string;
  label: string;
}

const NAV: Record<Role, NavItem[]> = {
  field_user: [
    { route: 'properties', label: 'Properties' },
    { route: 'inbox', label: 'Inbox' },
  ],
  crew_chief: [
    { route: 'properties', label: 'Properties' },
    { route: 'crew-day', label: 'Crew day' },
    { route: 'territories', label: 'Territories' },
    { route: 'sync-health', label: 'Sync health' },
    { route: 'inbox', label: 'Inbox' },
  ],
  admin: [
    { route: 'storms', label: 'Storms & import' },
    { route: 'people', label: 'Users & crews' },
    { route: 'experiment', label: 'Experiment & lift' },
    { route: 'model-health', label: 'Uplift health' },
    { route: 'usage', label: 'Usage & plan' },
    { route: 'crew-day', label: 'Crew day' },
    { route: 'sync-health', label: 'Sync health' },
    { route: 'properties', label: 'Properties' },
    { route: 'inbox', label: 'Inbox' },
  ],
  viewer: [
    { route: 'experiment', label: 'Experiment & lift' },
    { route: 'model-health', label: 'Uplift health' },
    { route: 'crew-day', label: 'Crew day' },
    { route: 'usage', label: 'Usage & plan' },
  ],
};

export function navFor(role: Role): NavItem[] {
  return NAV[role];
}

export function homeRoute(role: Role): string {
  return NAV[role][0].route;
}

/** Whether `route` is reachable for the role (the property page belongs to the properties list). */
export function routeAllowed(role: Role, route: string): boolean {
  const r = route === 'property' ? 'properties' : route;
  return NAV[role].some((n) => n.route === r);
}

export const canWriteFieldData = (role: Role | null) => role === 'admin' || role === 'crew_chief' || role === 'field_user';
export const canOverridePolicy = (role: Role | null) => role === 'admin' || role === 'crew_chief';
export const isAdmin = (role: Role | null) => role === 'admin';
