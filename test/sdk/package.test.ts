/**
 * The plugin SDK as a user gets it from the npm package: `cdk-orchestrator/lib/sdk` resolves to
 * lib/sdk/index.js with lib/sdk/index.d.ts (built by scripts/bundle-handlers.mjs), the declarations
 * type-check a consumer that has no other types installed, and `npm pack` ships both.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ts from 'typescript';

const ROOT = realpathSync(join(__dirname, '..', '..'));

const CONSUMER = `
import { pluginHandler, PluginBusinessError, PluginMessage, PLUGIN_STATUS_TABLE_ENV } from 'cdk-orchestrator/lib/sdk';

interface Quote { readonly amount: number; readonly customer: string }

export const handler = pluginHandler<Quote>({ pluginName: 'Rate', idempotent: true, order: 10 }, async (message: PluginMessage<Quote>, context) => {
  const amount: number = message.amount;
  const uid: string = message.uid;
  const own: string = message.activities[message.activity].async.mandatory.Rate.state;
  if (amount < 0) throw new PluginBusinessError(uid + own);
  if (context.kind === 'optional') return { state: 'Do Not Run', message: 'not needed' };
  return undefined;
});

export const envName: 'CDK_ORCHESTRATOR_STATUS_TABLE' = PLUGIN_STATUS_TABLE_ENV;

// @ts-expect-error only Complete and Do Not Run can be returned (a failure is thrown)
export const wrongResult = pluginHandler<Quote>({ pluginName: 'Wrong' }, async () => ({ state: 'Error' as const }));

export const wrongField = pluginHandler<Quote>({ pluginName: 'Wrong' }, async (message) => {
  // @ts-expect-error metadata fields keep their types
  const customer: number = message.customer;
  void customer;
});

// @ts-expect-error pluginName is required
pluginHandler({ mandatory: false }, async () => undefined);
`;

describe('the published plugin SDK', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sdk-consumer-'));
    // The package as installed: node_modules/cdk-orchestrator is this checkout.
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'cdk-orchestrator'), 'dir');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a TypeScript consumer type-checks against lib/sdk/index.d.ts alone (strict, no skipLibCheck, no @types)', () => {
    const file = join(dir, 'plugin.ts');
    writeFileSync(file, CONSUMER);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: [],
      lib: ['lib.es2022.d.ts'],
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      target: ts.ScriptTarget.ES2022,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
    // It resolved to the package's declarations, which import nothing outside lib/sdk.
    // (TypeScript names them by their real path: the checkout.)
    const declarations = program.getSourceFiles().map((f) => f.fileName).filter((f) => f.startsWith(ROOT) && !f.includes('/node_modules/typescript/'));
    expect(declarations.some((f) => f.endsWith('lib/sdk/index.d.ts'))).toBe(true);
    expect(declarations.every((f) => f.includes('/lib/sdk/'))).toBe(true);
  });

  test('require("cdk-orchestrator/lib/sdk") loads the bundle: its API, no Powertools, the AWS SDK left to the runtime', async () => {
    // Resolved by module resolution from the consumer's directory, as a plugin would.
    const sdk = jest.requireActual(require.resolve('cdk-orchestrator/lib/sdk', { paths: [dir] }));
    expect(Object.keys(sdk).sort()).toEqual(['InvalidPluginConfig', 'InvalidPluginEvent', 'PLUGIN_STATUS_TABLE_ENV', 'PluginBusinessError', 'PluginNotInRun', 'pluginHandler']);
    expect(sdk.PLUGIN_STATUS_TABLE_ENV).toBe('CDK_ORCHESTRATOR_STATUS_TABLE');
    await expect(sdk.pluginHandler({ pluginName: 'Rate' }, async () => undefined)({ initialize: true })).resolves.toMatchObject({ pluginName: 'Rate' });
    const bundle = readFileSync(join(ROOT, 'lib', 'sdk', 'index.js'), 'utf8');
    expect(bundle).not.toContain('@aws-lambda-powertools');
    const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(new Set(required)).toEqual(new Set(['@aws-sdk/client-dynamodb', '@aws-sdk/util-dynamodb']));
  });

  test('npm pack ships lib/sdk/index.js and its declarations', () => {
    const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(output) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['lib/sdk/index.js', 'lib/sdk/index.d.ts', 'lib/sdk/types.d.ts', 'lib/sdk/errors.d.ts', 'lib/sdk/plugin-handler.d.ts']));
    // Sources and the bundle's stand-in stay out.
    expect(files.filter((f) => f.startsWith('lambda/') || f === 'lib/sdk/untraced.d.ts')).toEqual([]);
  }, 60_000);
});
