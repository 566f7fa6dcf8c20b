/**
 * DifFeed on the embedded Fashion-MNIST default: feedback networks (arch
 * `C_B_R`: 1x1 conv, BatchNorm, ReLU) from decoder blocks 11, 13, 15 and 17
 * into encoder blocks 9, 7, 5 and 3, a second pass of the frozen U-Net with
 * the feedback added, and the attention head on the second pass's block 10
 * at t=50. SGD lr 1e-2. The U-Net runs twice on every step (its first pass
 * feeds trainable layers, so features cannot be cached), with fresh seeded
 * noise each epoch.
 *
 * CI-sized: the first 512 training and 256 test images, 2 epochs. The
 * reference's short protocol (10,000 / 10,000 images, 3 epochs) reaches
 * 80.68 % top-1; pass `--full` for FM-10k at 3 epochs (hours on 2 cores).
 *
 *   pnpm --filter @diffssl/examples run diffeed [--full]
 */
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES, runProtocol } from '@diffssl/eval';
import { EMBEDDED, scratchFolder, scriptArguments, secondsSince } from './lib/common.js';

const { values } = parseArgs({ args: scriptArguments(), options: { full: { type: 'boolean', default: false } } });
const subset = values.full ? { epochs: 3 } : { trainLimit: 512, testLimit: 256, epochs: 2 };
const scratch = scratchFolder('diffeed');
const started = performance.now();
console.log(
  values.full ? 'DifFeed, FM-10k images, 3 epochs' : 'DifFeed, CI-sized: 512 training and 256 test images, 2 epochs (pass --full for FM-10k, 3 epochs)',
);
const report = await runProtocol({
  protocol: 'diffeed',
  checkpoint: EMBEDDED.checkpoint,
  config: EMBEDDED.config,
  data: EMBEDDED.data,
  classNames: FASHION_MNIST_CLASSES,
  blocks: [10],
  timesteps: [50],
  feedbackFrom: [11, 13, 15, 17],
  feedbackArch: 'C_B_R',
  ...subset,
  out: `${scratch}/run`,
  progress: 'off',
  log: (line) => console.log(line),
});
for (const epoch of report.epochs) console.log(`epoch ${epoch.epoch}: mean training loss ${epoch.loss.toFixed(4)}`);
console.log(
  `DifFeed, feedback 11/13/15/17 -> 9/7/5/3, head on the second pass's block 10 at t=50: top-1 ${report.top1.toFixed(2)} % on ${report.test_images} test images (${secondsSince(started)} s)`,
);
