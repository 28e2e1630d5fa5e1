// PARALLEL queue plugin of Step2 (`queue: true`, FIFO per customer): the stack's queue bridge marks it
// `In Progress` and forwards each run's message to its own SQS queue; it takes one message at a
// time and reports `Complete` itself through the plugin SDK (a queue plugin's return value is not
// recorded). Runs of the same customer reach it one at a time, in order. In a plugin of your own,
// import from 'cdk-orchestrator/lib/sdk'; this example imports the same file from this repository.
import { pluginHandler } from '../../lib/sdk';

/** The run metadata this plugin reads (the workflow's input `metadata`). */
interface Application {
  readonly customer?: string;
}

export const handler = pluginHandler<Application>({ pluginName: 'Ledger', description: 'Books the application in the ledger' }, async (message) => {
  console.log(JSON.stringify({ plugin: 'Ledger', uid: message.uid, customer: message.customer ?? null, booked: true }));
});
