// Writes one shard of the synthetic cache: `write-shard.ts <root> <k/n>`.
// Started as a separate process by the shard test.
import { parseShard, shardRange } from '../format.js';
import { featureNames, writeFeatureCache } from '../writer.js';
import { SYNTHETIC_CLASSES, SYNTHETIC_IMAGES, SYNTHETIC_KEY, syntheticBatches, syntheticLabels } from './synthetic-features.js';

// With a third argument N, the batch stream stalls after N batches and says so
// on stdout, so a test can kill the process in the middle of a write.
const [root, shardText, stallAfter] = process.argv.slice(2);
if (!root || !shardText) throw new Error('usage: write-shard.ts <root> <k/n> [stall-after-batches]');
const shard = parseShard(shardText);
const [start, end] = shardRange(shard.index, shard.count, SYNTHETIC_IMAGES);
async function* stalling<T>(batches: T[]): AsyncGenerator<T> {
  for (const [i, batch] of batches.entries()) {
    if (stallAfter !== undefined && i === Number(stallAfter)) {
      process.stdout.write('stalled\n');
      await new Promise(() => setInterval(() => undefined, 1000));
    }
    yield batch;
  }
}

const cache = await writeFeatureCache({
  root,
  key: SYNTHETIC_KEY,
  imageCount: SYNTHETIC_IMAGES,
  labels: syntheticLabels(),
  classNames: SYNTHETIC_CLASSES,
  shard,
  batches: stalling(syntheticBatches(featureNames(SYNTHETIC_KEY), start, end, SYNTHETIC_KEY.draws, 4)),
});
process.stdout.write(`${cache.directory}\n`);
await cache.close();
