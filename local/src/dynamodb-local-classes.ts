/**
 * Class-data sharing for DynamoDB Local's JVM: the classes it loads, parsed and verified once, kept in
 * an archive that later JVMs map instead of loading them again from the jars (Java's AppCDS, with a
 * static archive). DynamoDB Local loads about 3,500 classes before it answers, and more for its first
 * requests; with the archive it answers after about a third less CPU (`npx projen bench:dynamodb`).
 *
 * The first DynamoDB Local without an archive records the classes it loads (`-XX:DumpLoadedClassList`,
 * which costs it nothing measurable). When it is stopped, a Java process in the background writes the
 * archive from that list (about 3 s of CPU, once, after the session, so no run waits for it); later
 * starts map it. One start at a time records (a lock file); the others run as without an archive.
 *
 * Java refuses to archive a class path with a non-empty directory on it, and DynamoDB Local's jar
 * names its own directory (`.`) in its manifest's `Class-Path`. So the cache holds a copy of the jar
 * whose manifest lists only the jars (the rest of the copy is AWS's bytes, untouched), next to a link
 * to the package's library directory.
 *
 * The directory is `node_modules/.cache/cdk-orchestrator-local/dynamodb-local/<key>` (cache-directory.ts),
 * the key naming the Java installation, DynamoDB Local's jar and the JVM options (a JVM maps only an
 * archive written by its own build, for the same class path). `CDK_ORCHESTRATOR_LOCAL_CLASS_ARCHIVE`
 * names another directory, or turns the archive off with `off`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { projectCacheDirectory, usableDirectory } from './cache-directory';
import { readZipEntry, replaceZipEntry, zipEntryNames } from './engine/zip';

/** Names the archive's directory, or `off`. */
export const CLASS_ARCHIVE_ENV = 'CDK_ORCHESTRATOR_LOCAL_CLASS_ARCHIVE';

/** How one DynamoDB Local JVM takes part: it maps the archive, or records the classes it loads. */
export interface ClassArchiveUse {
  /** JVM options, before `-jar`. */
  readonly jvmOptions: string[];
  /** The jar to run: the cache's copy of DynamoDB Local's, whose class path Java can archive. */
  readonly jar: string;
  /**
   * Once the JVM has exited: `answered` when it ran a session (its list of classes is complete
   * enough to archive), false when it never answered. A recording JVM's list is then handed to the
   * background writer, or removed.
   */
  settle(answered: boolean): void;
}

const ARCHIVE = 'classes.jsa';
const CLASS_LIST = 'classes.lst';
/** Written when Java could not write an archive from a list: later starts do not try again. */
const UNAVAILABLE = 'unavailable';
const LOCK = 'writing.lock';
/** JVM options by which the user chose class-data sharing themselves: theirs is kept. */
const OWN_SHARING = /^-(Xshare|XX:SharedArchiveFile|XX:ArchiveClassesAtExit|XX:\+AutoCreateSharedArchive|XX:DumpLoadedClassList|XX:SharedClassListFile)/;

/**
 * Writes the archive from the class list, detached from the engine's process (argv: java, the
 * archive, the file it is written to first, the list, the lock, the marker of failure, then Java's
 * arguments), and moves it into place only when Java succeeded.
 */
const WRITER_SOURCE = `const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const [java, archive, written, list, lock, unavailable, ...args] = process.argv.slice(1);
try {
  const result = spawnSync(java, args, { stdio: 'ignore' });
  if (result.status === 0 && fs.existsSync(written)) fs.renameSync(written, archive);
  else fs.writeFileSync(unavailable, 'Java wrote no class archive (its list: ' + list + '; exit ' + result.status + ').\\n');
} finally {
  for (const file of [written, list, lock]) fs.rmSync(file, { force: true });
}`;

/**
 * How a DynamoDB Local JVM about to run `packageJar` with `jvmOptions` uses the archive, or undefined
 * when it runs as without one (turned off, no usable cache directory, no Java on the PATH, a jar that
 * cannot be copied as needed, the user's own sharing options, another start recording or writing).
 */
export function classArchiveFor(
  packageJar: string, jvmOptions: readonly string[], environment: NodeJS.ProcessEnv = process.env,
): ClassArchiveUse | undefined {
  const named = environment[CLASS_ARCHIVE_ENV];
  if (named === 'off' || process.platform === 'win32' || jvmOptions.some((o) => OWN_SHARING.test(o))) return undefined;
  try {
    const java = javaOnPath(environment.PATH);
    if (!java) return undefined;
    const base = named || projectCacheDirectory('dynamodb-local');
    const dir = usableDirectory(base && join(base, keyOf(java, packageJar, jvmOptions)));
    if (!dir) return undefined;
    const jar = archivableJar(packageJar, dir);
    if (!jar) return undefined;
    const archive = join(dir, ARCHIVE);
    if (existsSync(archive)) {
      return {
        // A fatal error of that JVM is reported in the cache, not in the package's directory (its working directory).
        jvmOptions: [`-XX:SharedArchiveFile=${archive}`, `-XX:ErrorFile=${join(dir, 'hs_err_pid%p.log')}`],
        jar,
        // Java cannot tell a damaged archive (one cut short) before it maps it, and crashes: a JVM that
        // mapped it and never answered takes it away, so the next start (the launch's next attempt) runs without.
        settle: (answered) => { if (!answered) rmSync(archive, { force: true }); },
      };
    }
    const lock = join(dir, LOCK);
    if (existsSync(join(dir, UNAVAILABLE)) || !takeLock(lock)) return undefined;
    const list = join(dir, CLASS_LIST);
    rmSync(list, { force: true }); // a list left by a session that was killed
    return {
      jvmOptions: [`-XX:DumpLoadedClassList=${list}`],
      jar,
      settle: (answered) => {
        try {
          if (answered && existsSync(list)) {
            writeArchiveInBackground({ java, jar, jvmOptions, dir, list, lock });
          } else {
            rmSync(list, { force: true });
            rmSync(lock, { force: true });
          }
        } catch {
          // the cache's files are the cache's concern: the stop has succeeded
        }
      },
    };
  } catch {
    return undefined; // a cache that cannot be written or read: DynamoDB Local runs as without it
  }
}

