/**
 * Class-data sharing for DynamoDB Local's JVM: the classes it loads, parsed and verified once, kept in
 * an archive that later JVMs map instead of loading them again from the jars (Java's AppCDS, with a
 * static archive). DynamoDB Local loads about 3,500 classes before it answers, and more for its first
 * requests; with the archive it answers after about a third less CPU (`npx projen bench:dynamodb`).
 *
 * The first DynamoDB Local without an archive records the classes it loads (`-XX:DumpLoadedClassList`,
 * which costs it nothing measurable). When it is stopped, a Java process in the background writes the
 * archive from that list (3–4 s of CPU, once, after the session, so no run waits for it); later
 * starts map it. The archive never fails a start (dynamodb-local.ts tries a failed start once more
 * without it). One start at a time records (a lock file); the others run as without an archive.
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
import { createHash, randomUUID } from 'node:crypto';
import {
  existsSync, linkSync, lstatSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { projectCacheDirectory, removeEntries, usableDirectory } from './cache-directory';
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
   * Once the JVM answers. An archive it was given and did not map (Java rejected it: another JDK
   * behind the same `java`, an option it must share) makes the cache give up (`unavailable`), so that
   * no start records and writes it again and again; a recording JVM's own Java is noted, for the
   * writer. Read from /proc: elsewhere nothing is checked.
   */
  answered(pid: number | undefined): void;
  /**
   * Once the JVM has exited, and how (`JvmEnd`). After a session, a recording JVM's list goes to the
   * background writer. One that never answered is blamed on the archive when it crashed (its report
   * is in the cache) or ended with an error of its own: the archive it mapped is removed (to be
   * recorded again), or, when it was recording, the copy of the jar is given up for good
   * (`unavailable`). An abort, a timeout, or a JVM a signal ended (Ctrl-C, a kill: whatever it wrote
   * on its way out) holds nothing against the cache. True when the archive was blamed: the start is
   * then tried without it. Once only: later calls do nothing.
   */
  settle(pid: number | undefined, end: JvmEnd): boolean;
}

/**
 * How a JVM ended: stopped after a session; or, before it answered, with an error of its own (not
 * for a port already taken), on a termination signal, or otherwise (a crash, a timeout, an abort).
 */
export type JvmEnd = 'after-session' | 'own-error' | 'signal' | 'no-answer';

const ARCHIVE = 'classes.jsa';
/** Written when Java crashed on the copy of the jar, or could not write an archive: later starts do not record again. */
const UNAVAILABLE = 'unavailable';
const LOCK = 'writing.lock';
const WRITER_LOG = 'writer.log';
/** A key's directory no start has used for this long is removed when a new key appears. */
const UNUSED_KEY_DAYS = 14;
/** How long the writer's Java may take (it takes 3–4 s on 2 cores); a hung one would hold the lock for good. */
const WRITER_TIMEOUT_MS = 300_000;
/** JVM options by which the user chose class-data sharing themselves: theirs is kept. */
const OWN_SHARING = /(^|\s)-(Xshare|XX:SharedArchiveFile|XX:SharedArchiveConfigFile|XX:-UseSharedSpaces|XX:ArchiveClassesAtExit|XX:\+AutoCreateSharedArchive|XX:DumpLoadedClassList|XX:SharedClassListFile)/;
/** What of the JVM options the archive must be written with to be mapped: the collector, the heap's size and compressed pointers. */
const ARCHIVE_COMPATIBILITY = /^-(XX:[+-]Use\w*GC|XX:[+-]UseCompressed(Class)?(Oops|Pointers)|Xmx|XX:MaxHeapSize=)/;
/** A class path entry the copy can name: a relative path of a jar, no `.` or `..` in it. */
const JAR_ENTRY = /^[\w-][\w.-]*(\/[\w-][\w.-]*)*\.jar$/;

/**
 * Writes the archive from the class list, detached from the engine's process and at the lowest
 * priority (argv: java, the archive, the file it is written to first, the list, the lock, the marker
 * of failure, Java's log, the timeout, then Java's arguments), moves it into place only when Java
 * succeeded, and releases the lock if it still holds it. A failed write keeps the list and Java's log.
 */
