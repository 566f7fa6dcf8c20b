/**
 * The noise schedules and q_sample against guided-diffusion's formulas,
 * written out here on their own (gaussian_diffusion.py):
 *   cosine: betas_for_alpha_bar(T, lambda t: cos((t + 0.008) / 1.008 * pi / 2) ** 2), each beta
 *           min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999)
 *   linear: np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T)
 *   alphas_cumprod = np.cumprod(1 - betas)
 *   q_sample = sqrt(alphas_cumprod[t]) * x_start + sqrt(1 - alphas_cumprod[t]) * noise
 * and against values computed outside this project (Python 3, float64).
 */
import { HostTensor } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { identityUNet } from '../test/identity-unet.js';
import { betaSchedule, createFeatureExtractor, featureKey, noiseSchedule, qSample, seededNoise } from './index.js';

function cosineByHand(steps: number): { betas: number[]; alphasCumprod: number[] } {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
  const betas: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t1 = i / steps;
    const t2 = (i + 1) / steps;
    betas.push(Math.min(1 - alphaBar(t2) / alphaBar(t1), 0.999));
  }
  const alphasCumprod: number[] = [];
  betas.reduce((product, beta) => {
    const next = product * (1 - beta);
    alphasCumprod.push(next);
    return next;
  }, 1);
  return { betas, alphasCumprod };
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('cosine schedule', () => {
  it('matches values computed by Python for T = 1000 at chosen steps, with the last beta clipped at 0.999', () => {
    const betas = betaSchedule('cosine', 1000);
    const schedule = noiseSchedule('cosine', 1000);
    // Python 3: betas_for_alpha_bar as in guided-diffusion, math.cos in float64.
    const pythonBetas: [number, number][] = [
      [0, 4.128422482196914e-5],
      [1, 4.614175273665033e-5],
      [150, 7.855375417102906e-4],
      [500, 3.155691441585007e-3],
      [998, 0.7499993929011166],
    ];
    for (const [t, beta] of pythonBetas) expect(relative(betas[t]!, beta), `beta ${t}`).toBeLessThan(1e-12);
    expect(betas[999]).toBe(0.999);
    expect(betas.filter((beta) => beta === 0.999)).toHaveLength(1);
    const pythonAlphasCumprod: [number, number][] = [
      [0, 0.999958715775178],
      [150, 0.9400000146503524],
      [500, 0.49228517244880304],
      [999, 2.4287669070348567e-9],
    ];
    for (const [t, value] of pythonAlphasCumprod) expect(relative(schedule.alphasCumprod[t]!, value), `alphas_cumprod ${t}`).toBeLessThan(1e-12);
  });

  it('matches the formula written out here at every step, for several T, with sqrt(abar) and sqrt(1 - abar)', () => {
    for (const steps of [1000, 4000, 50, 1]) {
      const expected = cosineByHand(steps);
      const schedule = noiseSchedule('cosine', steps);
      const betas = betaSchedule('cosine', steps);
      for (let t = 0; t < steps; t++) {
        expect(relative(betas[t]!, expected.betas[t]!), `T=${steps} beta ${t}`).toBeLessThan(1e-13);
        expect(relative(schedule.alphasCumprod[t]!, expected.alphasCumprod[t]!), `T=${steps} abar ${t}`).toBeLessThan(1e-12);
        expect(relative(schedule.sqrtAlphasCumprod[t]!, Math.sqrt(expected.alphasCumprod[t]!))).toBeLessThan(1e-12);
        expect(relative(schedule.sqrtOneMinusAlphasCumprod[t]!, Math.sqrt(1 - expected.alphasCumprod[t]!))).toBeLessThan(1e-12);
      }
      // Every beta is in (0, 0.999]: clipped at 0.999, never above.
      expect(Math.max(...betas)).toBeLessThanOrEqual(0.999);
      expect(Math.min(...betas)).toBeGreaterThan(0);
    }
  });

  it('keeps the linear schedule as np.linspace(1e-4 * 1000/T, 0.02 * 1000/T, T)', () => {
    const betas = betaSchedule('linear', 1000);
    expect(betas[0]).toBe(1e-4);
    expect(betas[999]).toBe(0.02);
    expect(relative(betas[500]!, 1e-4 + (500 * (0.02 - 1e-4)) / 999)).toBeLessThan(1e-14);
    expect(betaSchedule('linear', 250)[0]).toBeCloseTo(4e-4, 15);
  });
});

describe('qSample', () => {
  it('is sqrt(abar_t) * x_start + sqrt(1 - abar_t) * noise with float32 coefficients, per image timestep (cosine)', () => {
    const xStart = HostTensor.from('float32', [2, 3], [0.5, -1, 0.25, 1, 0, -0.75]);
    const noise = HostTensor.from('float32', [2, 3], [1, 0.5, -2, -0.3, 1.7, 0.1]);
    const timesteps = [150, 999];
    const out = qSample(noiseSchedule('cosine', 1000), xStart, timesteps, noise).toArray();
    const abar = [0.9400000146503524, 2.4287669070348567e-9]; // Python, as above
    for (let b = 0; b < 2; b++) {
      const a = Math.fround(Math.sqrt(abar[b]!));
      const c = Math.fround(Math.sqrt(1 - abar[b]!));
      for (let i = 0; i < 3; i++) {
        const k = b * 3 + i;
        const expected = Math.fround(Math.fround(a * xStart.data[k]!) + Math.fround(c * noise.data[k]!));
        expect(out[k], `image ${b} element ${i}`).toBe(expected);
        expect(Math.abs(out[k]! - (Math.sqrt(abar[b]!) * xStart.data[k]! + Math.sqrt(1 - abar[b]!) * noise.data[k]!))).toBeLessThan(1e-6);
      }
    }
    expect(() => qSample(noiseSchedule('cosine', 1000), xStart, [150], noise)).toThrow(/expected 2 timesteps/);
    expect(() => qSample(noiseSchedule('cosine', 1000), xStart, [150, 1000], noise)).toThrow(/timestep 1000 is outside/);
  });

  it('is what the extractor feeds a cosine-schedule U-Net (x_t read back through a U-Net that returns its input)', async () => {
    const extractor = await createFeatureExtractor({
      unet: identityUNet({ schedule: 'cosine' }),
      blocks: [1],
      timesteps: [150, 500],
      runner: { executionProviders: ['cpu'] },
    });
    const images = HostTensor.from(
      'float32',
      [2, 3, 4, 4],
      Array.from({ length: 96 }, (_, i) => Math.sin(i) * 0.9),
    );
    const features = await extractor.extract(images, { ids: [7, 8] });
    await extractor.release();
    const { alphasCumprod } = cosineByHand(1000);
    for (const t of [150, 500]) {
      const got = features.get(featureKey(t, 1))!.toArray();
      [7, 8].forEach((id, b) => {
        const noise = seededNoise(0, id, t, 48);
        for (let i = 0; i < 48; i++) {
          const expected = Math.sqrt(alphasCumprod[t]!) * images.data[b * 48 + i]! + Math.sqrt(1 - alphasCumprod[t]!) * noise[i]!;
          expect(Math.abs(got[b * 48 + i]! - expected), `t=${t} image ${b} element ${i}`).toBeLessThan(1e-6);
        }
      });
    }
  });
});
