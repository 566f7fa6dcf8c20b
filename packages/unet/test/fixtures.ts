import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type HostTensor } from '@diffssl/core';

/**
 * The shared reference fixtures (produced by the reference PyTorch
 * implementation): the `shared/fixtures` directory beside the repository
 * checkout, or `$DIFFSSL_FIXTURES`.
 */
export const FIXTURES = process.env.DIFFSSL_FIXTURES ? `${process.env.DIFFSSL_FIXTURES.replace(/\/$/, '')}/` : fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
if (!existsSync(`${FIXTURES}adm-fm28.pt`)) {
  throw new Error(`reference fixtures not found at ${FIXTURES}: expected the shared/ directory beside the checkout, or set DIFFSSL_FIXTURES`);
}

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