interface Recorded {
  readonly java: string;
  readonly jar: string;
  readonly jvmOptions: readonly string[];
  readonly dir: string;
  readonly list: string;
  readonly lock: string;
}

/**
 * Starts the archive's writer, detached (it outlives this process, which does not wait for it), and
 * hands it the lock. The archive is written for the class path the JVMs run with: the copy's path.
 */
function writeArchiveInBackground({ java, jar, jvmOptions, dir, list, lock }: Recorded) {
  const archive = join(dir, ARCHIVE);
  const written = `${archive}.${process.pid}.tmp`;
  const javaArgs = ['-Xshare:dump', `-XX:SharedClassListFile=${list}`, `-XX:SharedArchiveFile=${written}`, ...jvmOptions, '-cp', jar];
  const writer = spawn(process.execPath, ['-e', WRITER_SOURCE, java, archive, written, list, lock, join(dir, UNAVAILABLE), ...javaArgs], {
    detached: true,
    stdio: 'ignore',
  });
  writer.on('error', () => rmSync(lock, { force: true }));
  if (writer.pid) writeFileSync(lock, String(writer.pid));
  writer.unref();
}

/** The `java` a spawn without a path runs: the first on the PATH, its links resolved. */
function javaOnPath(path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'java');
    if (existsSync(candidate)) return realpathSync(candidate);
  }
  return undefined;
}

/** Names what the archive is valid for: this Java installation, this jar, these options, this machine. */
function keyOf(java: string, packageJar: string, jvmOptions: readonly string[]): string {
  const identity = (file: string) => {
    const stat = statSync(file);
    return [realpathSync(file), stat.size, stat.mtimeMs];
  };
  const key = JSON.stringify({ java: identity(java), jar: identity(packageJar), jvmOptions, arch: process.arch });
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * The cache's copy of the jar (made once): its manifest's class path without directories and other
 * files, which Java cannot archive, and links to what that class path names next to it. Undefined
 * for a signed jar, whose manifest cannot change.
 */
function archivableJar(packageJar: string, dir: string): string | undefined {
  const copy = join(dir, 'DynamoDBLocal.jar');
  if (existsSync(copy)) return copy;
  const original = readFileSync(packageJar);
  const manifest = readZipEntry(original, 'META-INF/MANIFEST.MF')?.toString('utf8');
  if (!manifest || zipEntryNames(original).some((name) => /^META-INF\/[^/]+\.SF$/.test(name))) return undefined;
  const { text, jars } = withJarsOnlyOnClassPath(manifest);
  const packageDir = dirname(realpathSync(packageJar));
  for (const top of new Set(jars.map((jar) => jar.split('/')[0]))) {
    const link = join(dir, top);
    try {
      symlinkSync(join(packageDir, top), link);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made by another start meanwhile
    }
  }
  const temporary = `${copy}.${process.pid}.tmp`;
  writeFileSync(temporary, replaceZipEntry(original, 'META-INF/MANIFEST.MF', Buffer.from(text, 'utf8')));
  renameSync(temporary, copy);
  return copy;
}

/**
 * The manifest with a `Class-Path` of its relative `.jar` entries only, and those entries. A manifest's
 * lines are at most 72 bytes; longer values continue on lines that start with a space.
 */
export function withJarsOnlyOnClassPath(manifest: string): { text: string; jars: string[] } {
  const attributes = manifest.replace(/\r\n/g, '\n').replace(/\n /g, '').split('\n');
  let jars: string[] = [];
  const lines = attributes.map((line) => {
    if (!line.startsWith('Class-Path:')) return line;
    jars = line.slice('Class-Path:'.length).trim().split(/\s+/).filter((entry) => entry.endsWith('.jar') && !entry.includes(':'));
    return `Class-Path: ${jars.join(' ')}`;
  });
  return { text: lines.map(wrapManifestLine).join('\r\n'), jars };
}

function wrapManifestLine(line: string): string {
  const parts: string[] = [];
  let rest = line;
  while (Buffer.byteLength(rest) > 72) {
    parts.push(rest.slice(0, 70));
    rest = ` ${rest.slice(70)}`;
  }
  parts.push(rest);
  return parts.join('\r\n');
}

/** Takes the lock file, or one left by a process that no longer runs; false while another start holds it. */
function takeLock(lock: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (isRunning(holder)) return false;
      rmSync(lock, { force: true });
    }
  }
  return false;
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
