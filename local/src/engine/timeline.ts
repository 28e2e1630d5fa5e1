/**
 * The run timeline: run / activity / stage / plugin state transitions, derived from the status
 * table's stream (old image vs new image of each change), so it shows exactly what the status
 * document went through — including states that flipped back, which a final snapshot would hide.
 */
import type { StreamEventRecord } from './streams';

export interface TimelineEvent {
  /** When the engine read the change (stream records only carry minute-rounded times locally). */
  readonly time: Date;
  /** The stream record (its eventID) the transition came from: the transitions of one write share it. */
  readonly record: string;
  readonly uid: string;
  readonly workflow: string;
  /** `denied`: a call or delivery the authorizer refused (message: AWS's). */
  readonly kind: 'run' | 'activity' | 'stage' | 'plugin' | 'denied';
  readonly activity?: string;
  readonly stage?: string;
  readonly plugin?: string;
  readonly mandatory?: boolean;
  readonly from?: string;
  readonly to?: string;
  readonly message?: string;
}

const STAGES = ['pre', 'async', 'post'];

/** The transitions one status-table stream record represents. */
export function transitionsOf(record: StreamEventRecord, time = new Date()): TimelineEvent[] {
  const before = record.dynamodb.OldImage ? unmarshall(record.dynamodb.OldImage) : {};
  const after = record.dynamodb.NewImage ? unmarshall(record.dynamodb.NewImage) : {};
  const keys = unmarshall(record.dynamodb.Keys ?? {});
  const uid = String(after.uid ?? before.uid ?? keys.uid);
  const workflow = String(after.workflow ?? before.workflow ?? keys.workflow);
  const events: TimelineEvent[] = [];
  const push = (kind: TimelineEvent['kind'], a: any, b: any, extra: Partial<TimelineEvent>) => {
    const from = a?.state;
    const to = b?.state;
    if (from === to && (a?.message ?? undefined) === (b?.message ?? undefined)) return;
    events.push({ time, record: record.eventID, uid, workflow, kind, ...extra, from, to, message: b?.message });
  };
  push('run', before.status, after.status, {});
  const activities = new Set([...Object.keys(before.activities ?? {}), ...Object.keys(after.activities ?? {})]);
  for (const activity of activities) {
    const a = before.activities?.[activity] ?? {};
    const b = after.activities?.[activity] ?? {};
    push('activity', a.status, b.status, { activity });
    for (const stage of STAGES) {
      push('stage', a[stage]?.status, b[stage]?.status, { activity, stage });
      for (const group of ['mandatory', 'optional'] as const) {
        const plugins = new Set([...Object.keys(a[stage]?.[group] ?? {}), ...Object.keys(b[stage]?.[group] ?? {})]);
        for (const plugin of plugins) {
          push('plugin', a[stage]?.[group]?.[plugin], b[stage]?.[group]?.[plugin], { activity, stage, plugin, mandatory: group === 'mandatory' });
        }
      }
    }
  }
  return events;
}

/** One line of a readable timeline. */
export function formatEvent(e: TimelineEvent, origin?: Date): string {
  const t = origin ? `+${((e.time.getTime() - origin.getTime()) / 1000).toFixed(3).padStart(8)}s` : e.time.toISOString();
  if (e.kind === 'denied') return `${t}  denied  ${e.message}`;
  const where = [e.activity, e.stage, e.plugin && `${e.plugin}${e.mandatory === false ? ' (optional)' : ''}`].filter(Boolean).join(' / ');
  const subject = e.kind === 'run' ? `run ${e.uid}/${e.workflow}` : `${e.kind.padEnd(8)} ${where}`;
  return `${t}  ${subject}: ${e.from ?? '-'} -> ${e.to ?? '(removed)'}${e.message ? `  "${e.message}"` : ''}`;
}

/** DynamoDB attribute values to plain JS (enough for status documents: no binary sets). */
export function unmarshall(item: Record<string, any>): Record<string, any> {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, fromAttribute(v)]));
}

function fromAttribute(v: Record<string, any>): unknown {
  if ('S' in v) return v.S;
  if ('N' in v) return Number(v.N);
  if ('BOOL' in v) return v.BOOL;
  if ('NULL' in v) return null;
  if ('M' in v) return unmarshall(v.M);
  if ('L' in v) return (v.L as Record<string, any>[]).map(fromAttribute);
  if ('SS' in v) return [...v.SS];
  if ('NS' in v) return (v.NS as string[]).map(Number);
  if ('B' in v) return v.B;
  if ('BS' in v) return v.BS;
  return undefined;
}
