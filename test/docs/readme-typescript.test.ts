/**
 * Every TypeScript block of README.md compiles on its own, as a file of a fresh app would: each
 * block is its own module (nothing leaks from one block to the next), `cdk-orchestrator`,
 * `cdk-orchestrator/lib/sdk` and `cdk-orchestrator-local` resolve to this repository's sources,
 * and strict type-checking applies. A block that leaves a name undefined or forgets an import fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');

/** The ```ts blocks of a Markdown file, with the line each starts on. */
export function typescriptBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const pattern = /^```(?:ts|typescript)\n([\s\S]*?)^```$/gm;
  for (let m = pattern.exec(markdown); m; m = pattern.exec(markdown)) {
    blocks.push({ line: markdown.slice(0, m.index).split('\n').length, code: m[1] });
  }
  return blocks;
}

/** Diagnostics of compiling each block as its own module. */
export function compileBlocks(blocks: { line: number; code: string }[]): string[] {
  const files = new Map(blocks.map((b) => [join(ROOT, '.readme', `block-line-${b.line}.ts`), `${b.code}\nexport {};\n`]));
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node', 'jest'],
    baseUrl: ROOT,
    paths: {
      'cdk-orchestrator': ['src/index.ts'],
      'cdk-orchestrator/lib/sdk': ['lambda/sdk/index.ts'],
      'cdk-orchestrator-local': ['local/src/index.ts'],
      'cdk-orchestrator-local/*': ['local/src/*'],
    },
    ignoreDeprecations: '6.0',
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.readFile = (f) => files.get(f) ?? read(f);
  host.fileExists = (f) => files.has(f) || exists(f);
  const program = ts.createProgram([...files.keys()], options, host);
  return ts.getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.has(d.file.fileName))
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      const blockLine = Number(/block-line-(\d+)/.exec(d.file!.fileName)![1]);
      return `README.md:${blockLine + line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

/** A block that must fail: it uses names it neither imports nor declares. */
const BROKEN = { line: 100_000, code: "import { App } from 'aws-cdk-lib';\nnew App();\nnew Orchestrator(stack, 'O', { activities: [] });" };

describe('README.md TypeScript blocks', () => {
  const blocks = typescriptBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  // One program for all (type-checking aws-cdk-lib and the library takes most of the time).
  let errors: string[];

  beforeAll(() => {
    errors = compileBlocks([...blocks, BROKEN]);
  }, 180_000);

  test('there are blocks to check', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  test('each compiles on its own', () => {
    expect(errors.filter((e) => !e.startsWith(`README.md:${BROKEN.line + 1}`) && !e.startsWith(`README.md:${BROKEN.line + 2}`) && !e.startsWith(`README.md:${BROKEN.line + 3}`))).toEqual([]);
  });

  test('the check fails on a block that uses an undefined name or misses an import', () => {
    expect(errors.filter((e) => e.startsWith(`README.md:${BROKEN.line + 3}`))).toEqual([
      `README.md:${BROKEN.line + 3}: Cannot find name 'Orchestrator'.`,
      `README.md:${BROKEN.line + 3}: Cannot find name 'stack'.`,
    ]);
  });
});
