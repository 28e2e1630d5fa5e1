/**
 * The open-run index (docs/DESIGN.md "Operations"): how stuck-run detection finds runs that have not
 * finished without a timer per run and without scanning the status table.
 *
 * start-run puts `openShard` = `open#<n>` and `openedAt` (ISO time) on a run it (re)starts; the write
 * that gives the run a final state removes `openShard` in the same conditional update, so only
 * unfinished runs are in the sparse index `openRuns` (partition key `openShard`, sort key `openedAt`,
 * keys only). stuck-runs queries each shard for `openedAt` older than `stuckAfter` and moves each run
 * it reports to `stuck#<n>` (once; a re-run opens it again). Pure: no AWS SDK.
 *
 * The number of shards is part of the deployed contract (stored keys hold it): never change it. The
 * index and attribute names are in src/private/contract.ts.
 */
import { createHash } from 'node:crypto';
import { State } from './status';
import { OPEN_RUNS } from '../../src/private/contract';

/** The sparse global secondary index of the status table. */
export const OPEN_RUNS_INDEX = OPEN_RUNS.indexName;
/** Partition key of the index: `open#<n>` while the run is unfinished, `stuck#<n>` once reported. */
export const OPEN_SHARD_ATTRIBUTE = OPEN_RUNS.shardAttribute;
/** Sort key of the index: when the run was (re)started. */
export const OPENED_AT_ATTRIBUTE = OPEN_RUNS.openedAtAttribute;
/** When stuck-runs reported the run (kept as history; cleared by a re-run). */
export const STUCK_REPORTED_AT_ATTRIBUTE = 'stuckReportedAt';
/**
 * Index partitions the open runs are spread over, so that a high start rate does not make one hot
 * partition (a partition takes 1,000 writes per second). A sweep costs one Query per shard.
 */
export const OPEN_RUN_SHARDS = 8;

const OPEN_PREFIX = 'open#';
const STUCK_PREFIX = 'stuck#';

/** Run states after which nothing more happens to the run (until a re-run). */
const UNFINISHED: readonly State[] = [State.NOT_STARTED, State.IN_PROGRESS];

export function isRunFinished(state: State): boolean {
  return !UNFINISHED.includes(state);
}

export function unfinishedRunStates(): readonly State[] {
  return UNFINISHED;
}

/** The shard of a run: a stable hash of its key, so a re-put of the same run lands in the same shard. */
export function shardOf(uid: string, workflow: string): number {
  return createHash('sha256').update(`${uid}\u0000${workflow}`, 'utf8').digest().readUInt32BE(0) % OPEN_RUN_SHARDS;
}

export function openShardKey(shard: number): string {
  return `${OPEN_PREFIX}${shard}`;
}

export function stuckShardKey(shard: number): string {
  return `${STUCK_PREFIX}${shard}`;
}

/** Every open shard key, `open#0` ... `open#<OPEN_RUN_SHARDS - 1>`. */
export function openShardKeys(): string[] {
  return Array.from({ length: OPEN_RUN_SHARDS }, (_, shard) => openShardKey(shard));
}

/** The shard number of `open#<n>` / `stuck#<n>`. */
export function shardNumber(key: string): number {
  return Number(key.slice(key.indexOf('#') + 1));
}

/** The open-run attributes an item can carry. */
export interface OpenRunAttributes {
  readonly openShard?: string;
  readonly openedAt?: string;
  readonly stuckReportedAt?: string;
}

/**
 * A document start-run is about to put, with the open-run attributes of this (re)start: in the index
 * when the run is unfinished, out of it otherwise (a re-run with nothing left to do). A previous
 * run's attributes (a re-run's document is built from the stored item) are dropped.
 */
export function withOpenRun<T extends { uid: string; workflow: string; status: { state: State } }>(doc: T, now: string): T & OpenRunAttributes {
  const { openShard: _shard, openedAt: _openedAt, stuckReportedAt: _reported, ...rest } = doc as T & OpenRunAttributes;
  if (isRunFinished(doc.status.state)) return rest as T;
  return { ...rest, openShard: openShardKey(shardOf(doc.uid, doc.workflow)), openedAt: now } as T & OpenRunAttributes;
}
