/**
 * EventBridge: the default bus and the app's custom buses, rules from the templates (event patterns,
 * schedules on the engine's clock), `PutEvents` (AWS JSON 1.1, `AWSEvents.PutEvents`), and delivery
 * to targets with `Input` / `InputPath` / `InputTransformer`, each target's retry policy and
 * dead-letter queue.
 *
 * Pattern matching is the shared EventBridge matcher (lambda/shared/filter-policy.ts), the one SNS
 * filter policies and Lambda event filtering use. A Lambda target is invoked asynchronously, as
 * EventBridge does: the function's own errors are Lambda's asynchronous retries and destinations;
 * the rule target's retry policy and dead-letter queue apply when the target cannot be reached.
 */
import { randomUUID } from 'node:crypto';
import type { LocalEventBus, LocalEventRule, LocalEventTarget } from './assembly';
import { AwsError } from './aws-endpoint';
import type { ClockTimer, EngineClock } from './clock';
import { parseSchedule } from './schedule';
import { matchesPattern } from '../../../lambda/shared/filter-policy';

/** An event as rules see it and targets receive it. */
export interface BusEvent {
  readonly 'version': '0';
  readonly 'id': string;
  readonly 'detail-type': string;
  readonly 'source': string;
  readonly 'account': string;
  readonly 'time': string;
  readonly 'region': string;
  readonly 'resources': string[];
  readonly 'detail': Record<string, unknown>;
}

export interface EventsCounters {
  /** Events accepted on any bus (PutEvents entries, CloudTrail records, scheduled events). */
  events: number;
  /** Rule matches (one event matching two rules counts twice). */
  matched: number;
  deliveries: number;
  /** Delivery attempts that failed (the target could not be reached). */
  failedAttempts: number;
  deadLettered: number;
  /** Events dropped after the retries, with no dead-letter queue. */
  dropped: number;
}

type QueueAttribute = { DataType: string; StringValue: string };

/** Where targets lead: the engine's other services. */
export interface EventTargets {
  readonly invokeLambdaAsync: (functionArn: string, event: unknown) => void;
  readonly sendToQueue: (queueArn: string, body: string, attributes: Record<string, QueueAttribute>, groupId?: string) => void;
  readonly publish: (topicArn: string, message: string) => void;
  readonly startExecution: (stateMachineArn: string, input: unknown) => void;
}

export interface EventBridgeOptions {
  /**
   * Whether EventBridge may deliver to a target (or a dead-letter queue): undefined when allowed,
   * else the denial's message. A denied delivery is not retried (AWS: `NO_PERMISSIONS`, straight to
   * the target's dead-letter queue, or dropped). @default - every delivery is allowed
   */
  readonly authorizeDelivery?: (rule: LocalEventRule, target: Pick<LocalEventTarget, 'arn' | 'roleArn'>) => string | undefined;
  readonly region: string;
  readonly account: string;
  readonly buses: LocalEventBus[];
  readonly rules: LocalEventRule[];
  readonly clock: EngineClock;
  readonly targets: EventTargets;
  /** Waits between delivery attempts to an unreachable target (AWS: exponential, up to 24 h). */
  readonly retryDelaysMs: number[];
  readonly track: <T>(work: Promise<T>) => Promise<T>;
  readonly log: (line: string) => void;
  /** Sees every event accepted on a bus (tests, the engine's timeline). */
  readonly onEvent?: (event: BusEvent, bus: string) => void;
}

/** PutEvents limits (AWS): 10 entries per call, 256 KiB per entry. */
const MAX_ENTRIES = 10;
const MAX_ENTRY_BYTES = 262_144;

export class EventBridgeService {
  public readonly counters: EventsCounters = { events: 0, matched: 0, deliveries: 0, failedAttempts: 0, deadLettered: 0, dropped: 0 };
  private readonly buses = new Map<string, string>();
  private readonly rules: LocalEventRule[] = [];
  private readonly timers = new Map<string, ClockTimer>();
  /** Whether scheduled rules fire: from `startSchedules`, once what they reach is deployed. */
  private scheduling = false;

  constructor(private readonly options: EventBridgeOptions) {
    this.buses.set('default', `arn:aws:events:${options.region}:${options.account}:event-bus/default`);
    this.add(options.buses, options.rules);
  }

