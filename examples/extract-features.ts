/**
 * Feature extraction from any guided-diffusion (ADM) checkpoint.
 *
 * Default: the embedded Fashion-MNIST U-Net on the first 64 test images of
 * the embedded data, block 10 at t=50.
 *
 *   pnpm --filter @diffssl/examples run extract-features [options]
 *
 * Options:
 *   --checkpoint FILE     U-Net weights: .pt/.pth (torch zip) or .safetensors
 *   --config NAME|FILE    a preset (256x256_diffusion_uncond, ...) or a JSON file of guided-diffusion flags
 *   --blocks 8,10         block numbers, 1..N (N = 19 for the embedded model, 37 for the 256x256 ImageNet model)
 *   --timesteps 50,150    timesteps, 0..diffusion_steps-1
 *   --paper               the paper's blocks and timesteps: blocks 19,24,30 x t 90,150,300 (37-block U-Nets)
 *   --data DIR            images: IDX files, or train/ and val/ class folders (default: the embedded Fashion-MNIST)
 *   --split test|train    which split (default test)
 *   --limit N             the first N images (default 64)
 *   --pool S              average-pool each block to at most S x S inside the graph (default: none)
 *   --dtype float16|int8  half-precision convolutions (guided-diffusion's use_fp16), or 8-bit integer
 *                         convolutions (dynamic quantization, faster on CPUs at 256x256); default float32
 *   --batch-size N        images per session run (default 16)
 *   --providers cuda,cpu  execution providers in order of preference (default cpu)
 *   --cache-directory DIR keep the compiled ONNX model there: the next start neither reads the checkpoint nor rebuilds
 *   --class-label K       the class of every image, for class-conditional checkpoints (class_cond)
 *   --out FILE            write the features to a .safetensors file (keys t150/block24, ...)
 *
 * Images are brought to the model's size as the reference does for
 * evaluation (center crop after a BICUBIC resize of the smaller side), gray
 * replicated to RGB, pixels scaled to [-1, 1]; each image is noised at each
 * timestep with seeded noise that depends only on the image.
 *
 * ## The 256x256 ImageNet model with the paper's settings
 *
 * The DiffSSL paper reads guided-diffusion's unconditional 256x256 ImageNet
 * model, `256x256_diffusion_uncond.pt` (about 2.2 GB, 554M float32
 * parameters, 37 blocks: 1-18 encoder, 19 middle, 20-37 decoder), published
 * with guided-diffusion (https://github.com/openai/guided-diffusion). Download
 * it yourself; nothing here fetches it. Its flags are the preset
 * `256x256_diffusion_uncond`, so no flags file is needed:
 *
 *   pnpm --filter @diffssl/examples run extract-features \
 *     --checkpoint /models/256x256_diffusion_uncond.pt --config 256x256_diffusion_uncond \
 *     --blocks 24 --timesteps 150 --data /data/imagenet --split test --limit 256 \
 *     --dtype float16 --providers cuda,cpu --cache-directory ~/.cache/diffssl/models \
 *     --out block24-t150.safetensors
 *
 * - Block 24 at t=150 is the paper's setting of the linear (GD(L)) and
 *   attention heads: [N, 1024, 16, 16] per image.
 * - `--paper` extracts DifFormer's inputs: blocks 19, 24 and 30 at t = 90,
 *   150 and 300 (nine features per image).
 * - DifFeed (feedback from decoder blocks 21, 24, 27, 30, 33, 36 into encoder
 *   blocks 17, 14, 11, 8, 5, 2, head on block 24 at t=150) trains through the
 *   U-Net and so is not an extraction: run it with `runProtocol` (see
 *   docs/examples.md, "The 256x256 ImageNet model").
 * - `--dtype float16` halves the weights in memory and runs the convolutions
 *   in half precision as guided-diffusion's `use_fp16` does (the preset sets
 *   it); useful on GPUs, slower than float32 on most CPUs.
 * - `--cache-directory`: the first start reads the 2.2 GB checkpoint and
 *   builds the ONNX model (minutes, several GB of memory); later starts load
 *   the compiled model from the cache directory. Without a cache directory a
 *   model over 1.5 GB goes to a temporary file with external data, removed at
 *   exit.
 * - On CPU expect seconds per image at 256x256; `--providers cuda,cpu` needs
 *   onnxruntime-node's CUDA provider (install with ONNXRUNTIME_NODE_INSTALL=cuda12).
 * - Class-conditional checkpoints (`256x256_diffusion`) also need `--class-label`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writeSafetensors, type ExecutionProvider, type HostTensor } from '@diffssl/core';
import { loadBatch, openDataset, readFlags, type ImageTransform } from '@diffssl/eval';
import { ADM_PRESETS, admConfig, createFeatureExtractor, unetLayout } from '@diffssl/unet';
import { EMBEDDED, scriptArguments, secondsSince } from './lib/common.js';

const { values } = parseArgs({
  args: scriptArguments(),
  options: {
    checkpoint: { type: 'string', default: EMBEDDED.checkpoint },
    config: { type: 'string', default: EMBEDDED.config },
    blocks: { type: 'string', default: '10' },
    timesteps: { type: 'string', default: '50' },
    paper: { type: 'boolean', default: false },
    data: { type: 'string', default: EMBEDDED.data },
    split: { type: 'string', default: 'test' },
    limit: { type: 'string', default: '64' },
    pool: { type: 'string' },
    dtype: { type: 'string', default: 'float32' },
    'batch-size': { type: 'string', default: '16' },
    providers: { type: 'string', default: 'cpu' },
    'cache-directory': { type: 'string' },
    'class-label': { type: 'string' },
    out: { type: 'string' },
  },
});

/** Stops with a one-line message (bad options). */
function fail(message: string): never {
  console.error(`extract-features: ${message}`);
  process.exit(2);
}

