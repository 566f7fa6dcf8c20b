// A browser application's use of @diffssl/unet, type-checked by browser-types.test.ts
// with the `browser` export condition. Each `@ts-expect-error` marks a Node-only name
// that the browser entry must not offer (the test checks that each one is needed).
import { type AdmUNet, createFeatureExtractor, featureKey, noiseSchedule, type DiffusionUNet, type FeatureExtractor } from '@diffssl/unet';
// @ts-expect-error readTorchCheckpoint reads files: Node only
import { readTorchCheckpoint } from '@diffssl/unet';
// @ts-expect-error loadCheckpoint reads files: Node only
import { loadCheckpoint } from '@diffssl/unet';
// @ts-expect-error restrictedUnpickle is part of the checkpoint readers: Node only
import { restrictedUnpickle } from '@diffssl/unet';
// @ts-expect-error the browser createFeatureExtractor takes a built U-Net, never a checkpoint path or a cache directory
import type { FeatureExtractorOptions } from '@diffssl/unet';

export async function browserExtractor(unet: AdmUNet | DiffusionUNet): Promise<FeatureExtractor> {
  noiseSchedule('linear', 1000);
  featureKey(150, 24);
  // @ts-expect-error no checkpoint files in the browser
  await createFeatureExtractor({ checkpoint: 'model.pt', config: '256x256_diffusion_uncond', blocks: [24], timesteps: [150] });
  return createFeatureExtractor({ unet, blocks: [24], timesteps: [150] });
}

export const unused = [readTorchCheckpoint, loadCheckpoint, restrictedUnpickle] as const;
export type Unused = FeatureExtractorOptions;
