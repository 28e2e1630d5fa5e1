/**
 * One JSON line per log entry (what CloudWatch Logs Insights and Powertools expect), tagged with
 * `POWERTOOLS_SERVICE_NAME`. `POWERTOOLS_LOG_LEVEL` (DEBUG|INFO|WARN|ERROR|SILENT) filters.
 */
const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] as const;
type Level = typeof LEVELS[number];

function enabled(level: Level): boolean {
  const configured = (process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO').toUpperCase() as Level;
  const threshold = LEVELS.includes(configured) ? configured : 'INFO';
  return LEVELS.indexOf(level) >= LEVELS.indexOf(threshold);
}

function write(level: Exclude<Level, 'SILENT'>, message: string, fields: Record<string, unknown>): void {
  if (!enabled(level)) return;
  const entry = {
    level,
    message,
    service: process.env.POWERTOOLS_SERVICE_NAME ?? 'cdk-orchestrator',
    timestamp: new Date().toISOString(),
    ...fields,
  };
  const line = JSON.stringify(entry, (_key, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message } : value instanceof Set ? [...value] : value);
  if (level === 'ERROR' || level === 'WARN') console.error(line);
  else console.log(line);
}

export const logger = {
  debug: (message: string, fields: Record<string, unknown> = {}) => write('DEBUG', message, fields),
  info: (message: string, fields: Record<string, unknown> = {}) => write('INFO', message, fields),
  warn: (message: string, fields: Record<string, unknown> = {}) => write('WARN', message, fields),
  error: (message: string, fields: Record<string, unknown> = {}) => write('ERROR', message, fields),
};
