/**
 * Extracts a zip archive (a Lambda deployment package: `Code.ZipFile` of CreateFunction /
 * UpdateFunctionCode) with node:zlib: stored and deflated entries, read through the central
 * directory. No zip package is a dependency of the engine, and this is all Lambda packages need.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { inflateRawSync } from 'node:zlib';

export class InvalidZipError extends Error {
  constructor(problem: string) {
    super(`Could not unzip the deployment package: ${problem}`);
    this.name = 'InvalidZipError';
  }
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;

/** Writes every file of the archive under `directory`; returns the paths written (relative). */
export function extractZip(archive: Buffer, directory: string): string[] {
  let eocd = -1;
  for (let i = archive.length - 22; i >= Math.max(0, archive.length - 22 - 65_535); i--) {
    if (archive.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new InvalidZipError('no end-of-central-directory record (not a zip file)');
  const count = archive.readUInt16LE(eocd + 10);
  let offset = archive.readUInt32LE(eocd + 16);
  const root = resolve(directory);
  const written: string[] = [];
  for (let n = 0; n < count; n++) {
    if (archive.readUInt32LE(offset) !== CENTRAL_FILE_HEADER) throw new InvalidZipError(`bad central directory entry ${n}`);
    const method = archive.readUInt16LE(offset + 10);
    const compressedSize = archive.readUInt32LE(offset + 20);
    const nameLength = archive.readUInt16LE(offset + 28);
    const extraLength = archive.readUInt16LE(offset + 30);
    const commentLength = archive.readUInt16LE(offset + 32);
    const localOffset = archive.readUInt32LE(offset + 42);
    const name = archive.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    const target = resolve(root, name);
    if (!target.startsWith(root + sep)) throw new InvalidZipError(`entry "${name}" points outside the package`);
    if (archive.readUInt32LE(localOffset) !== LOCAL_FILE_HEADER) throw new InvalidZipError(`bad local header of "${name}"`);
    const dataStart = localOffset + 30 + archive.readUInt16LE(localOffset + 26) + archive.readUInt16LE(localOffset + 28);
    const data = archive.subarray(dataStart, dataStart + compressedSize);
    let content: Buffer;
    if (method === 0) content = data;
    else if (method === 8) content = inflateRawSync(data);
    else throw new InvalidZipError(`entry "${name}" uses compression method ${method} (only stored and deflated are supported)`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    written.push(name);
  }
  return written.map((f) => join(f));
}
