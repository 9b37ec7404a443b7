import { type Dirent, existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { ArchiveReader } from './archive-verify';

/**
 * A downloaded copy of the archive bucket (`aws s3 sync s3://<bucket> DIR`): the same keys as
 * paths under DIR. What an auditor verifies offline, with only the signing key's public half.
 */
export class DirectoryArchive implements ArchiveReader {
  constructor(private readonly root: string) {
    if (!existsSync(root)) throw new Error(`no archive at ${root}`);
  }

  async list(prefix: string, startAfter = ''): Promise<string[]> {
    const dir = path.join(this.root, prefix);
    if (!existsSync(dir)) return [];
    const keys = (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((d) => d.isFile())
      .map((d) => path.relative(this.root, path.join(d.parentPath, d.name)).split(path.sep).join('/'));
    return keys.filter((k) => k > startAfter).sort();
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return readFileSync(path.join(this.root, key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async hidden(): Promise<string[]> {
    return [];
  }
}