  /** Adds buses and rules (a further stack deployed into the running engine); schedules them once schedules run. */
  public add(buses: LocalEventBus[], rules: LocalEventRule[]): void {
    for (const bus of buses) this.buses.set(bus.name, bus.arn);
    for (const rule of rules) {
      if (rule.eventPattern === undefined && rule.scheduleExpression === undefined) {
        throw new AwsError('ValidationException', `Rule ${rule.path ?? rule.name} has neither EventPattern nor ScheduleExpression`);
      }
      this.rules.push(rule);
      if (this.scheduling) this.schedule(rule);
    }
  }

  /** Starts the schedules of the rules added so far, and of every rule added later. */
  public startSchedules(): void {
    if (this.scheduling) return;
    this.scheduling = true;
    for (const rule of this.rules) this.schedule(rule);
  }

  public stop(): void {
    for (const timer of this.timers.values()) this.options.clock.cancel(timer);
    this.timers.clear();
  }

  /** The rules the engine runs (read-only view, e.g. for tests and `engine.shape()`-like tools). */
  public ruleList(): readonly LocalEventRule[] {
    return this.rules;
  }

  /**
   * Puts one event on a bus (by name or ARN) and delivers it to the rules it matches. Used for
   * PutEvents entries and for AWS's own events (CloudTrail records).
   */
  public put(event: BusEvent, busNameOrArn = 'default'): void {
    const bus = busNameOf(busNameOrArn);
    if (!this.buses.has(bus)) throw new AwsError('ResourceNotFoundException', `Event bus ${bus} does not exist.`);
    this.counters.events++;
    this.options.onEvent?.(event, bus);
    for (const rule of this.rules) {
      if (!rule.enabled || rule.eventBusName !== bus || !rule.eventPattern) continue;
      if (!matchesPattern(rule.eventPattern, event)) continue;
      this.counters.matched++;
      this.deliverToTargets(rule, event);
    }
  }

  /** The EventBridge JSON API (`AWSEvents.<Operation>`). */
  public async handleApi(operation: string, body: any): Promise<unknown> {
    if (operation === 'PutEvents') return this.putEvents(body);
    if (operation === 'ListRules') {
      const bus = busNameOf(body.EventBusName ?? 'default');
      return {
        Rules: this.rules.filter((r) => r.eventBusName === bus && (!body.NamePrefix || r.name.startsWith(body.NamePrefix))).map((r) => ({
          Name: r.name,
          Arn: r.arn,
          EventBusName: r.eventBusName,
          State: r.enabled ? 'ENABLED' : 'DISABLED',
          EventPattern: r.eventPattern ? JSON.stringify(r.eventPattern) : undefined,
          ScheduleExpression: r.scheduleExpression,
        })),
      };
    }
    throw new AwsError('UnknownOperationException', `The local engine does not emulate EventBridge ${operation}`);
  }

  private putEvents(body: { Entries?: any[] }): unknown {
    const entries = body.Entries ?? [];
    if (entries.length === 0 || entries.length > MAX_ENTRIES) {
      throw new AwsError('ValidationException', `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${MAX_ENTRIES}`);
    }
    const results = entries.map((entry) => {
      const problem = entryProblem(entry);
      if (problem) return { ErrorCode: problem.code, ErrorMessage: problem.message };
      const bus = busNameOf(entry.EventBusName ?? 'default');
      if (!this.buses.has(bus)) return { ErrorCode: 'NotFound', ErrorMessage: `Event bus ${bus} does not exist.` };
      const event: BusEvent = {
        'version': '0',
        'id': randomUUID(),
        'detail-type': entry.DetailType,
        'source': entry.Source,
        'account': this.options.account,
        'time': isoSeconds(entry.Time === undefined ? this.options.clock.now() : timeOf(entry.Time)),
        'region': this.options.region,
        'resources': entry.Resources ?? [],
        'detail': JSON.parse(entry.Detail),
      };
      this.put(event, bus);
      return { EventId: event.id };
    });
    return { FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results };
  }

