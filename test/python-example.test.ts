/**
 * The Python example (examples/python/app.py) against the Python bindings of this library, without
 * PyPI (so without running it): jsii-pacmak generates the `cdk_orchestrator` module from the compiled
 * assembly (.jsii), test/support/python_names.py reads the module and the example with Python's own
 * `ast`, and this file checks that every `cdk_orchestrator` name the example imports, every member it
 * uses (enum members, properties, methods) and every argument it passes to a constructor or method of
 * the module exists, with the required arguments present. The example is also byte-compiled, and
 * it must add the plugins examples/app.ts adds (by pluginName).
 *
 * Not covered: the `aws_cdk` names the example uses, argument types and values (e.g. `order` on a
 * PARALLEL plugin, which fails at synth), and values whose type the helper cannot follow (it
 * reports those, and the check fails on them).
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const ASSEMBLY = path.join(ROOT, '.jsii');
const EXAMPLE = path.join(ROOT, 'examples', 'python', 'app.py');
const HELPER = path.join(__dirname, 'support', 'python_names.py');
const PACMAK = path.join(ROOT, 'node_modules', '.bin', 'jsii-pacmak');
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const MODULE: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf-8')).jsii.targets.python.module;

/** Members every construct has in Python (constructs.Construct / IConstruct), not in our bindings. */
const CONSTRUCT_MEMBERS = ['node', 'to_string', 'with_', 'is_construct'];

// What python_names.py prints (see its docstring).
type PyType = { class: string } | { list: PyType } | null;
interface Member {
  kind: 'method' | 'property';
  static: boolean;
  positional: string[];
  keyword: string[];
  required: string[];
  varargs: boolean;
  varkw: boolean;
  returns: PyType;
}
interface TypeInfo {
  kind: 'class' | 'struct' | 'interface' | 'enum';
  bases: string[];
  externalBases: string[];
  enumMembers: string[];
  members: Record<string, Member>;
}
interface Bindings {
  names: string[];
  types: Record<string, TypeInfo>;
}
interface Usage {
  kind: 'import' | 'name' | 'member' | 'call';
  line: number;
  code: string;
  name?: string;
  owner?: string;
  member?: string;
  static?: boolean;
  positional?: number;
  keywords?: string[];
  starArgs?: boolean;
  starKwargs?: boolean;
}
interface Example {
  usages: Usage[];
  unresolved: Array<{ line: number; code: string }>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf-8', env, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) {
    throw new Error(`${command} could not run: ${result.error.message}`);
  }
  return result;
}

function failed(what: string, result: SpawnSyncReturns<string>): Error {
  return new Error(`${what} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`.trim());
}

function newestSource(dir: string): { file: string; mtimeMs: number } {
  let newest = { file: '', mtimeMs: 0 };
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const candidate = entry.isDirectory() ? newestSource(file)
      : entry.name.endsWith('.ts') ? { file, mtimeMs: fs.statSync(file).mtimeMs } : newest;
    if (candidate.mtimeMs > newest.mtimeMs) newest = candidate;
  }
  return newest;
}

/** Runs python_names.py on the generated module and an example. */
function readNames(bindingsFile: string, exampleFile: string): { bindings: Bindings; example: Example } {
  const result = run(PYTHON, [HELPER, '--bindings', bindingsFile, '--example', exampleFile, '--module', MODULE]);
  if (result.status !== 0) throw failed(`python_names.py on ${exampleFile}`, result);
  return JSON.parse(result.stdout);
}

/** A member of a type or of its bases in the module. */
function findMember(bindings: Bindings, owner: string, name: string): Member | undefined {
  const seen = new Set<string>();
  const todo = [owner];
  while (todo.length > 0) {
    const current = todo.shift()!;
    const info = bindings.types[current];
    if (seen.has(current) || !info) continue;
    seen.add(current);
    if (info.members[name]) return info.members[name];
    todo.push(...info.bases);
  }
  return undefined;
}

function isConstruct(bindings: Bindings, owner: string, seen = new Set<string>()): boolean {
  const info = bindings.types[owner];
  if (!info || seen.has(owner)) return false;
  seen.add(owner);
  return info.externalBases.some((b) => /\.I?Construct$/.test(b)) || info.bases.some((b) => isConstruct(bindings, b, seen));
}

const list = (names: string[]) => (names.length > 0 ? names.join(', ') : 'none');

