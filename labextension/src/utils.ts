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