  /** Arms an enabled scheduled rule's next occurrence (rules with an event pattern only wait for events). */
  private schedule(rule: LocalEventRule) {
    if (!rule.enabled || !rule.scheduleExpression) return;
    const clock = this.options.clock;
    const schedule = parseSchedule(rule.scheduleExpression!, clock.now());
    const arm = (after: number) => {
      const at = schedule.next(after);
      this.timers.set(rule.arn, clock.at(at, () => {
        arm(at);
        // The "Scheduled Event" AWS sends: its time is the scheduled time, its resource the rule.
        const event: BusEvent = {
          'version': '0',
          'id': randomUUID(),
          'detail-type': 'Scheduled Event',
          'source': 'aws.events',
          'account': this.options.account,
          'time': isoSeconds(at),
          'region': this.options.region,
          'resources': [rule.arn],
          'detail': {},
        };
        this.counters.events++;
        this.options.onEvent?.(event, rule.eventBusName);
        this.counters.matched++;
        this.deliverToTargets(rule, event);
      }));
    };
    arm(clock.now());
  }

  private deliverToTargets(rule: LocalEventRule, event: BusEvent) {
    for (const target of rule.targets) {
      void this.options.track(this.deliver(rule, target, event).catch((e) => this.options.log(`rule ${rule.name} target ${target.id}: ${(e as Error).message}`)));
    }
  }

  /** Delivers to one target, retrying an unreachable one per its retry policy, then its dead-letter queue. */
  private async deliver(rule: LocalEventRule, target: LocalEventTarget, event: BusEvent) {
    const payload = targetInput(target, event, rule);
    const firstAttempt = this.options.clock.now();
    const delays = this.options.retryDelaysMs;
    const denied = this.denied(rule, target);
    let lastError: Error | undefined = denied;
    for (let attempt = 0; !denied && attempt <= target.maximumRetryAttempts; attempt++) {
      if (attempt > 0) {
        const delay = delays[Math.min(attempt - 1, delays.length - 1)] ?? 0;
        if (this.options.clock.now() + delay - firstAttempt > target.maximumEventAgeSeconds * 1000) break;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      try {
        this.send(target, payload);
        this.counters.deliveries++;
        return;
      } catch (e) {
        this.counters.failedAttempts++;
        lastError = e as Error;
      }
    }
    const error = lastError ?? new Error('event too old');
    if (!target.deadLetterArn) {
      this.counters.dropped++;
      this.options.log(`rule ${rule.name}: event ${event.id} dropped after its retries (target ${target.arn}): ${error.message}`);
      return;
    }
    // What EventBridge puts on a target's dead-letter queue: the event, and why, as message attributes.
    const attribute = (value: string) => ({ DataType: 'String', StringValue: value });
    const dlqDenied = this.denied(rule, { arn: target.deadLetterArn });
    if (dlqDenied) {
      this.counters.dropped++;
      this.options.log(`rule ${rule.name}: event ${event.id} dropped: its dead-letter queue refused it (${dlqDenied.message})`);
      return;
    }
    this.options.targets.sendToQueue(target.deadLetterArn, JSON.stringify(event), {
      RULE_ARN: attribute(rule.arn),
      TARGET_ARN: attribute(target.arn),
      ERROR_CODE: attribute(error.name === 'Error' ? 'SDK_CLIENT_ERROR' : error.name),
      ERROR_MESSAGE: attribute(error.message),
    });
    this.counters.deadLettered++;
  }

  /** AWS's `NO_PERMISSIONS` when EventBridge may not reach the target (not retried). */
  private denied(rule: LocalEventRule, target: Pick<LocalEventTarget, 'arn' | 'roleArn'>): Error | undefined {
    const message = this.options.authorizeDelivery?.(rule, target);
    if (message === undefined) return undefined;
    const error = new Error(message);
    error.name = 'NO_PERMISSIONS';
    return error;
  }

  private send(target: LocalEventTarget, payload: unknown) {
    const arn = target.arn;
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const { targets } = this.options;
    if (arn.startsWith('arn:aws:lambda:')) targets.invokeLambdaAsync(arn, payload);
    else if (arn.startsWith('arn:aws:sqs:')) targets.sendToQueue(arn, text, {}, target.messageGroupId);
    else if (arn.startsWith('arn:aws:sns:')) targets.publish(arn, text);
    else if (arn.startsWith('arn:aws:states:')) targets.startExecution(arn, payload);
    else if (/^arn:aws:events:[^:]+:[^:]+:event-bus\//.test(arn) && isBusEvent(payload)) this.put(payload, arn);
    else throw new AwsError('NotSupported', `The local engine does not deliver to targets like ${arn}`);
  }
}

/** What a target receives: the event, a constant, a part of the event, or a transformed event. */
export function targetInput(target: Pick<LocalEventTarget, 'input' | 'inputPath' | 'inputTransformer'>, event: BusEvent, rule: Pick<LocalEventRule, 'name' | 'arn'>): unknown {
  if (target.input !== undefined) return parseOrText(target.input);
  if (target.inputPath !== undefined) return jsonPath(event, target.inputPath);
  if (!target.inputTransformer) return event;
  const values: Record<string, unknown> = {
    'aws.events.rule-arn': rule.arn,
    'aws.events.rule-name': rule.name,
    'aws.events.event.ingestion-time': event.time,
    'aws.events.event': event,
    'aws.events.event.json': event,
  };
  for (const [name, path] of Object.entries(target.inputTransformer.inputPathsMap)) values[name] = jsonPath(event, path);
  return parseOrText(fillTemplate(target.inputTransformer.inputTemplate, values));
}

/**
 * `<name>` placeholders: inside a JSON string the value's text goes in (a string without quotes);
 * elsewhere its JSON. A path that matched nothing gives `null` (outside quotes) or nothing (inside).
 */
function fillTemplate(template: string, values: Record<string, unknown>): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (ch === '"' && template[i - 1] !== '\\') inString = !inString;
    const placeholder = ch === '<' ? /^<([A-Za-z0-9_.\-]+)>/.exec(template.slice(i)) : null;
    if (placeholder && placeholder[1] in values) {
      const value = values[placeholder[1]];
      if (inString) out += typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value).replace(/"/g, '\\"');
      else out += value === undefined ? 'null' : JSON.stringify(value);
      i += placeholder[0].length - 1;
    } else {
      out += ch;
    }
  }
  return out;
}

