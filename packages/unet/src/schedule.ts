import { ConfigError, fmix32, HostTensor, ShapeError, xoshiro128 } from '@diffssl/core';

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
  if (xStart.shape.join() !== noise.shape.join()) throw new ShapeError(`qSample: noise shape [${noise.shape.join(', ')}] differs from x_start [${xStart.shape.join(', ')}]`);
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
 * Seeded Gaussian noise for one (image, timestep) pair, independent of batch
 * size and order: a xoshiro128** generator whose four state words are
 * `fmix32(seed)`, `fmix32(imageId ^ 0x9e3779b9)`, `fmix32(timestep ^ 0x7f4a7c15)`
 * and `fmix32` of their xor (fmix32 is a bijection, so distinct triples give
 * distinct streams), 16 outputs discarded, then Box-Muller on 53-bit uniforms.
 *
 * @param seed - the run's seed (uint32)
 * @param imageId - the image's stable id, e.g. its dataset index (uint32)
 * @param timestep - the diffusion timestep
 * @param size - number of values (C*H*W)
 * @returns `size` standard normal float32 values
 * @public
 */
export function seededNoise(seed: number, imageId: number, timestep: number, size: number): Float32Array {
  for (const [name, value] of [['seed', seed], ['imageId', imageId], ['timestep', timestep]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new ConfigError(`seededNoise: ${name} must be an integer in [0, 2^32); found ${value}`);
  }
  const s0 = fmix32(seed);
  const s1 = fmix32(imageId ^ 0x9e3779b9);
  const s2 = fmix32(timestep ^ 0x7f4a7c15);
  const next = xoshiro128([s0, s1, s2, fmix32(s0 ^ s1 ^ s2 ^ 0x2545f491)], 16);
  const uniform = () => ((next() >>> 5) * 67108864 + (next() >>> 6) + 0.5) / 9007199254740992;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < size) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

