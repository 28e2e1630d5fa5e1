/** A plain JSON object (not null, not an array): what every parsed event and message is checked to be first. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
