// Unit tests of CSV splitting and per-line validation of a property import.
import { describe, expect, test } from 'vitest';
import { parsePropertyCsv, snakeCase, splitCsv } from './mock-csv';

let n = 0;
const id = () => `id-${++n}`;

describe('splitCsv', () => {
  test('quotes, escaped quotes, CRLF and blank lines, with line numbers', () => {
    const rows = splitCsv('a,b\r\n"x, y","say ""hi"""\n\n3,4');
    expect(rows).toEqual([
      { line: 1, cells: ['a', 'b'] },
      { line: 2, cells: ['x, y', 'say "hi"'] },
      { line: 4, cells: ['3', '4'] },
    ]);
  });
});

describe('snakeCase', () => {
  test('reads header spellings and vocabulary values as the real import does', () => {
    expect(snakeCase('\uFEFFExternal ID')).toBe('external_id');
    expect(snakeCase('  Roof-Material ')).toBe('roof_material');
    expect(snakeCase('home  value__cents')).toBe('home_value_cents');
    expect(snakeCase('Asphalt Shingle')).toBe('asphalt_shingle');
    expect(snakeCase('')).toBe('');
  });
});

describe('parsePropertyCsv', () => {
  test('headers from a spreadsheet (BOM, capitals, spaces, hyphens) name the same columns', () => {
    const text = '\uFEFFExternal ID,Address,Latitude,Longitude,Roof-Material,Status\r\nC-1,1 Oak St,35.1,-97.1,Metal,In Progress\r\n';
    const { properties, errors } = parsePropertyCsv(text, 's1', id);
    expect(errors).toEqual([]);
    expect(properties[0]).toMatchObject({ external_id: 'C-1', roof_material: 'metal', status: 'in_progress' });
  });

  const header = 'external_id,address,latitude,longitude,roof_material,home_value_cents,status';
  test('valid rows become properties', () => {
    const { properties, errors } = parsePropertyCsv(`${header}\nA-1,"1 Fine St, Norman, OK",35.2,-97.4,metal,25000000,new\nA-2,2 Elm St,35.3,-97.5,,,`, 's1', id);
    expect(errors).toEqual([]);
    expect(properties).toHaveLength(2);
    expect(properties[0]).toMatchObject({ external_id: 'A-1', address: '1 Fine St, Norman, OK', roof_material: 'metal', home_value: 25_000_000, storm_id: 's1', status: 'new' });
    expect(properties[1]).toMatchObject({ roof_material: null, home_value: null, status: 'new', prior_claims: 0 });
  });
  test('every bad line is reported with its number and nothing is imported', () => {
    const text = `${header}\nB-1,1 Fine St,35,-97,metal,,new\nB-2,2 Bad St,95,-97,,,new\nB-3,,35,-97,,,new\nB-4,4 Odd St,abc,-97,,,new\nB-5,5 Some St,35,-97,,,sold\nB-1,6 Twin St,35,-97,,,new`;
    const { properties, errors } = parsePropertyCsv(text, 's1', id);
    expect(properties).toEqual([]);
    expect(errors.map((e) => [e.line, e.field])).toEqual([
      [3, 'latitude'],
      [4, 'address'],
      [5, 'latitude'],
      [6, 'status'],
      [7, 'external_id'],
    ]);
  });
  test('unknown and missing columns are header errors', () => {
    const { errors } = parsePropertyCsv('external_id,address,lat,longitude\nX,1 St,1,2', 's1', id);
    expect(errors).toEqual([
      { line: 1, field: 'lat', message: "unknown column 'lat'" },
      { line: 1, field: 'latitude', message: "missing required column 'latitude'" },
    ]);
  });
  test('existing external ids in the storm are duplicates', () => {
    const { errors } = parsePropertyCsv('external_id,address,latitude,longitude\nNRM-1,1 St,35,-97', 's1', id, new Set(['NRM-1']));
    expect(errors[0]).toMatchObject({ line: 2, field: 'external_id' });
  });
  test('empty text', () => {
    expect(parsePropertyCsv('', 's1', id).errors[0].field).toBe('header');
  });
});
