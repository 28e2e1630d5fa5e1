/**
 * `--report run.html`: one self-contained page of a run (no script, no network): a timeline bar per
 * run, activity, stage and plugin from its first to its last transition, coloured by its final
 * state (failed ones marked), then the final status document and the counters.
 */
import type { EngineCounters, ExecutionResult } from '../engine/engine';
import type { TimelineEvent } from '../engine/timeline';

export interface ReportData {
  readonly workflow: string;
  readonly input: unknown;
  readonly result: ExecutionResult;
  readonly events: readonly TimelineEvent[];
  readonly statusDocument?: unknown;
  readonly counters: EngineCounters;
}

/** One bar of the timeline: an entity (run, activity, stage, plugin) and the span of its transitions. */
export interface ReportBar {
  readonly kind: TimelineEvent['kind'];
  readonly label: string;
  readonly mandatory?: boolean;
  readonly state: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly states: string[];
}

const FAILED = /fail|error|timed ?out|abort/i;

/** The timeline's bars, in the order their entities first changed. */
export function reportBars(events: readonly TimelineEvent[]): ReportBar[] {
  if (events.length === 0) return [];
  const origin = Math.min(...events.map((e) => e.time.getTime()));
  const bars = new Map<string, { kind: TimelineEvent['kind']; label: string; mandatory?: boolean; state: string; startMs: number; endMs: number; states: string[] }>();
  for (const e of events) {
    const label = e.kind === 'run' ? `run ${e.uid} / ${e.workflow}`
      : [e.activity, e.stage, e.plugin].filter(Boolean).join(' / ');
    const key = `${e.kind}\0${label}`;
    const at = e.time.getTime() - origin;
    const bar = bars.get(key) ?? { kind: e.kind, label, mandatory: e.mandatory, state: e.to ?? '(removed)', startMs: at, endMs: at, states: [] };
    bar.state = e.to ?? '(removed)';
    bar.endMs = Math.max(bar.endMs, at);
    bar.states.push(e.to ?? '(removed)');
    bars.set(key, bar);
  }
  return [...bars.values()];
}

export function renderReport(data: ReportData): string {
  const bars = reportBars(data.events);
  const total = Math.max(1, ...bars.map((b) => b.endMs));
  const rows = bars.map((b) => {
    const left = (b.startMs / total) * 100;
    const width = Math.max(1.5, ((b.endMs - b.startMs) / total) * 100);
    const failed = FAILED.test(b.state);
    return `<div class="row ${b.kind}" data-kind="${b.kind}" data-state="${escape(b.state)}" data-failed="${failed}">`
      + `<div class="label">${escape(b.label)}${b.mandatory === false ? ' <i>(optional)</i>' : ''}</div>`
      + `<div class="track"><div class="bar${failed ? ' failed' : ''}" style="left:${left.toFixed(2)}%;width:${width.toFixed(2)}%"></div></div>`
      + `<div class="state">${failed ? '✗ ' : ''}${escape(b.state)} <small>${b.startMs}–${b.endMs} ms · ${escape(b.states.join(' → '))}</small></div></div>`;
  }).join('\n');
  const c = data.counters;
  const counters: [string, string | number][] = [
    ['Lambda invocations', c.totals.invocations],
    ['Billed ms', c.totals.billedMs],
    ['GB-seconds', c.totals.gbSeconds.toFixed(4)],
    ['DynamoDB reads / writes', `${c.dynamodb.reads} / ${c.dynamodb.writes}`],
    ['SNS publishes / deliveries', `${c.sns.publishes} / ${c.sns.deliveries}`],
    ['State transitions', c.stepFunctions.stateTransitions],
    ['Executions', c.stepFunctions.executions],
  ];
  const ok = data.result.status === 'SUCCEEDED';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(data.workflow)}: ${escape(data.result.status)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}.status{padding:2px 8px;border-radius:4px;color:#fff;background:${ok ? '#2e7d32' : '#c62828'}}
.row{display:grid;grid-template-columns:320px 1fr 360px;gap:8px;align-items:center;min-height:22px;border-bottom:1px solid #eee}
.label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.row.activity .label{padding-left:12px}
.row.stage .label{padding-left:24px}.row.plugin .label{padding-left:36px}
.track{position:relative;height:14px;background:#f4f4f4}.bar{position:absolute;top:0;height:14px;background:#1e88e5}
.row.run .bar{background:#5e35b1}.row.activity .bar{background:#00897b}.row.stage .bar{background:#fb8c00}.row .bar.failed{background:#e53935}
.row[data-failed=true] .state{color:#c62828;font-weight:600}small{color:#777;font-weight:400}
pre{background:#f7f7f7;padding:12px;overflow:auto}table{border-collapse:collapse}td{padding:2px 12px 2px 0}
</style></head><body>
<h1>Workflow ${escape(data.workflow)} <span class="status" id="status">${escape(data.result.status)}</span></h1>
<p>${data.result.error ? `${escape(data.result.error)}: ${escape(data.result.cause ?? '')}` : ''}</p>
<p>Input: <code>${escape(JSON.stringify(data.input))}</code></p>
<h2>Timeline (${total} ms)</h2>
<div id="timeline">
${rows || '<p>No status transitions were recorded.</p>'}
</div>
<h2>Status document</h2>
<pre id="status-document">${escape(JSON.stringify(data.statusDocument ?? null, null, 2))}</pre>
<h2>Counters</h2>
<table id="counters">${counters.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(String(v))}</td></tr>`).join('')}</table>
</body></html>
`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]!));
}
