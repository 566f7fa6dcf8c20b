import { ConfigError, HostTensor, RandomGenerator, ShapeError } from '@diffssl/core';

/**
 * guided-diffusion's beta schedule in float64: `linear` is
 * `np.linspace(1e-4 * 1000/T, 0.02 * 1000/T, T)`; `cosine` is Nichol &
 * Dhariwal's `alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2` with betas
 * clipped at 0.999.
 *
 * @param schedule - 'linear' or 'cosine'
 * @param steps - number of diffusion steps T
 * @public
 */
export function betaSchedule(schedule: 'linear' | 'cosine', steps: number): Float64Array {
  if (!Number.isSafeInteger(steps) || steps <= 0) throw new ConfigError(`betaSchedule: expected a positive number of steps; found ${steps}`);
  const betas = new Float64Array(steps);
  if (schedule === 'linear') {
    const scale = 1000 / steps;
    const start = scale * 0.0001;
    const end = scale * 0.02;
    // numpy.linspace: start + i * step, with the last value exactly `end`.
    const step = steps > 1 ? (end - start) / (steps - 1) : 0;
    for (let i = 0; i < steps; i++) betas[i] = start + i * step;
    if (steps > 1) betas[steps - 1] = end;
    return betas;
  }
  if (schedule === 'cosine') {
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < steps; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / steps) / alphaBar(i / steps), 0.999);
    return betas;
  }
  throw new ConfigError(`betaSchedule: expected 'linear' or 'cosine'; found ${String(schedule)}`);
}

/** The float64 quantities `q_sample` needs. @public */
export interface NoiseSchedule {
  /** Number of diffusion steps T (timesteps run 0..T-1). */
  readonly steps: number;
  /** abar_t, the cumulative product of (1 - beta_s) for s <= t. */
  readonly alphasCumprod: Float64Array;
  /** sqrt(abar_t) */
  readonly sqrtAlphasCumprod: Float64Array;
  /** sqrt(1 - abar_t) */
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
}

/** Builds the schedule (float64, as guided-diffusion's numpy code). @public */
export function noiseSchedule(schedule: 'linear' | 'cosine', steps: number): NoiseSchedule {
  const betas = betaSchedule(schedule, steps);
  const alphasCumprod = new Float64Array(steps);
  let product = 1;
  for (let i = 0; i < steps; i++) {
    product *= 1 - betas[i]!;
    alphasCumprod[i] = product;
  }
  return {
    steps,
    alphasCumprod,
    sqrtAlphasCumprod: alphasCumprod.map(Math.sqrt),
    sqrtOneMinusAlphasCumprod: alphasCumprod.map((a) => Math.sqrt(1 - a)),
  };
}

/**
 * `q_sample` on the host, as the reference computes it: coefficients in
 * float64 cast to float32, then `a * x_start + b * noise` in float32.
 *
 * @param schedule - the noise schedule
 * @param xStart - clean images [B, C, H, W] in [-1, 1]
 * @param timesteps - one timestep per image
 * @param noise - standard normal noise shaped like xStart
 * @throws `ShapeError` for mismatched shapes; `ConfigError` for a timestep outside [0, T)
 * @public
 */
export function qSample(schedule: NoiseSchedule, xStart: HostTensor, timesteps: readonly number[], noise: HostTensor): HostTensor<'float32'> {
  if (xStart.shape.join() !== noise.shape.join())
    throw new ShapeError(`qSample: noise shape [${noise.shape.join(', ')}] differs from x_start [${xStart.shape.join(', ')}]`);
  const batch = xStart.shape[0]!;
  if (timesteps.length !== batch) throw new ShapeError(`qSample: expected ${batch} timesteps (one per image); found ${timesteps.length}`);
  const x = xStart.toArray();
  const n = noise.toArray();
  const perImage = x.length / batch;
  const out = new Float32Array(x.length);
  timesteps.forEach((t, b) => {
    checkTimestep(schedule, t);
    const a = Math.fround(schedule.sqrtAlphasCumprod[t]!);
    const c = Math.fround(schedule.sqrtOneMinusAlphasCumprod[t]!);
    for (let i = b * perImage; i < (b + 1) * perImage; i++) out[i] = Math.fround(Math.fround(a * x[i]!) + Math.fround(c * n[i]!));
  });
  return HostTensor.from('float32', xStart.shape, out);
}

/** @throws `ConfigError` when t is not an integer in [0, steps). */
export function checkTimestep(schedule: { steps: number }, t: number): void {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.steps) throw new ConfigError(`timestep ${t} is outside [0, ${schedule.steps})`);
}

/**
 * Which data split an image's noise belongs to. Each split draws from its own
 * stream, so training image i and test image i get independent noise (as the
 * reference, which draws the test split's noise from another generator than
 * the training split's). `'test'` is the stream of images being classified:
 * evaluation, the exported classifier, and extraction when no split is named.
 *
 * @public
 */
export type NoiseSplit = 'train' | 'test';

/** Stream keys of the noise generator: the purpose, then the split. */
const NOISE_STREAM = 0x4e4f_4953; // 'NOIS'
const SPLIT_STREAMS: Readonly<Record<NoiseSplit, number>> = { train: 0x5452_4149 /* 'TRAI' */, test: 0x5445_5354 /* 'TEST' */ };

/**
 * Seeded Gaussian noise for one (image, timestep) pair of one split,
 * independent of batch size and order: the `normal()` draws of core's
 * `RandomGenerator(seed, 0x4e4f4953 ('NOIS'), split, imageId, timestep)`, the
 * split being 0x54524149 ('TRAI') for `'train'` and 0x54455354 ('TEST') for
 * `'test'` (distinct key tuples give unrelated streams), in Box-Muller pairs.
 *
 * @param seed - the run's seed (uint32)
 * @param imageId - the image's stable id, e.g. its dataset index (uint32)
 * @param timestep - the diffusion timestep
 * @param size - number of values (C*H*W)
 * @param split - the split the image belongs to (default `'test'`)
 * @returns `size` standard normal float32 values
 * @throws `ConfigError` for a seed, id or timestep that is not a uint32, or another split
 * @example
 * ```ts
 * const trainNoise = seededNoise(0, 7, 150, 3 * 28 * 28, 'train');
 * const testNoise = seededNoise(0, 7, 150, 3 * 28 * 28, 'test'); // independent of trainNoise
 * ```
 * @public
 */
export function seededNoise(seed: number, imageId: number, timestep: number, size: number, split: NoiseSplit = 'test'): Float32Array {
  for (const [name, value] of [
    ['seed', seed],
    ['imageId', imageId],
    ['timestep', timestep],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw new ConfigError(`seededNoise: ${name} must be an integer in [0, 2^32); found ${value}`);
  }
  const splitStream = Object.hasOwn(SPLIT_STREAMS, split) ? SPLIT_STREAMS[split] : undefined;
  if (splitStream === undefined) throw new ConfigError(`seededNoise: split must be 'train' or 'test'; found ${JSON.stringify(split)}`);
  return new RandomGenerator(seed, NOISE_STREAM, splitStream, imageId, timestep).fillNormal(new Float32Array(size));
}