/** Everything the example uses that the bindings do not have, one line per problem. */
function problems(bindings: Bindings, example: Example, file: string): string[] {
  const out: Array<{ line: number; text: string }> = [];
  const at = (u: { line: number; code: string }, message: string) => out.push({ line: u.line, text: `${file}:${u.line} \`${u.code}\`: ${message}` });
  const exported = new Set(bindings.names);

  for (const u of example.usages) {
    switch (u.kind) {
      case 'import':
      case 'name': {
        if (u.name === '*') at(u, `star import: import the ${MODULE} names one by one so they can be checked`);
        else if (!exported.has(u.name!)) at(u, `${MODULE} has no ${u.name} (it has: ${list(bindings.names)})`);
        break;
      }
      case 'member': {
        const owner = bindings.types[u.owner!];
        if (!owner) break; // the import / name problem is reported
        if (owner.kind === 'enum' && owner.enumMembers.includes(u.member!)) break;
        const member = findMember(bindings, u.owner!, u.member!);
        if (!member) {
          if (CONSTRUCT_MEMBERS.includes(u.member!) && isConstruct(bindings, u.owner!)) break;
          const known = owner.kind === 'enum' ? owner.enumMembers : Object.keys(owner.members).filter((m) => m !== '__init__');
          at(u, `${u.owner} has no member ${u.member} (it has: ${list(known)})`);
        } else if (u.static && !member.static) {
          at(u, `${u.owner}.${u.member} is an instance ${member.kind}: use it on an instance, not on the class`);
        }
        break;
      }
      case 'call': {
        const owner = bindings.types[u.owner!];
        if (!owner) break;
        const what = u.member === '__init__' ? `${u.owner}(...)` : `${u.owner}.${u.member}(...)`;
        const member = findMember(bindings, u.owner!, u.member!);
        if (!member) {
          // A missing method was reported as a member; a missing __init__ was not.
          if (u.member === '__init__') at(u, `${u.owner} (${owner.kind}) cannot be created with ${what}`);
          break;
        }
        if (member.kind !== 'method') {
          at(u, `${u.owner}.${u.member} is a property, not a method`);
          break;
        }
        const positional = u.positional!;
        const keywords = u.keywords!;
        if (positional > member.positional.length && !member.varargs) {
          at(u, `${what} takes ${member.positional.length} positional argument(s) (${list(member.positional)}), got ${positional}`);
        }
        const accepted = [...member.positional, ...member.keyword];
        for (const kw of keywords) {
          if (!accepted.includes(kw) && !member.varkw) {
            at(u, `${what} has no keyword argument ${kw} (it takes: ${list(accepted)})`);
          } else if (member.positional.indexOf(kw) >= 0 && member.positional.indexOf(kw) < positional) {
            at(u, `${what} gets ${kw} twice, by position and by keyword`);
          }
        }
        if (!u.starArgs && !u.starKwargs) {
          const given = new Set([...member.positional.slice(0, positional), ...keywords]);
          const missing = member.required.filter((r) => !given.has(r));
          if (missing.length > 0) at(u, `${what} is missing required argument(s): ${missing.join(', ')}`);
        }
        break;
      }
    }
  }
  for (const u of example.unresolved) {
    at(u, `cannot tell which ${MODULE} type this is, so its members cannot be checked: `
      + 'assign it to a variable from a constructor or method of the module, or annotate it');
  }
  return out.sort((a, b) => a.line - b.line).map((p) => p.text);
}

// Everything written goes here: the generated bindings, the byte-compiled example, the check's own test input.
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'python-example-'));
afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

describe('examples/python/app.py', () => {
  test('byte-compiles', () => {
    // The cache goes to the temporary directory, not to examples/python/__pycache__.
    const result = run(PYTHON, ['-m', 'py_compile', EXAMPLE], { ...process.env, PYTHONPYCACHEPREFIX: path.join(workDir, 'pycache') });
    if (result.status !== 0) throw failed('python3 -m py_compile examples/python/app.py', result);
  });

  test('adds the plugins examples/app.ts adds', () => {
    const names = (file: string, pattern: RegExp) => [...fs.readFileSync(file, 'utf-8').matchAll(pattern)].map((m) => m[1]).sort();
    const typescript = names(path.join(ROOT, 'examples', 'app.ts'), /pluginName: '([^']+)'/g);
    expect(typescript.length).toBeGreaterThan(0);
    expect(names(EXAMPLE, /plugin_name="([^"]+)"/g)).toEqual(typescript);
  });
});

