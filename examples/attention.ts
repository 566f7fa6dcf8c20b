/**
 * The attention head on the embedded Fashion-MNIST default: block 10 at
 * t=50, features pooled to 7x7, LayerNorm, a 1x1 conv to 64 channels, 49
 * tokens and a CLS token through 2 transformer blocks (4 heads, MLP ratio
 * 4), SGD lr 5e-2 (the reference's `AttentionFusion` on one block).
 *
 * CI-sized: the first 1,000 training and 500 test images, 2 epochs. The
 * FM-10k protocol (10,000 / 10,000 images, 28 epochs) reaches 85.48 % top-1
 * with the reference; pass `--full` for it (hours on 2 cores).
 *
 *   pnpm --filter @diffssl/examples run attention [--full]
 */
import { parseArgs } from 'node:util';
import { FASHION_MNIST_CLASSES, runProtocol } from '@diffssl/eval';
import { EMBEDDED, scratchFolder, scriptArguments, secondsSince } from './lib/common.js';

const { values } = parseArgs({ args: scriptArguments(), options: { full: { type: 'boolean', default: false } } });
const subset = values.full ? {} : { trainLimit: 1000, testLimit: 500, epochs: 2 };
const scratch = scratchFolder('attention');
const started = performance.now();
console.log(
  values.full
    ? 'attention head, protocol FM-10k: 10,000 training and 10,000 test images, 28 epochs'
    : 'attention head, CI-sized: 1,000 training and 500 test images, 2 epochs (pass --full for the FM-10k protocol)',
);
const report = await runProtocol({
  protocol: 'attention',
  checkpoint: EMBEDDED.checkpoint,
  config: EMBEDDED.config,
  data: EMBEDDED.data,
  classNames: FASHION_MNIST_CLASSES,
  blocks: [10],
  timesteps: [50],
  // The defaults, spelled out: pre-pool 7 and the reference's head.
  prePoolSize: 7,
  fusionArc: 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token',
  ...subset,
  out: `${scratch}/run`,
  cacheDirectory: `${scratch}/features`,
  progress: 'off',
  log: (line) => console.log(line),
});
for (const epoch of report.epochs) console.log(`epoch ${epoch.epoch}: mean training loss ${epoch.loss.toFixed(4)}`);
console.log(`attention head, block 10, t=50: top-1 ${report.top1.toFixed(2)} % on ${report.test_images} test images (${secondsSince(started)} s)`);
