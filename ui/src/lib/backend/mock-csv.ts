// CSV parsing and per-line validation of a property import, with the columns of the CLI's import.

import type { ImportLineError, Property, PropertyStatus, RoofMaterial, Uuid } from './types';
import { PROPERTY_STATUSES, ROOF_MATERIALS } from './types';

export const REQUIRED_COLUMNS = ['external_id', 'address', 'latitude', 'longitude'] as const;
export const OPTIONAL_COLUMNS = [
  'roof_age_years',
  'roof_material',
  'square_feet',
  'home_value_cents',
  'hail_size_in',
  'distance_to_core_km',
  'prior_claims',
  'owner_name',
  'owner_phone',
  'owner_email',
  'status',
] as const;

/** Splits CSV text into rows of cells (RFC 4180 quotes, CRLF or LF), keeping each row's line number. */
export function splitCsv(text: string): { line: number; cells: string[] }[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line += 1;
        cell += c;
      }
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      cells.push(cell);
      if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
      cells = [];
      cell = '';
      line += 1;
      rowLine = line;
    } else cell += c;
  }
  cells.push(cell);
  if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
  return rows;
}

/**
 * The snake_case form of a header cell or a vocabulary value, as the real import (crate property-csv)
 * reads them: trimmed, Excel's byte-order mark dropped, lower case, each run of spaces, hyphens or
 * underscores one `_` — so `External ID` names `external_id` and `Asphalt Shingle` is `asphalt_shingle`.
 */
export function snakeCase(text: string): string {
  const words = text.trim().replace(/^\uFEFF/, '').trim().split(/[\s_-]+/).filter((w) => w !== '');
  return words.join('_').toLowerCase();
}

function num(text: string): number | null {
  if (text === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : NaN;
}

/** Parses and validates every row; properties are returned only when there is no error. */
export function parsePropertyCsv(
  text: string,
  stormId: Uuid,
  newId: () => Uuid,
  existingExternalIds: ReadonlySet<string> = new Set(),
): { properties: Property[]; errors: ImportLineError[] } {
  const rows = splitCsv(text);
  const errors: ImportLineError[] = [];
  if (rows.length === 0) return { properties: [], errors: [{ line: 1, field: 'header', message: 'the file is empty; the first line names the columns' }] };
  const header = rows[0].cells.map(snakeCase);
  const known = new Set<string>([...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]);
  for (const h of header) if (!known.has(h)) errors.push({ line: rows[0].line, field: h || '(blank)', message: `unknown column '${h}'` });
  for (const r of REQUIRED_COLUMNS) if (!header.includes(r)) errors.push({ line: rows[0].line, field: r, message: `missing required column '${r}'` });
  if (errors.length > 0) return { properties: [], errors };
  const seen = new Set<string>();
  const properties: Property[] = [];
  for (const { line, cells } of rows.slice(1)) {
    const get = (col: string) => (header.indexOf(col) >= 0 ? (cells[header.indexOf(col)] ?? '').trim() : '');
    const err = (field: string, message: string) => errors.push({ line, field, message });
    const before = errors.length;
    if (cells.length !== header.length) err('row', `expected ${header.length} cells, found ${cells.length}`);
    const externalId = get('external_id');
    const address = get('address');
    if (!externalId) err('external_id', 'external_id is required');
    else if (seen.has(externalId) || existingExternalIds.has(externalId)) err('external_id', `duplicate external_id '${externalId}'`);
    seen.add(externalId);
    if (!address) err('address', 'address is required');
    const lat = num(get('latitude'));
    const lon = num(get('longitude'));
    if (lat === null || Number.isNaN(lat)) err('latitude', 'latitude must be a number');
    else if (lat < -90 || lat > 90) err('latitude', 'latitude must be between -90 and 90');
    if (lon === null || Number.isNaN(lon)) err('longitude', 'longitude must be a number');
    else if (lon < -180 || lon > 180) err('longitude', 'longitude must be between -180 and 180');
    const optNum = (col: string, lo: number, hi: number): number | null => {
      const v = num(get(col));
      if (v === null) return null;
      if (Number.isNaN(v)) {
        err(col, `${col} must be a number`);
        return null;
      }
      if (v < lo || v > hi) err(col, `${col} must be between ${lo} and ${hi}`);
      return v;
    };
    const roofAge = optNum('roof_age_years', 0, 200);
    const sqft = optNum('square_feet', 0, 1_000_000);
    const value = optNum('home_value_cents', 0, Number.MAX_SAFE_INTEGER);
    const hail = optNum('hail_size_in', 0, 10);
    const dist = optNum('distance_to_core_km', 0, 5000);
    const claims = optNum('prior_claims', 0, 1000);
    const material = snakeCase(get('roof_material'));
    if (material && !ROOF_MATERIALS.includes(material as RoofMaterial)) err('roof_material', `unknown roof_material '${material}'`);
    const status = snakeCase(get('status')) || 'new';
    if (!PROPERTY_STATUSES.includes(status as PropertyStatus)) err('status', `unknown status '${status}'`);
    const email = get('owner_email');
    if (email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) err('owner_email', `'${email}' is not an email address`);
    if (errors.length > before) continue;
    properties.push({
      id: newId(),
      storm_id: stormId,
      external_id: externalId,
      address,
      latitude: lat as number,
      longitude: lon as number,
      roof_age_years: roofAge,
      roof_material: (material || null) as RoofMaterial | null,
      square_feet: sqft,
      home_value: value === null ? null : Math.round(value),
      hail_size_in: hail,
      distance_to_core_km: dist,
      prior_claims: claims === null ? 0 : Math.round(claims),
      owner_name: get('owner_name') || null,
      owner_phone: get('owner_phone') || null,
      owner_email: email || null,
      status: status as PropertyStatus,
    });
  }
  return { properties: errors.length > 0 ? [] : properties, errors };
}
