import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type HostTensor } from '@diffssl/core';

/**
 * The shared reference fixtures (produced by the reference PyTorch
 * implementation): `../../../../shared/fixtures` from this folder, i.e. the
 * `shared/` directory beside the repository checkout.
 */
export const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));

export interface FeatureFixture {
  tensors: Map<string, HostTensor>;
  config: Record<string, unknown>;
  tList: number[];
  numBlocks: number;
  feedback: { feedback_b_list: number[]; second_fw_b_list: number[]; t: number; target_block: Record<string, number> };
  tensor(name: string): HostTensor;
}

export function loadFeatures(model: 'adm-fm28' | 'adm-37block-random'): FeatureFixture {
  const file = readSafetensors(readFileSync(`${FIXTURES}${model}.features.safetensors`));
  return {
    tensors: file.tensors,
    config: JSON.parse(file.metadata.config!),
    tList: JSON.parse(file.metadata.t_list!),
    numBlocks: Number(file.metadata.num_blocks),
    feedback: JSON.parse(file.metadata.feedback!),
    tensor(name) {
      const value = file.tensors.get(name);
      if (!value) throw new Error(`fixture ${model} has no tensor ${name}`);
      return value;
    },
  };
}