const WRITER_SOURCE = `const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
// The lowest priority, Java included: a run or test started meanwhile keeps nearly all of the CPU.
// Detached, the writer is in a scheduling group of its own (Linux autogroups), where its nice value
// counts only within the group: the group's own is lowered too.
try { require('node:os').setPriority(19); } catch {}
try { fs.writeFileSync('/proc/self/autogroup', '19'); } catch {}
const [java, archive, written, list, lock, unavailable, log, timeout, ...args] = process.argv.slice(1);
let failed = false;
try {
  const out = fs.openSync(log, 'w');
  const result = spawnSync(java, args, { stdio: ['ignore', out, out], timeout: Number(timeout), killSignal: 'SIGKILL' });
  fs.closeSync(out);
  if (result.status === 0 && fs.existsSync(written)) fs.renameSync(written, archive);
  else if (result.status !== null) {
    failed = true;
    fs.writeFileSync(unavailable, 'Java wrote no class archive (exit ' + result.status + '): see the log and the list beside this file.\\n');
  }
} finally {
  fs.rmSync(written, { force: true });
  if (!failed) fs.rmSync(list, { force: true });
  try { if (fs.readFileSync(lock, 'utf8') === String(process.pid)) fs.rmSync(lock); } catch {}
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
  const ownSharing = [...jvmOptions, environment.JAVA_TOOL_OPTIONS ?? '', environment.JDK_JAVA_OPTIONS ?? ''].some((o) => OWN_SHARING.test(o));
  if (named === 'off' || process.platform === 'win32' || ownSharing) return undefined;
  try {
    const java = javaOnPath(environment.PATH);
    if (!java) return undefined;
    const base = named || projectCacheDirectory('dynamodb-local');
    const keyDir = base && join(base, keyOf(java, packageJar, jvmOptions));
    const isNew = keyDir !== undefined && !existsSync(keyDir);
    const usable = usableDirectory(keyDir);
    // As /proc shows the files a JVM maps: its links resolved.
    const dir = usable && realpathSync(usable);
    // `:` separates a class path's entries and SharedArchiveFile's two archives.
    if (!dir || dir.includes(delimiter)) return undefined;
    markUsed(dir);
    if (isNew) removeUnusedKeys(dirname(dir));
    if (existsSync(join(dir, UNAVAILABLE))) return undefined;
    removeLeftovers(dir);
    const jar = archivableJar(packageJar, dir);
    if (!jar) return undefined;
    const cache: KeyCache = { dir, jar, java, jvmOptions };
    if (existsSync(join(dir, ARCHIVE))) return mapping(cache);
    const lock = join(dir, LOCK);
    return takeLock(lock) ? recording(cache, lock) : undefined;
  } catch {
    return undefined; // a cache that cannot be written or read: DynamoDB Local runs as without it
  }
}

/** A key's directory, ready: the copy of the jar made. */
interface KeyCache {
  readonly dir: string;
  readonly jar: string;
  readonly java: string;
  readonly jvmOptions: readonly string[];
}

/** A fatal error of the JVM is reported in the cache, not in the package's directory (its working directory). */
const errorFileOption = (dir: string) => `-XX:ErrorFile=${join(dir, 'hs_err_pid%p.log')}`;

/**
 * Whether a JVM that never answered is to be blamed on the archive: it failed on its own, or crashed
 * (its report is in the cache); never one a termination signal ended.
 */
const blamed = (dir: string, pid: number | undefined, end: JvmEnd) =>
  end === 'own-error' || (end === 'no-answer' && existsSync(join(dir, `hs_err_pid${pid}.log`)));

/** Gives the key up: no later start uses or records an archive for it. */
function giveUp(dir: string, why: string) {
  try {
    writeFileSync(join(dir, UNAVAILABLE), `${why}\n`);
  } catch {
    // the cache's files are the cache's concern
  }
}

/** A JVM that maps the archive in place. Java cannot tell an archive cut short before it maps it, and crashes. */
function mapping({ dir, jar }: KeyCache): ClassArchiveUse {
  const archive = join(dir, ARCHIVE);
  let settled = false;
  return {
    jvmOptions: [`-XX:SharedArchiveFile=${archive}`, errorFileOption(dir)],
    jar,
    answered: (pid) => {
      if (mappedFiles(pid)?.includes(archive) === false) giveUp(dir, `DynamoDB Local (pid ${pid}) did not map ${archive}.`);
    },
    settle: (pid, end) => {
      if (settled || !blamed(dir, pid, end)) return false;
      settled = true;
      forget(archive);
      return true;
    },
  };
}

/** A JVM that records the classes it loads, holding the lock; its list goes to the writer when it stops after a session. */
function recording({ dir, jar, java, jvmOptions }: KeyCache, lock: string): ClassArchiveUse {
  // Holding the lock, this start is the only recorder and no writer runs: any other list was left
  // by a recorder killed with its process.
  removeEntries(dir, (name) => /^classes\..+\.lst$/.test(name));
  const list = join(dir, `classes.${randomUUID()}.lst`);
  let recordingJava = java;
  let settled = false;
  return {
    jvmOptions: [`-XX:DumpLoadedClassList=${list}`, errorFileOption(dir)],
    jar,
    answered: (pid) => {
      recordingJava = javaOf(pid) ?? java;
    },
    settle: (pid, end) => {
      if (settled) return false;
      settled = true;
      try {
        if (end === 'after-session' && existsSync(list)) {
          writeArchiveInBackground({ java: recordingJava, jar, jvmOptions, dir, list, lock });
          return false;
        }
        const isBlamed = blamed(dir, pid, end);
        if (isBlamed) giveUp(dir, `DynamoDB Local (pid ${pid}) failed on the copy of the jar before it answered.`);
        forget(list);
        releaseLock(lock);
        return isBlamed;
      } catch {
        return false; // the cache's files are the cache's concern: the stop has succeeded
      }
    },
  };
}

/** Removes a file of the cache; one that cannot be removed stays (the cache is not the caller's concern). */
function forget(file: string) {
  try {
    rmSync(file, { force: true });
  } catch {
    // left as it is
  }
}

/** Files a process has mapped into its memory, from /proc (undefined where it cannot be read). */
function mappedFiles(pid: number | undefined): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return undefined;
  }
}

/** The executable a process runs, from /proc (a `java` on the PATH may be a shim choosing a JDK). */
function javaOf(pid: number | undefined): string | undefined {
  try {
    return realpathSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** When a key's directory was last used: its modification time, set at every start that uses it. */
function markUsed(dir: string) {
  const now = new Date();
  utimesSync(dir, now, now);
}

/**
 * Removes the directories of keys no start has used for UNUSED_KEY_DAYS: another Java, another
 * DynamoDB Local, other JVM options made them (about 45 MB each). Looked for when a new key appears.
 */
function removeUnusedKeys(base: string) {
  const before = Date.now() - UNUSED_KEY_DAYS * 86_400_000;
  // Only directories of keys (named as keyOf names them, holding the copy of the jar): the base may
  // be a directory the user named, with other things in it.
  removeEntries(base, (name, dir) => {
    if (!/^[0-9a-f]{16}$/.test(name)) return false;
    const stat = lstatSync(dir);
    const ours = stat.isDirectory() && existsSync(join(dir, 'DynamoDBLocal.jar'));
    return ours && stat.mtimeMs < before && (!existsSync(join(dir, LOCK)) || isStale(join(dir, LOCK)));
  });
}

/** Files a killed writer or process left half-written: older than an hour, nobody is writing them. */
function removeLeftovers(dir: string) {
  const before = Date.now() - 3_600_000;
  removeEntries(dir, (name, path) => /\.(tmp|stale)$/.test(name) && statSync(path).mtimeMs < before);
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
 * hands it the lock. The archive is written for the class path the JVMs run with (the copy's path),
 * with the options an archive must share with the JVMs that map it, and no other of the user's.
 */
function writeArchiveInBackground({ java, jar, jvmOptions, dir, list, lock }: Recorded) {
  const archive = join(dir, ARCHIVE);
  const written = `${archive}.${randomUUID()}.tmp`;
  const compatible = jvmOptions.filter((o) => ARCHIVE_COMPATIBILITY.test(o));
  // The dump runs little Java code of its own: the interpreter alone (-Xint) spares the compilers' work, about a fifth of its CPU.
  const javaArgs = [
    '-Xshare:dump', '-Xint', `-XX:SharedClassListFile=${list}`, `-XX:SharedArchiveFile=${written}`,
    errorFileOption(dir), ...compatible, '-cp', jar,
  ];
  // None of the user's options reaches its Java through the environment either (an agent, a debugger that waits).
  const environment = { ...process.env };
  delete environment.JAVA_TOOL_OPTIONS;
  delete environment.JDK_JAVA_OPTIONS;
  delete environment._JAVA_OPTIONS;
  const writer = spawn(process.execPath, [
    '-e', WRITER_SOURCE, java, archive, written, list, lock, join(dir, UNAVAILABLE), join(dir, WRITER_LOG), String(WRITER_TIMEOUT_MS), ...javaArgs,
  ], { detached: true, stdio: 'ignore', cwd: dir, env: environment });
  writer.on('error', () => forget(lock));
  if (writer.pid) replaceAtomically(lock, String(writer.pid));
  writer.unref();
}

/** Writes a file under another name, then renames it: a reader sees the old content or the new, never an empty file. */
function replaceAtomically(file: string, content: string) {
  const temporary = `${file}.${randomUUID()}.tmp`;
  writeFileSync(temporary, content);
  renameSync(temporary, file);
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
 * for a signed jar (its manifest cannot change) and for a class path the copy cannot name as it is
 * (an entry outside the jar's directory, one that is not there).
 */
function archivableJar(packageJar: string, dir: string): string | undefined {
  const copy = join(dir, 'DynamoDBLocal.jar');
  if (existsSync(copy)) return copy;
  const original = readFileSync(packageJar);
  const manifest = readZipEntry(original, 'META-INF/MANIFEST.MF')?.toString('utf8');
  if (!manifest || zipEntryNames(original).some((name) => /^META-INF\/[^/]+\.SF$/.test(name))) return undefined;
  const { text, jars } = withJarsOnlyOnClassPath(manifest);
  if (jars.some((jar) => !JAR_ENTRY.test(jar))) return undefined;
  const packageDir = dirname(realpathSync(packageJar));
  for (const top of new Set(jars.map((jar) => jar.split('/')[0]))) {
    try {
      symlinkSync(join(packageDir, top), join(dir, top));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made by another start meanwhile
    }
  }
  if (jars.some((jar) => !existsSync(join(dir, jar)))) return undefined;
  // Linked into place, not renamed: a copy another start made meanwhile stays as it is (Java checks
  // the jar's modification time against the archive's).
  const temporary = `${copy}.${randomUUID()}.tmp`;
  writeFileSync(temporary, replaceZipEntry(original, 'META-INF/MANIFEST.MF', Buffer.from(text, 'utf8')));
  try {
    linkSync(temporary, copy);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(temporary, { force: true });
  }
  return copy;
}

/**
 * The manifest with a `Class-Path` of its `.jar` entries only, and those entries. A manifest's lines
 * are at most 72 bytes; longer values continue on lines that start with a space. Attribute names are
 * not case-sensitive.
 */
export function withJarsOnlyOnClassPath(manifest: string): { text: string; jars: string[] } {
  const attributes = manifest.replace(/\r\n/g, '\n').replace(/\n /g, '').split('\n');
  let jars: string[] = [];
  const lines = attributes.map((line) => {
    if (!/^class-path:/i.test(line)) return line;
    jars = line.slice('Class-Path:'.length).trim().split(/\s+/).filter((entry) => entry.endsWith('.jar'));
    return `Class-Path: ${jars.join(' ')}`;
  });
  return { text: lines.map(wrapManifestLine).join('\r\n'), jars };
}

/** Cuts a manifest line into lines of at most 72 bytes, between characters (never inside one's UTF-8 bytes). */
function wrapManifestLine(line: string): string {
  const lines: string[] = [];
  let current = '';
  for (const character of line) {
    if (Buffer.byteLength(current + character) > 72) {
      lines.push(current);
      current = ' ';
    }
    current += character;
  }
  lines.push(current);
  return lines.join('\r\n');
}

/**
 * Takes the lock file, or one left by a process that no longer runs; false while another start (or
 * the writer) holds it. The lock is linked into place with its content, so it is never seen empty.
 */
function takeLock(lock: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    const temporary = `${lock}.${randomUUID()}.tmp`;
    writeFileSync(temporary, String(process.pid));
    try {
      linkSync(temporary, lock);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(temporary, { force: true });
    }
    if (!breakStaleLock(lock)) return false;
  }
  return false;
}

/**
 * Moves a stale lock away; false when the lock is not stale. Checked by its inode: a start that
 * found the same lock stale may have broken it and taken a fresh one meanwhile, which is put back.
 */
function breakStaleLock(lock: string): boolean {
  let inode: number;
  try {
    inode = statSync(lock).ino;
  } catch {
    return true; // gone meanwhile: take it
  }
  if (!isStale(lock)) return false;
  const moved = `${lock}.${randomUUID()}.stale`;
  try {
    renameSync(lock, moved);
  } catch {
    return true; // moved by the other start: try to take it
  }
  if (statSync(moved).ino !== inode) {
    try {
      linkSync(moved, lock);
    } catch {
      // a third start took it meanwhile: that one holds it
    }
    rmSync(moved, { force: true });
    return false;
  }
  rmSync(moved, { force: true });
  return true;
}

/** Removes the lock if this process still holds it. */
function releaseLock(lock: string) {
  try {
    if (readFileSync(lock, 'utf8') === String(process.pid)) rmSync(lock, { force: true });
  } catch {
    // gone already
  }
}

/** A lock whose process no longer runs, or (without a readable pid) untouched for a minute; true when it is gone. */
function isStale(lock: string): boolean {
  try {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (Number.isInteger(holder) && holder > 0) return !isRunning(holder);
    return statSync(lock).mtimeMs < Date.now() - 60_000;
  } catch {
    return true; // gone meanwhile: take it
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
