// Formatting of money, percentages, times and ages, and plain-word labels for the vocabularies.

const dollars = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
const dollarsCents = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2 });
const integer = new Intl.NumberFormat('en-US');

/** Integer cents as dollars: whole dollars without decimals, otherwise with cents. */
export function formatMoney(cents: number | null | undefined): string {
  if (cents === null || cents === undefined || !Number.isFinite(cents)) return '—';
  const value = cents / 100;
  return Number.isInteger(value) ? dollars.format(value) : dollarsCents.format(value);
}

/** Parses "$14,500.50" / "14500.5" into integer cents; null if not a non-negative amount. */
export function parseMoneyToCents(text: string): number | null {
  const cleaned = text.replace(/[$,\s]/g, '');
  if (cleaned === '') return null;
  if (!/^\d+(\.\d{0,2})?$/.test(cleaned)) return null;
  const [whole, frac = ''] = cleaned.split('.');
  return Number(whole) * 100 + Number((frac + '00').slice(0, 2));
}

export function formatInt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return integer.format(Math.round(n));
}

/** A 0..1 fraction as a percentage with `digits` decimals. */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '—';
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A difference of two rates as signed percentage points, e.g. +5.1 pts. */
export function formatPoints(diff: number | null | undefined, digits = 1): string {
  if (diff === null || diff === undefined || !Number.isFinite(diff)) return '—';
  const pts = diff * 100;
  const sign = pts > 0 ? '+' : pts < 0 ? '−' : '';
  return `${sign}${Math.abs(pts).toFixed(digits)} pts`;
}

/** An uplift score (−1..1) as signed points, e.g. "+23". */
export function formatUplift(uplift: number | null | undefined): string {
  if (uplift === null || uplift === undefined || !Number.isFinite(uplift)) return 'unscored';
  const pts = Math.round(uplift * 100);
  return pts > 0 ? `+${pts}` : pts < 0 ? `−${Math.abs(pts)}` : '0';
}

/** A duration in plain words: "under a minute", "4 min", "3 h 5 min", "2 days". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return 'under a minute';
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    const rest = minutes % 60;
    return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
  }
  const days = Math.floor(hours / 24);
  return days === 1 ? '1 day' : `${days} days`;
}

/** Short time left, in seconds below two minutes: "about 12 s left". */
export function formatEta(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return 'almost done';
  if (ms < 120_000) return `about ${Math.ceil(ms / 1000)} s left`;
  return `about ${formatDuration(ms)} left`;
}

/** How long ago `at` was, relative to `now`. */
export function formatAgo(at: number | null | undefined, now: number): string {
  if (at === null || at === undefined || !Number.isFinite(at)) return 'never';
  const ms = now - at;
  if (ms < 60_000) return 'just now';
  return `${formatDuration(ms)} ago`;
}

const dateTime = new Intl.DateTimeFormat('en-US', {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
  timeZone: 'UTC',
});
const dateOnly = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });

/** "Apr 14, 09:05 UTC". Times are shown in UTC, the day the crew reports use. */
export function formatDateTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return `${dateTime.format(new Date(ms))} UTC`;
}

export function formatDate(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return dateOnly.format(new Date(ms));
}

/** The UTC day of `ms` as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const SPECIAL_LABELS: Record<string, string> = {
  left_info: 'Left info',
  crew_chief: 'Crew chief',
  field_user: 'Field user',
  admin: 'Office admin',
  do_not_contact: 'Do not contact',
  contract_signed: 'Contract signed',
  needs_sign_in: 'Needs sign-in',
  events_synced: 'Synced events',
  model_runs: 'Model runs',
  storage_bytes: 'Storage',
  requests: 'API requests',
  uplift_mean: 'Uplift mean',
  uplift_stddev: 'Uplift spread (std dev)',
  conversion_lift: 'Conversion lift',
  volume: 'Recent volume',
  nulls: 'Missing required fields',
};

/** A snake_case vocabulary word as plain words: "door_knock" → "Door knock". */
export function label(word: string | null | undefined): string {
  if (!word) return '—';
  const special = SPECIAL_LABELS[word];
  if (special) return special;
  const spaced = word.replace(/_/g, ' ');
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

/** Groups a 64-hex recovery key in blocks of four for reading aloud and copying. */
export function groupRecoveryKey(key: string): string {
  return (key.match(/.{1,4}/g) ?? []).join('-');
}
