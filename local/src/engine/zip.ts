/**
 * Zip archives with node:zlib, read through the central directory: extracting a Lambda deployment
 * package (`Code.ZipFile` of CreateFunction / UpdateFunctionCode: stored and deflated entries), and
 * replacing one entry of a jar (DynamoDB Local's manifest, dynamodb-local-classes.ts). No zip package
 * is a dependency of the engine, and this is all it needs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';

export class InvalidZipError extends Error {
  constructor(problem: string) {
    super(`Could not unzip the deployment package: ${problem}`);
    this.name = 'InvalidZipError';
  }
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
/** A 32-bit field at its maximum: the real value is in a ZIP64 record, which these functions do not read. */
const ZIP64_MARK = 0xffffffff;

/** One file of the central directory, and where its own record is in the archive. */
interface CentralEntry {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly localOffset: number;
  /** The central directory record: its start and length. */
  readonly recordStart: number;
  readonly recordLength: number;
}

interface CentralDirectory {
  readonly entries: CentralEntry[];
  /** Where the central directory starts: the file data ends there. */
  readonly start: number;
}

function centralDirectory(archive: Buffer): CentralDirectory {
  let eocd = -1;
  for (let i = archive.length - 22; i >= Math.max(0, archive.length - 22 - 65_535); i--) {
    if (archive.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new InvalidZipError('no end-of-central-directory record (not a zip file)');
  const count = archive.readUInt16LE(eocd + 10);
  const start = archive.readUInt32LE(eocd + 16);
  if (start === ZIP64_MARK) throw new InvalidZipError('a ZIP64 archive (over 4 GB or 65,535 files) is not supported');
  const entries: CentralEntry[] = [];
  let offset = start;
  for (let n = 0; n < count; n++) {
    if (archive.readUInt32LE(offset) !== CENTRAL_FILE_HEADER) throw new InvalidZipError(`bad central directory entry ${n}`);
    const nameLength = archive.readUInt16LE(offset + 28);
    const recordLength = 46 + nameLength + archive.readUInt16LE(offset + 30) + archive.readUInt16LE(offset + 32);
    entries.push({
      name: archive.toString('utf8', offset + 46, offset + 46 + nameLength),
      method: archive.readUInt16LE(offset + 10),
      compressedSize: archive.readUInt32LE(offset + 20),
      localOffset: archive.readUInt32LE(offset + 42),
      recordStart: offset,
      recordLength,
    });
    offset += recordLength;
  }
  return { entries, start };
}

/** An entry's bytes as stored (compressed or not). */
function storedData(archive: Buffer, entry: CentralEntry): Buffer {
  if (archive.readUInt32LE(entry.localOffset) !== LOCAL_FILE_HEADER) throw new InvalidZipError(`bad local header of "${entry.name}"`);
  const dataStart = entry.localOffset + 30 + archive.readUInt16LE(entry.localOffset + 26) + archive.readUInt16LE(entry.localOffset + 28);
  return archive.subarray(dataStart, dataStart + entry.compressedSize);
}

/** The names of the archive's entries. */
export function zipEntryNames(archive: Buffer): string[] {
  return centralDirectory(archive).entries.map((e) => e.name);
}

/** An entry's content, uncompressed. */
export function readZipEntry(archive: Buffer, name: string): Buffer | undefined {
  const entry = centralDirectory(archive).entries.find((e) => e.name === name);
  return entry && contentOf(archive, entry);
}

function contentOf(archive: Buffer, entry: CentralEntry): Buffer {
  const data = storedData(archive, entry);
  if (entry.method === 0) return data;
  if (entry.method === 8) return inflateRawSync(data);
  throw new InvalidZipError(`entry "${entry.name}" uses compression method ${entry.method} (only stored and deflated are supported)`);
}

/** Writes every file of the archive under `directory`; returns the paths written (relative). */
export function extractZip(archive: Buffer, directory: string): string[] {
  const root = resolve(directory);
  const written: string[] = [];
  for (const entry of centralDirectory(archive).entries) {
    if (entry.name.endsWith('/')) continue;
    const target = resolve(root, entry.name);
    if (!target.startsWith(root + sep)) throw new InvalidZipError(`entry "${entry.name}" points outside the package`);
    const content = contentOf(archive, entry);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    written.push(entry.name);
  }
  return written.map((f) => join(f));
}

/**
 * The archive with one existing entry's content replaced (stored, uncompressed). Every other entry
 * keeps its bytes as they are, unpacked and packed again by nobody: the file data is copied up to the
 * central directory, the new entry follows it, then the central directory with that entry's record
 * pointing at it. The old entry's data stays in the file, unreferenced, as zip tools leave it too.
 */
export function replaceZipEntry(archive: Buffer, name: string, content: Buffer): Buffer {
  const { entries, start } = centralDirectory(archive);
  const replaced = entries.find((e) => e.name === name);
  if (!replaced) throw new InvalidZipError(`no entry "${name}" to replace`);
  const nameBytes = Buffer.from(name, 'utf8');
  const checksum = crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(LOCAL_FILE_HEADER, 0);
  archive.copy(local, 4, replaced.recordStart + 6, replaced.recordStart + 10); // version needed, flags
  local.writeUInt16LE(0, 6); // flags: no data descriptor, the sizes are known
  local.writeUInt16LE(0, 8); // method: stored
  archive.copy(local, 10, replaced.recordStart + 12, replaced.recordStart + 16); // modification time and date
  local.writeUInt32LE(checksum, 14);
  local.writeUInt32LE(content.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  local.writeUInt16LE(0, 28);
  const newLocalOffset = start;
  const records = entries.map((entry) => {
    const record = Buffer.from(archive.subarray(entry.recordStart, entry.recordStart + entry.recordLength));
    if (entry !== replaced) return record;
    record.writeUInt16LE(0, 8);
    record.writeUInt16LE(0, 10);
    record.writeUInt32LE(checksum, 16);
    record.writeUInt32LE(content.length, 20);
    record.writeUInt32LE(content.length, 24);
    record.writeUInt32LE(newLocalOffset, 42);
    return record;
  });
  const directory = Buffer.concat(records);
  const directoryStart = newLocalOffset + local.length + nameBytes.length + content.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(directoryStart, 16);
  return Buffer.concat([archive.subarray(0, start), local, nameBytes, content, directory, end]);
}
