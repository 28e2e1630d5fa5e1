// PARALLEL plugin of Step2 (mandatory), written with the plugin SDK: it reports its own state
// (`In Progress`, then `Complete`), skips a run it already rated, and a `PluginBusinessError` is
// recorded `Error` without retries. app.ts adds it with `reportsStatus: true`, which gives it the
// status table's name and access. In a plugin of your own, import from 'cdk-orchestrator/lib/sdk';
// this example imports the same file from this repository.
import { PluginBusinessError, pluginHandler } from '../../lib/sdk';

/** The run metadata this plugin reads (the workflow's input `metadata`). */
interface Application {
  readonly amount?: number;
}

export const handler = pluginHandler<Application>({ pluginName: 'Rate', description: 'Rates the application' }, async (message) => {
  const amount = message.amount ?? 1000;
  if (typeof amount !== 'number' || amount < 0) throw new PluginBusinessError(`amount must be a non-negative number, got ${JSON.stringify(amount)}`);
  const premium = Math.round(amount * 0.042 * 100) / 100;
  console.log(JSON.stringify({ plugin: 'Rate', uid: message.uid, premium }));
});
