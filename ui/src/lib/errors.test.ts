// Unit tests of the error-code table and the fallback to the command's own message.
import { describe, expect, test } from 'vitest';
import { ERROR_TEXT, errorText, toCommandError } from './errors';

describe('error codes to plain words', () => {
  test('stable codes map to the table', () => {
    expect(errorText({ code: 'store.wrong_passphrase', message: 'wrong key' })).toBe(ERROR_TEXT['store.wrong_passphrase']);
    expect(errorText({ code: 'sync.offline', message: 'x' })).toMatch(/No connection/);
    expect(errorText({ code: 'server.batch_refused', message: 'x' })).toMatch(/inbox/);
  });
  test('validation codes keep the field detail', () => {
    expect(errorText({ code: 'validation.out_of_range', message: 'latitude must be between -90 and 90' })).toBe(
      'A number is outside the allowed range. (latitude must be between -90 and 90)',
    );
  });
  test('unknown codes fall back to the message, then to a generic sentence', () => {
    expect(errorText({ code: 'brand.new', message: 'The thing broke' })).toBe('The thing broke');
    expect(errorText({ code: 'brand.new', message: '' })).toBe('Something went wrong. Try again.');
  });
  test('anything a command rejects with becomes {code, message}', () => {
    expect(toCommandError('{"code":"sync.offline","message":"down"}')).toEqual({ code: 'sync.offline', message: 'down' });
    expect(toCommandError('plain text')).toEqual({ code: 'unknown', message: 'plain text' });
    expect(toCommandError(new Error('boom'))).toEqual({ code: 'unknown', message: 'boom' });
    expect(toCommandError(undefined).code).toBe('unknown');
  });
  test('every table entry is plain words ending with a full stop', () => {
    for (const [code, text] of Object.entries(ERROR_TEXT)) {
      expect(code).toMatch(/^[a-z]+\.[a-z_]+$/);
      expect(text).toMatch(/[.)]$/);
    }
  });
});
