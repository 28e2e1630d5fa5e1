/**
 * The three stages of an activity. They always run in this order: `PRE`, `PARALLEL`, `POST`.
 *
 * Each stage has its own SNS topic that plugins subscribe to, and its own section in the status
 * document, keyed by `ActivityStageKey.of(stage)` (`pre`, `async`, `post`).
 */
export enum ActivityStage {
  /** Sequential stage before the parallel stage: pre plugins run one at a time, in `order`. Status key `pre`. */
  PRE = 'PRE',
  /** Parallel (callback) stage: one message to the parallel topic, every plugin works at once. Status key `async`. */
  PARALLEL = 'PARALLEL',
  /** Sequential stage after the parallel stage, like `PRE`. Status key `post`. */
  POST = 'POST',
}

const KEYS: Record<ActivityStage, string> = {
  [ActivityStage.PRE]: 'pre',
  [ActivityStage.PARALLEL]: 'async',
  [ActivityStage.POST]: 'post',
};

/**
 * Maps an `ActivityStage` to the key used for it in the status document, the plugin registry
 * (`<activity>|<key>`) and the handler payloads, and back.
 */
export class ActivityStageKey {
  /** Every stage, in execution order. */
  public static readonly STAGES: ActivityStage[] = [ActivityStage.PRE, ActivityStage.PARALLEL, ActivityStage.POST];

  /**
   * The status-document key of a stage: `pre`, `async` or `post`.
   */
  public static of(stage: ActivityStage): string {
    const key = KEYS[stage];
    if (key === undefined) {
      throw new Error(`Unknown activity stage ${JSON.stringify(stage)}; expected one of ${ActivityStageKey.STAGES.join(', ')}`);
    }
    return key;
  }

  /**
   * The stage for a status-document key (`pre`, `async` or `post`).
   */
  public static toStage(key: string): ActivityStage {
    const stage = ActivityStageKey.STAGES.find((s) => KEYS[s] === key);
    if (stage === undefined) {
      throw new Error(`Unknown stage key ${JSON.stringify(key)}; expected one of ${ActivityStageKey.STAGES.map((s) => KEYS[s]).join(', ')}`);
    }
    return stage;
  }

  private constructor() {}
}
