// Maps the bridge's stable error codes to plain words for people; falls back to the message.

import type { CommandError } from './backend/types';

/** Friendly text per stable code. Codes come from local-store, desktop-core, the server and validation. */
export const ERROR_TEXT: Record<string, string> = {
  // local tenant file
  'store.wrong_passphrase': 'That passphrase does not open this file. Check caps lock and try again.',
  'store.weak_passphrase': 'Choose a longer passphrase: at least 8 characters.',
  'store.tenant_exists': 'A file for this company already exists on this laptop.',
  'store.tenant_not_found': 'This company file is no longer on this laptop.',
  'store.unknown_user': 'No one by that name can open this file. Check the spelling.',
  'store.user_exists': 'That person can already open this file.',
  'store.invalid_user_name': 'Use a name of letters, digits, dots or dashes.',
  'store.in_use': 'The file is open in another window. Close it there first.',
  'store.key_file_damaged': 'The key file is damaged. Open the file with your recovery key.',
  'store.malformed_recovery_key': 'A recovery key is 64 letters and digits (0–9, a–f).',
  'store.wrong_recovery_key': 'That recovery key does not belong to this file.',
  'store.schema_too_new': 'This file was written by a newer version. Update the app.',
  'store.not_found': 'That record is not on this laptop.',
  'store.not_in_inbox': 'That change is no longer in the inbox.',
  'store.invalid_input': 'Some of the values are not valid.',
  'store.corrupt': 'The file is damaged. Contact support; synced work is safe on the server.',
  'store.io': 'The laptop could not read or write the file. Check free disk space.',
  'store.crypto': 'The file could not be decrypted.',
  'store.database': 'The local database reported an error. Try again.',
  'store.disk_full': "The laptop's disk is full. Free some space: nothing was written, and earlier work is safe.",
  'store.decode': 'A record could not be read.',
  // local session
  'session.locked': 'The file is locked. Unlock it to continue.',
  'session.forbidden': 'Your role cannot do that.',
  'session.not_signed_in': 'Sign in to the server first.',
  // sync engine
  'sync.offline': 'No connection. Your work is kept on this laptop and syncs when you are back online.',
  'sync.needs_sign_in': 'Your sign-in expired. Sign in again to send your work.',
  'sync.device_revoked': 'This laptop was removed from your company account.',
  'sync.tenant_suspended': 'Your company account is suspended. Contact your office.',
  'sync.upgrade_required': 'The server needs a newer version of the app. Update to keep syncing.',
  'sync.closed': 'Sync stopped because the file was locked.',
  'sync.busy': 'A sync is already running.',
  // server (prefixed server.)
  'server.invalid_credentials': 'Email or password is wrong.',
  'server.unauthenticated': 'Sign in to continue.',
  'server.token_expired': 'Your sign-in expired. Sign in again.',
  'server.token_invalid': 'Your sign-in is no longer valid. Sign in again.',
  'server.forbidden': 'Your role cannot do that.',
  'server.tenant_suspended': 'Your company account is suspended. Contact your office.',
  'server.device_revoked': 'This laptop was removed from your company account.',
  'server.batch_refused': 'The server refused a batch of changes. See the inbox to fix them.',
  'server.validation_failed': 'The server found a value it cannot accept.',
  'server.foreign_reference': 'This change points to a record the server does not know.',
  'server.append_only': 'Logged touches cannot be changed once sent.',
  'server.server_owned_field': 'That value is set by the office and cannot be changed here.',
  'server.unknown_record': 'The server does not know this record.',
  'server.clock_skew': "This laptop's clock is far off. Fix the date and time and sync again.",
  'server.rate_limited': 'Too many requests right now. Sync will try again shortly.',
  'server.quota_exceeded': 'Your plan limit is reached. An admin can upgrade the plan.',
  'server.upgrade_required': 'The server needs a newer version of the app.',
  'server.timeout': 'The server took too long to answer. Sync will try again.',
  'server.unavailable': 'The server is unavailable. Sync will try again.',
  'server.internal': 'The server had a problem. Sync will try again.',
  'server.not_found': 'The server could not find that.',
  'server.conflict': 'Someone else changed this at the same time. Sync again.',
  'server.payload_too_large': 'That is too large to send.',
  'server.batch_too_large': 'Too many changes in one batch; sync will split them.',
  'server.malformed_json': 'The server could not read the request.',
  'server.invalid_request': 'The server could not read the request.',
  'server.unknown_field': 'The server does not accept one of the fields.',
  'server.invalid_uuid': 'An id is not valid.',
  'server.unsupported_media_type': 'The server could not read the request.',
  // validation
  'validation.required': 'A required value is missing.',
  'validation.too_long': 'A text is too long.',
  'validation.out_of_range': 'A number is outside the allowed range.',
  'validation.negative': 'A value cannot be negative.',
  'validation.in_future': 'A time is in the future. Check the laptop clock.',
  'validation.too_old': 'A time is too far in the past.',
  'validation.invalid_format': 'A value is not in the right format.',
  'validation.inconsistent': 'Some values contradict each other.',
  // bridge
  'bridge.unavailable': 'The app could not reach its local service. Restart the app.',
  'experiment.exists': 'This storm already has an experiment.',
  // office views the server computes
  'app.usage_unavailable': 'This server does not report usage yet. Ask your operator to update it.',
  'app.usage_unreadable': 'The server sent a usage report this version of the app cannot show. Update the app.',
};

/** Narrows anything a command rejected with to `{code, message}`. */
export function toCommandError(err: unknown): CommandError {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as CommandError).code === 'string') {
    const e = err as Partial<CommandError>;
    return { code: e.code as string, message: typeof e.message === 'string' ? e.message : '' };
  }
  if (typeof err === 'string') {
    // Tauri rejects with a string when the shell returns one; try JSON first.
    try {
      const parsed: unknown = JSON.parse(err);
      if (parsed && typeof parsed === 'object' && 'code' in parsed) return toCommandError(parsed);
    } catch {
      /* not JSON */
    }
    return { code: 'unknown', message: err };
  }
  if (err instanceof Error) return { code: 'unknown', message: err.message };
  return { code: 'unknown', message: 'Something went wrong.' };
}

/** Plain words for an error: the table's text for its code, else its own message. */
export function errorText(err: unknown): string {
  const e = toCommandError(err);
  const text = ERROR_TEXT[e.code];
  if (text) {
    // Validation messages name the field ("notes is too long"); keep that detail after the plain words.
    if (e.code.startsWith('validation.') && e.message) return `${text} (${e.message})`;
    return text;
  }
  return e.message || 'Something went wrong. Try again.';
}
