import * as z from 'zod';
import type { NewestDigests } from './audit';
import { type Digest, digestPrefix, latestDigestKey, parseStoredDigest } from './digest';
import { LedgerTamperedError } from '../shared/errors';

/** How many keys the LedgerDigest workflow lists after the key latest.json names. */
export const DIGEST_LISTING_LIMIT = 50;

/**
 * What the LedgerDigest workflow read from the archive before it invokes the function: every
 * object listed after latest.json's `listafter` key, each with its body. Normally that is the
 * digest latest.json names and latest.json itself; a run that stored a digest but failed before
 * moving the pointer adds that digest. Reading in the workflow keeps the S3 client out of the
 * function's bundle.
 *
 * @example
 * { "objects": [{ "key": "digests/fleet/000000000001.json", "read": { "body": "{...}" } },
 *               { "key": "digests/fleet/latest.json", "read": { "body": "{...}" } }],
 *   "truncated": false }
 */
export const ListedDigestsSchema = z.strictObject({
  objects: z.array(z.strictObject({ key: z.string().min(1), read: z.strictObject({ body: z.string() }) })).max(1000),
  truncated: z.boolean(),
});
export type ListedDigestsInput = z.infer<typeof ListedDigestsSchema>;

/** The newest digests of one chain, from what the workflow listed and read. */
export class ListedDigests implements NewestDigests {
  constructor(private readonly listed: ListedDigestsInput) {}

  async pointer(chain: string): Promise<Digest | undefined> {
    this.complete(chain);
    const key = latestDigestKey(chain);
    const pointer = this.listed.objects.find((o) => o.key === key);
    return pointer ? parseStoredDigest(key, pointer.read.body) : undefined;
  }

  async newest(chain: string): Promise<Digest | undefined> {
    this.complete(chain);
    const latest = latestDigestKey(chain);
    const stored = this.listed.objects.filter((o) => o.key.startsWith(digestPrefix(chain)) && o.key !== latest).sort((a, b) => (a.key < b.key ? -1 : 1));
    const last = stored.at(-1);
    return last ? parseStoredDigest(last.key, last.read.body) : undefined;
  }

  /**
   * A listing that did not reach latest.json (which sorts after every digest key) means more
   * digests follow the one latest.json names than any run leaves behind: latest.json was removed
   * or rolled back.
   */
  private complete(chain: string): void {
    if (this.listed.truncated) {
      throw new LedgerTamperedError(`more than ${this.listed.objects.length} digests of chain ${chain} follow the one latest.json names: latest.json was removed or rolled back`);
    }
  }
}
