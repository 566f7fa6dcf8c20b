/**
 * DifFormer on the embedded Fashion-MNIST default: attention fusion of
 * blocks 8, 9 and 10 at t=50 and t=150 (the reference runs' setting), each
 * block pooled to 7x7, normalized and projected to 64-wide tokens; per
 * timestep one attention head over the tokens of all blocks; the timesteps'
 * CLS outputs concatenated into a Linear. SGD lr 5e-2.
 *
 * CI-sized: the first 1,000 training and 500 test images, 2 epochs. The
 * FM-10k protocol (10,000 / 10,000 images, 28 epochs) reaches 86.13 % top-1
 * with the reference; pass `--full` for it (hours on 2 cores).
 *
 * `difformer-api.ts` trains the same head with the lower-level API.
 *
 *   pnpm --filter @diffssl/examples run difformer [--full]
 */
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES, runProtocol } from '@diffssl/eval';
import { EMBEDDED, scratchFolder, scriptArguments, secondsSince } from './lib/common.js';

const { values } = parseArgs({ args: scriptArguments(), options: { full: { type: 'boolean', default: false } } });
const subset = values.full ? {} : { trainLimit: 1000, testLimit: 500, epochs: 2 };
const scratch = scratchFolder('difformer');
const started = performance.now();
console.log(
  values.full
    ? 'DifFormer, protocol FM-10k: 10,000 training and 10,000 test images, 28 epochs'
    : 'DifFormer, CI-sized: 1,000 training and 500 test images, 2 epochs (pass --full for the FM-10k protocol)',
);
const report = await runProtocol({
  protocol: 'difformer',
  checkpoint: EMBEDDED.checkpoint,
  config: EMBEDDED.config,
  data: EMBEDDED.data,
  classNames: FASHION_MNIST_CLASSES,
  blocks: [8, 9, 10],
  timesteps: [50, 150],
  ...subset,
  out: `${scratch}/run`,
  cacheDirectory: `${scratch}/features`,
  progress: 'off',
  log: (line) => console.log(line),
});
for (const epoch of report.epochs) console.log(`epoch ${epoch.epoch}: mean training loss ${epoch.loss.toFixed(4)}`);
console.log(`DifFormer, blocks 8/9/10 x t 50/150: top-1 ${report.top1.toFixed(2)} % on ${report.test_images} test images (${secondsSince(started)} s)`);