/** A comma-separated list of non-negative integers. */
function integers(text: string, option: string): number[] {
  const list = text.split(',').map((part) => Number(part.trim()));
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < 0)) fail(`--${option}: expected integers separated by commas; found '${text}'`);
  return list;
}

if (!existsSync(values.checkpoint)) {
  fail(
    `--checkpoint: ${values.checkpoint} does not exist${values.config in ADM_PRESETS ? ` (download ${values.config}.pt from https://github.com/openai/guided-diffusion; this script fetches nothing)` : ''}`,
  );
}
if (values.dtype !== 'float32' && values.dtype !== 'float16' && values.dtype !== 'int8')
  fail(`--dtype: expected float32, float16 or int8; found '${values.dtype}'`);
if (values.split !== 'train' && values.split !== 'test') fail(`--split: expected train or test; found '${values.split}'`);
const config = await readFlags(values.config);
const { imageSize } = admConfig(config);
// The U-Net's numbered blocks (encoder, middle, decoder) with their output shapes, from the flags alone.
const layout = unetLayout(admConfig(config));
const blockCount = layout.blocks.length;
const blocks = values.paper ? [19, 24, 30] : integers(values.blocks, 'blocks');
const timesteps = values.paper ? [90, 150, 300] : integers(values.timesteps, 'timesteps');
for (const block of blocks) {
  const spec = layout.blocks[block - 1];
  if (!spec) fail(`--blocks: block ${block} is outside 1..${blockCount}`);
  console.log(`block ${block}: ${spec.part}, ${spec.channels} channels at ${spec.resolution}x${spec.resolution}`);
}
const dataset = await openDataset(values.data, { split: values.split, limit: Number(values.limit) });
const shape = dataset.imageShape;
const transform: ImageTransform = shape && shape[1] === imageSize && shape[2] === imageSize ? { kind: 'none' } : { kind: 'center-crop', size: imageSize };
const { images } = await loadBatch(
  dataset,
  Array.from({ length: dataset.length }, (_, i) => i),
  { transform },
);
console.log(
  `${dataset.length} ${values.split} images of ${values.data}, as [${images.shape.join(', ')}]${transform.kind === 'none' ? '' : ` (center-cropped to ${imageSize}x${imageSize})`}`,
);
console.log(
  `U-Net ${values.checkpoint} (${typeof config === 'string' ? `preset ${config}` : values.config}, ${imageSize}x${imageSize}, ${blockCount} blocks): blocks ${blocks.join(', ')} at t = ${timesteps.join(', ')}, ${values.dtype}`,
);

const started = performance.now();
const extractor = await createFeatureExtractor({
  checkpoint: values.checkpoint,
  config,
  blocks,
  timesteps,
  dtype: values.dtype,
  batchSize: Number(values['batch-size']),
  ...(values.pool ? { pool: Number(values.pool) } : {}),
  ...(values['class-label'] ? { classLabel: Number(values['class-label']) } : {}),
  ...(values['cache-directory'] ? { cacheDirectory: values['cache-directory'] } : {}),
  runner: { executionProviders: values.providers.split(',') as ExecutionProvider[] },
  // The slow steps at 256x256 (reading, building, compiling: tens of seconds each), as they start.
  onSetup: (event) => {
    if (event.stage === 'read') {
      if (event.totalBytes > 0 && event.bytesRead === event.totalBytes)
        console.log(`  read ${(event.totalBytes / 1e6).toFixed(0)} MB of weights (${secondsSince(started)} s)`);
    } else if (event.stage !== 'ready') {
      console.log(`  ${event.stage}${'path' in event ? ` ${event.path}` : ''} (${secondsSince(started)} s)`);
    }
  },
});
console.log(`model ready in ${secondsSince(started)} s on ${extractor.provider}${extractor.fromCache ? ' (compiled model from the cache directory)' : ''}`);
const extractStarted = performance.now();
const features = await extractor.extract(images);
const seconds = (performance.now() - extractStarted) / 1000;
await extractor.release();

/** Mean and standard deviation of a tensor's values. */
function moments(tensor: HostTensor<'float32'>): { mean: number; std: number } {
  let sum = 0;
  let squares = 0;
  for (const value of tensor.data) {
    sum += value;
    squares += value * value;
  }
  const mean = sum / tensor.size;
  return { mean, std: Math.sqrt(Math.max(0, squares / tensor.size - mean * mean)) };
}
for (const [key, tensor] of features) {
  const { mean, std } = moments(tensor);
  console.log(`${key}: [${tensor.shape.join(', ')}], mean ${mean.toFixed(4)}, std ${std.toFixed(4)}`);
}
console.log(
  `extracted ${dataset.length} images x ${timesteps.length} timesteps in ${seconds.toFixed(1)} s (${((dataset.length * timesteps.length) / seconds).toFixed(1)} image-timesteps/s)`,
);
if (values.out) {
  writeFileSync(values.out, writeSafetensors(features, { checkpoint: values.checkpoint, blocks: blocks.join(','), timesteps: timesteps.join(',') }));
  console.log(`features written to ${values.out}`);
}
