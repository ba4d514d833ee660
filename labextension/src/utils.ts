/**
 * A server timestamp as UTC: the server writes naive UTC times, which
 * `Date` would read as local time.
 */
export function utc(timestamp: string): string {
  return /(Z|[+-]\d\d:?\d\d)$/.test(timestamp) ? timestamp : `${timestamp}Z`;
}

/**
 * The message of a failed request or of any thrown value.
 */
export function errorMessage(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? '');
}

/**
 * A time relative to now, past or future: "in 5 hours", "tomorrow",
 * "3 minutes ago". (`Time.formatHuman` rounds a future time up to "next
 * year".)
 */
export function formatRelative(timestamp: string): string {
  const lang = document.documentElement.lang || 'en';
  // Intl.RelativeTimeFormat is ES2020; the project's lib is ES2018.
  const { RelativeTimeFormat } = Intl as unknown as {
    RelativeTimeFormat: new (
      lang: string,
      options: { numeric: 'auto' }
    ) => { format(value: number, unit: string): string };
  };
  const formatter = new RelativeTimeFormat(lang, { numeric: 'auto' });
  const delta = (Date.parse(timestamp) - Date.now()) / 1000;
  for (const [unit, seconds] of Private.UNITS) {
    if (Math.abs(delta) >= seconds) {
      return formatter.format(Math.round(delta / seconds), unit);
    }
  }
  return formatter.format(0, 'second');
}

namespace Private {
  export const UNITS: [string, number][] = [
    ['year', 365 * 86400],
    ['month', 30 * 86400],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
    ['second', 1]
  ];
}