describe(`against the ${MODULE} bindings generated from .jsii`, () => {
  let bindingsFile: string;

  beforeAll(() => {
    if (!fs.existsSync(ASSEMBLY)) {
      throw new Error(`${ASSEMBLY} is missing: the Python bindings are generated from the compiled assembly. Run \`npx projen compile\` first.`);
    }
    const source = newestSource(path.join(ROOT, 'src'));
    if (source.mtimeMs > fs.statSync(ASSEMBLY).mtimeMs) {
      throw new Error(`${ASSEMBLY} is older than ${path.relative(ROOT, source.file)}: the Python bindings would not match src/. `
        + 'Run `npx projen compile` first.');
    }
    const result = run(PACMAK, ['--target', 'python', '--code-only', '--outdir', path.join(workDir, 'bindings')]);
    if (result.status !== 0) throw failed('jsii-pacmak --target python', result);
    bindingsFile = path.join(workDir, 'bindings', 'python', 'src', MODULE, '__init__.py');
    if (!fs.existsSync(bindingsFile)) {
      throw new Error(`jsii-pacmak wrote no ${path.relative(workDir, bindingsFile)}:\n${result.stdout}\n${result.stderr}`);
    }
  }, 120_000);

  test('examples/python/app.py uses only names, members and keyword arguments that exist in them', () => {
    const { bindings, example } = readNames(bindingsFile, EXAMPLE);
    expect(problems(bindings, example, 'examples/python/app.py')).toEqual([]);

    // The check saw the example's core API (so it cannot pass by checking nothing).
    const seen = example.usages.map((u) => `${u.kind} ${u.owner ?? ''}.${u.member ?? u.name}`);
    expect(seen).toEqual(expect.arrayContaining([
      'import .Orchestrator',
      'import .Workflow',
      'import .ActivityStage',
      'call Orchestrator.__init__',
      'call Workflow.__init__',
      'call Orchestrator.activity',
      'call Activity.add_plugin',
      'member ActivityStage.PARALLEL',
    ]));
    const orchestrator = example.usages.find((u) => u.kind === 'call' && u.owner === 'Orchestrator' && u.member === '__init__');
    expect(orchestrator?.keywords).toEqual(expect.arrayContaining(['activities']));
    const workflow = example.usages.find((u) => u.kind === 'call' && u.owner === 'Workflow' && u.member === '__init__');
    expect(workflow?.keywords).toEqual(expect.arrayContaining(['orchestrator', 'activities']));
  });

  test('the check reports misspelled names, members and keywords, missing and extra arguments, untyped values', () => {
    const bad = path.join(workDir, 'bad.py');
    fs.writeFileSync(bad, [
      `import ${MODULE} as co`,
      `from ${MODULE} import ActivityStage, Orchestrator, Workflow, Orchestratr`,
      'o = Orchestrator(stack, "O", activitys=["A"])',
      'o.activty("A")',
      'ActivityStage.PARALEL',
      'Workflow(stack, "W", orchestrator=o)',
      'o.activity("A").topic(ActivityStage.PRE, 1)',
      'Orchestrator.activity("A")',
      'co.Workflw(stack, "W2", orchestrator=o, activities=["A"])',
      'for a in o.activities:',
      '    a.add_plugn(fn)',
      'helper(o).activity_name',
      'o.node.add_dependency(x)',
      '',
    ].join('\n'));
    const { bindings, example } = readNames(bindingsFile, bad);
    const found = problems(bindings, example, 'bad.py');
    const expected = [
      'bad.py:2 `from cdk_orchestrator import ActivityStage, Orchestrator, Workflow, Orchestratr`: cdk_orchestrator has no Orchestratr',
      'bad.py:3 `Orchestrator(...)`: Orchestrator(...) has no keyword argument activitys',
      'bad.py:3 `Orchestrator(...)`: Orchestrator(...) is missing required argument(s): activities',
      'bad.py:4 `o.activty`: Orchestrator has no member activty',
      'bad.py:5 `ActivityStage.PARALEL`: ActivityStage has no member PARALEL (it has: PRE, PARALLEL, POST)',
      'bad.py:6 `Workflow(...)`: Workflow(...) is missing required argument(s): activities',
      'bad.py:7 `o.activity("A").topic(...)`: Activity.topic(...) takes 1 positional argument(s) (stage), got 2',
      'bad.py:8 `Orchestrator.activity`: Orchestrator.activity is an instance method: use it on an instance, not on the class',
      'bad.py:9 `co.Workflw`: cdk_orchestrator has no Workflw',
      'bad.py:11 `a.add_plugn`: Activity has no member add_plugn',
      'bad.py:12 `helper(o).activity_name`: cannot tell which cdk_orchestrator type this is',
    ];
    expect(found).toEqual(expected.map((start) => expect.stringContaining(start)));
  });
});
