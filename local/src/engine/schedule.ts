/**
 * EventBridge schedule expressions: `rate(5 minutes)` and AWS's six-field cron
 * `cron(Minutes Hours Day-of-month Month Day-of-week Year)` (UTC), as documented for scheduled rules:
 * `*`, `?`, lists, ranges, increments (`0/15`), month and day names, `L` (last day of the month,
 * `5L` the last Thursday), `#` (`6#3` the third Friday). `W` (nearest weekday) is not emulated: it is
 * a named error. npm's cron libraries parse the five/six-field Unix forms (seconds first, no year,
 * no `?` semantics), hence this small parser.
 */

export class ScheduleExpressionError extends Error {
  constructor(expression: string, problem: string) {
    super(`Invalid schedule expression "${expression}": ${problem}`);
    this.name = 'ScheduleExpressionError';
  }
}

export interface Schedule {
  readonly expression: string;
  /** The first time (ms since the epoch) strictly after `after` the schedule fires. */
  next(after: number): number;
}

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * Parses a schedule expression. A rate schedule counts from `startMs` (EventBridge: from when the
 * rule was created); cron schedules are wall-clock times in UTC.
 */
export function parseSchedule(expression: string, startMs: number): Schedule {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2].replace(/s$/, '');
    if (value < 1) throw new ScheduleExpressionError(expression, 'the rate must be a positive whole number');
    if ((value === 1) !== (rate[2] === unit)) throw new ScheduleExpressionError(expression, `use "${value} ${value === 1 ? unit : `${unit}s`}"`);
    const period = value * UNIT_MS[unit];
    return { expression, next: (after) => startMs + (Math.floor((after - startMs) / period) + 1) * period };
  }
  const cron = /^cron\((.*)\)$/.exec(expression.trim());
  if (cron) return cronSchedule(expression, cron[1]);
  throw new ScheduleExpressionError(expression, 'expected rate(<value> <unit>) or cron(<6 fields>)');
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** One field's allowed values, or the special day rules. */
interface DayRule { lastDay?: boolean; lastWeekday?: number; nthWeekday?: { weekday: number; n: number } }

function cronSchedule(expression: string, body: string): Schedule {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) throw new ScheduleExpressionError(expression, `a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`);
  const [min, hour, dom, month, dow, year] = fields;
  if ((dom === '?') === (dow === '?')) {
    throw new ScheduleExpressionError(expression, 'exactly one of day-of-month and day-of-week must be "?"');
  }
  const fail = (problem: string) => new ScheduleExpressionError(expression, problem);
  const minutes = values(min, 0, 59, [], fail);
  const hours = values(hour, 0, 23, [], fail);
  const months = values(month, 1, 12, MONTHS, fail);
  const years = values(year, 1970, 2199, [], fail);
  const domRule: DayRule = {};
  const dowRule: DayRule = {};
  let days: Set<number> | undefined;
  let weekdays: Set<number> | undefined;
  if (dom !== '?') {
    if (dom === 'L') domRule.lastDay = true;
    else if (/W/.test(dom)) throw fail('W (nearest weekday) is not supported by the local engine');
    else days = values(dom, 1, 31, [], fail);
  }
  if (dow !== '?') {
    const last = /^(\w+)L$/.exec(dow);
    const nth = /^(\w+)#([1-5])$/.exec(dow);
    if (last) dowRule.lastWeekday = dayNumber(last[1], fail);
    else if (nth) dowRule.nthWeekday = { weekday: dayNumber(nth[1], fail), n: Number(nth[2]) };
    else weekdays = values(dow, 1, 7, DAYS, fail);
  }

  const dayMatches = (d: Date): boolean => {
    const day = d.getUTCDate();
    const weekday = d.getUTCDay() + 1; // AWS: 1 = Sunday
    const daysInMonth = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    if (domRule.lastDay) return day === daysInMonth;
    if (days) return days.has(day);
    if (dowRule.lastWeekday !== undefined) return weekday === dowRule.lastWeekday && day + 7 > daysInMonth;
    if (dowRule.nthWeekday) return weekday === dowRule.nthWeekday.weekday && Math.ceil(day / 7) === dowRule.nthWeekday.n;
    return weekdays!.has(weekday);
  };
  const sortedHours = [...hours].sort((a, b) => a - b);
  const sortedMinutes = [...minutes].sort((a, b) => a - b);

  return {
    expression,
    next(after: number): number {
      // Day by day from the day of `after`; within a matching day, the first hour:minute after it.
      const start = new Date(after);
      let day = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
      const maxYear = Math.max(...years);
      for (;;) {
        const d = new Date(day);
        if (d.getUTCFullYear() > maxYear) throw fail(`it never fires after ${new Date(after).toISOString()}`);
        if (years.has(d.getUTCFullYear()) && months.has(d.getUTCMonth() + 1) && dayMatches(d)) {
          for (const h of sortedHours) {
            for (const m of sortedMinutes) {
              const at = day + h * 3_600_000 + m * 60_000;
              if (at > after) return at;
            }
          }
        }
        day += 86_400_000;
      }
    },
  };
}

function dayNumber(text: string, fail: (p: string) => Error): number {
  const n = DAYS.indexOf(text.toUpperCase());
  const value = n >= 0 ? n + 1 : Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 7) throw fail(`"${text}" is not a day of the week (1-7 or SUN-SAT)`);
  return value;
}

/** The values a field allows: `*`, `n`, `a-b`, `a/step`, `a-b/step`, lists of those, names. */
function values(field: string, lo: number, hi: number, names: string[], fail: (p: string) => Error): Set<number> {
  const out = new Set<number>();
  const num = (text: string): number => {
    const named = names.indexOf(text.toUpperCase());
    const value = named >= 0 ? named + lo : Number(text);
    if (!/^\w+$/.test(text) || !Number.isInteger(value) || value < lo || value > hi) throw fail(`"${text}" is out of range ${lo}-${hi} in "${field}"`);
    return value;
  };
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw fail(`bad increment in "${part}"`);
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [lo, hi];
    else if (range.includes('-')) [from, to] = range.split('-').map(num) as [number, number];
    else [from, to] = [num(range), stepText === undefined ? num(range) : hi];
    if (from > to) throw fail(`empty range "${range}"`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}