/** The JSONPath subset EventBridge uses: `$`, `$.a.b`, `$.a[0]`, `$['a-b']`. */
export function jsonPath(document: unknown, path: string): unknown {
  if (!path.startsWith('$')) throw new AwsError('ValidationException', `Invalid JSONPath "${path}": it must start with $`);
  const steps = [...path.slice(1).matchAll(/\.([^.[\]]+)|\[(\d+)\]|\['([^']+)'\]/g)].map((m) => m[1] ?? m[3] ?? Number(m[2]));
  let node: any = document;
  for (const step of steps) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[step];
  }
  return node;
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function entryProblem(entry: any): { code: string; message: string } | undefined {
  for (const field of ['Source', 'DetailType', 'Detail']) {
    if (typeof entry?.[field] !== 'string' || entry[field] === '') {
      return { code: 'InvalidArgument', message: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
    }
  }
  if (Buffer.byteLength(JSON.stringify(entry)) > MAX_ENTRY_BYTES) return { code: 'InvalidArgument', message: 'Entry size exceeds the limit of 256 KB.' };
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail);
  } catch {
    return { code: 'MalformedDetail', message: 'Detail is malformed.' };
  }
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return { code: 'MalformedDetail', message: 'Detail is malformed.' };
  if (entry.Source.startsWith('aws.')) return { code: 'NotAuthorizedForSourceException', message: `Not authorized for the source ${entry.Source}.` };
  return undefined;
}

function busNameOf(nameOrArn: string): string {
  return nameOrArn.startsWith('arn:') ? nameOrArn.split('event-bus/')[1] ?? nameOrArn : nameOrArn;
}

/** The SDK sends `Time` as epoch seconds. */
function timeOf(time: unknown): number {
  return typeof time === 'number' ? time * 1000 : new Date(String(time)).getTime();
}

/** EventBridge event times have whole seconds: `2026-12-06T05:00:00Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isBusEvent(value: unknown): value is BusEvent {
  return typeof value === 'object' && value !== null && 'detail-type' in value && 'source' in value;
}
