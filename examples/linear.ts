/**
 * GD(L), the paper's linear protocol, on the embedded Fashion-MNIST default:
 * block 10 (the middle block) at t=50, adaptive average pooling to 2x2,
 * flatten, one Linear layer, cross-entropy, SGD (lr 1e-2).
 *
 * CI-sized: the first 2,000 training and 1,000 test images, 2 epochs. The
 * reference's FM-10k protocol (10,000 / 10,000 images, 28 epochs) reaches
 * 73.42 % top-1; pass `--full` for that run (about an hour on 2 cores).
 *
 *   pnpm --filter @diffssl/examples run linear [--full]
 */
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES, runProtocol } from '@diffssl/eval';
import { EMBEDDED, scratchFolder, scriptArguments, secondsSince } from './lib/common.js';

const { values } = parseArgs({ args: scriptArguments(), options: { full: { type: 'boolean', default: false } } });
const subset = values.full ? {} : { trainLimit: 2000, testLimit: 1000, epochs: 2 };
const scratch = scratchFolder('linear');
const started = performance.now();
console.log(
  values.full
    ? 'GD(L), protocol FM-10k: 10,000 training and 10,000 test images, 28 epochs'
    : 'GD(L), CI-sized: 2,000 training and 1,000 test images, 2 epochs (pass --full for the FM-10k protocol)',
);
const report = await runProtocol({
  protocol: 'linear',
  checkpoint: EMBEDDED.checkpoint,
  config: EMBEDDED.config,
  data: EMBEDDED.data,
  classNames: FASHION_MNIST_CLASSES,
  blocks: [10],
  timesteps: [50],
  ...subset,
  out: `${scratch}/run`,
  cacheDirectory: `${scratch}/features`,
  progress: 'off',
  log: (line) => console.log(line),
});
for (const epoch of report.epochs) console.log(`epoch ${epoch.epoch}: mean training loss ${epoch.loss.toFixed(4)}`);
console.log(`GD(L) block 10, t=50: top-1 ${report.top1.toFixed(2)} % on ${report.test_images} test images (${secondsSince(started)} s)`);
