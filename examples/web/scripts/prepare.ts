/**
 * Produces what the web page serves, from the repository's embedded assets,
 * into `public/generated/` (gitignored):
 *
 * - `classifier.onnx` + `classifier.json`: a linear GD(L) head on block 10 at
 *   t=50 of the embedded Fashion-MNIST U-Net, trained by the eval pipeline
 *   (`runProtocol`) on a subset of FM-10k and exported as one ONNX model with
 *   its sidecar; `classifier-report.json` is the run's report;
 * - `unet.safetensors` + `unet-flags.json`: the U-Net's weights and flags, for
 *   feature extraction in the tab;
 * - `fm-subset.safetensors`: a few hundred Fashion-MNIST images (uint8) with
 *   their labels, for training a head in the tab;
 * - `samples/*.png` + `samples.json`: test images to classify.
 *
 * Skips everything when `manifest.json` is there and of this version (pass
 * `--force` to rebuild). Runs in well under a minute on two cores.
 *
 * Usage: `pnpm --filter @diffssl/web-example prepare-assets [--force]`
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor, writeSafetensors } from '@diffssl/core';
import { FASHION_MNIST_CLASSES, readIdxDataset, runProtocol } from '@diffssl/eval';
import { loadCheckpoint } from '@diffssl/unet';
import sharp from 'sharp';
import { ASSET_VERSION, CLASSIFIER_SETTINGS, SUBSET_FILE, type AssetManifest, type SampleEntry } from '../src/assets.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const output = fileURLToPath(new URL('../public/generated/', import.meta.url));
// Paths relative to the repository root (the script runs there), so that the sidecar records no machine's paths.
const modelDirectory = 'assets/models/adm-fm28';
const dataDirectory = 'assets/data/fashion-mnist-10k';

/** Images for the in-tab training: the first TRAIN of the training split and TEST held-out test images after the classifier's. */
const TAB_TRAIN = 320;
const TAB_TEST = 160;

async function current(): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(output, 'manifest.json'), 'utf8')) as AssetManifest;
    return manifest.version === ASSET_VERSION;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  if (!force && (await current())) {
    console.log(`prepare-assets: ${output} is up to date (remove it or pass --force to rebuild)`);
    return;
  }
  const started = performance.now();
  process.chdir(root);
  await rm(output, { recursive: true, force: true });
  await mkdir(join(output, 'samples'), { recursive: true });

  // 1. The U-Net for the tab: torch checkpoint -> safetensors, and its flags.
  const weights = await loadCheckpoint(join(modelDirectory, 'adm-fm28.pt'));
  await writeFile(join(output, 'unet.safetensors'), writeSafetensors(weights, { source: 'assets/models/adm-fm28/adm-fm28.pt' }));
  await copyFile(join(modelDirectory, 'flags.json'), join(output, 'unet-flags.json'));

  // 2. The exported classifier, trained by the eval pipeline.
  const scratch = await mkdtemp(join(tmpdir(), 'diffssl-web-'));
  try {
    const report = await runProtocol({
      protocol: CLASSIFIER_SETTINGS.protocol,
      checkpoint: join(modelDirectory, 'adm-fm28.pt'),
      config: join(modelDirectory, 'flags.json'),
      data: dataDirectory,
      classNames: FASHION_MNIST_CLASSES,
      blocks: [CLASSIFIER_SETTINGS.block],
      timesteps: [CLASSIFIER_SETTINGS.timestep],
      trainLimit: CLASSIFIER_SETTINGS.trainImages,
      testLimit: CLASSIFIER_SETTINGS.testImages,
      epochs: CLASSIFIER_SETTINGS.epochs,
      learningRate: CLASSIFIER_SETTINGS.learningRate,
      batchSize: 32,
      seed: 0,
      out: join(scratch, 'run'),
      cacheDirectory: join(scratch, 'cache'),
      exportModel: true,
      progress: 'off',
      runner: { executionProviders: ['cpu'] },
      log: (line) => console.log(`prepare-assets: ${line}`),
    });
    await copyFile(join(scratch, 'run', 'model.onnx'), join(output, 'classifier.onnx'));
    await copyFile(join(scratch, 'run', 'model.json'), join(output, 'classifier.json'));
    await writeFile(join(output, 'classifier-report.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`prepare-assets: classifier top-1 ${report.top1.toFixed(1)}% on ${report.test_images} test images`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  // 3. Images for the tab, and the samples (test images the classifier never saw, one per class).
  const train = await readIdxDataset(dataDirectory, { split: 'train', limit: TAB_TRAIN, classes: FASHION_MNIST_CLASSES });
  const test = await readIdxDataset(dataDirectory, { split: 'test', classes: FASHION_MNIST_CLASSES });
  const pixels = 28 * 28;
  const images = new Uint8Array((TAB_TRAIN + TAB_TEST) * pixels);
  const labels = new Uint8Array(TAB_TRAIN + TAB_TEST);
  const put = async (row: number, dataset: typeof train, index: number) => {
    const example = await dataset.get(index);
    images.set(example.image.contiguous().data as Uint8Array, row * pixels);
    labels[row] = example.label;
  };
  for (let i = 0; i < TAB_TRAIN; i++) await put(i, train, i);
  const heldOutStart = CLASSIFIER_SETTINGS.testImages;
  for (let i = 0; i < TAB_TEST; i++) await put(TAB_TRAIN + i, test, heldOutStart + i);
  await writeFile(
    join(output, SUBSET_FILE),
    writeSafetensors(
      { images: HostTensor.from('uint8', [TAB_TRAIN + TAB_TEST, 28, 28], images), labels: HostTensor.from('uint8', [TAB_TRAIN + TAB_TEST], labels) },
      {
        train: String(TAB_TRAIN),
        test: String(TAB_TEST),
        source: `FM-10k: training images 0..${TAB_TRAIN - 1}, test images ${heldOutStart}..${heldOutStart + TAB_TEST - 1}`,
      },
    ),
  );

  const samples: SampleEntry[] = [];
  const sampleStart = heldOutStart + TAB_TEST;
  for (let i = sampleStart; samples.length < FASHION_MNIST_CLASSES.length && i < test.length; i++) {
    const label = test.label(i);
    if (samples.some((sample) => sample.label === label)) continue;
    const example = await test.get(i);
    const file = `samples/test-${String(i).padStart(5, '0')}.png`;
    await sharp(Buffer.from(example.image.contiguous().data as Uint8Array), { raw: { width: 28, height: 28, channels: 1 } })
      .toColourspace('b-w') // an 8-bit gray PNG (colour type 0), as Fashion-MNIST is
      .png()
      .toFile(join(output, file));
    samples.push({ file, label, className: FASHION_MNIST_CLASSES[label]!, testIndex: i });
  }
  samples.sort((a, b) => a.label - b.label);
  await writeFile(join(output, 'samples.json'), `${JSON.stringify(samples, null, 2)}\n`);

  const manifest: AssetManifest = { version: ASSET_VERSION, tabTrain: TAB_TRAIN, tabTest: TAB_TEST, samples: samples.length };
  await writeFile(join(output, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`prepare-assets: wrote ${output} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
