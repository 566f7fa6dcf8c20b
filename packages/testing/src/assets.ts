import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type HostTensor } from '@diffssl/core';

/** The repository's `assets/` folder (embedded model, data and reference fixtures). */
export const ASSETS = fileURLToPath(new URL('../../../assets/', import.meta.url));

/**
 * The reference fixtures produced by the reference PyTorch implementation:
 * `assets/fixtures/` in this repository, or `$DIFFSSL_FIXTURES` when set.
 */
export const FIXTURES = process.env.DIFFSSL_FIXTURES ? `${process.env.DIFFSSL_FIXTURES.replace(/\/$/, '')}/` : `${ASSETS}fixtures/`;

/** The embedded default U-Net (`assets/models/adm-fm28/`). */
export const EMBEDDED_MODEL = {
  checkpoint: `${ASSETS}models/adm-fm28/adm-fm28.pt`,
  flagsFile: `${ASSETS}models/adm-fm28/flags.json`,
};

/** The embedded FM-10k data (`assets/data/fashion-mnist-10k/`, gzipped IDX). */
export const EMBEDDED_DATA = `${ASSETS}data/fashion-mnist-10k/`;

/** The path of a reference fixture file, with a clear error when it is missing. */
export function fixturePath(name: string): string {
  if (name === 'adm-fm28.pt' && !process.env.DIFFSSL_FIXTURES) return EMBEDDED_MODEL.checkpoint;
  const path = `${FIXTURES}${name}`;
  if (!existsSync(path))
    throw new Error(`reference fixture ${name} not found at ${path}: expected assets/fixtures/ in the repository, or set DIFFSSL_FIXTURES`);
  return path;
}

/** The embedded model's guided-diffusion flags. */
export function embeddedFlags(): Record<string, unknown> {
  return JSON.parse(readFileSync(EMBEDDED_MODEL.flagsFile, 'utf8')) as Record<string, unknown>;
}

/** A parsed safetensors fixture with a checked tensor lookup. */
export interface TensorFixture {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
  /** The tensor, or an error naming the fixture and the tensor. */
  tensor(name: string): HostTensor;
  /** The tensors under a prefix (`linear/param/`), by the rest of their names. */
  group(prefix: string): Map<string, HostTensor>;
}

/** Reads a safetensors fixture by file name. */
export function loadTensorFixture(name: string): TensorFixture {
  const file = readSafetensors(readFileSync(fixturePath(name)));
  return {
    ...file,
    tensor(tensorName) {
      const value = file.tensors.get(tensorName);
      if (!value) throw new Error(`fixture ${name} has no tensor ${tensorName}`);
      return value;
    },
    group(prefix) {
      return new Map([...file.tensors].filter(([key]) => key.startsWith(prefix)).map(([key, tensor]) => [key.slice(prefix.length), tensor]));
    },
  };
}

/** A U-Net features fixture (`<model>.features.safetensors`) with its metadata parsed. */
export interface FeatureFixture extends TensorFixture {
  config: Record<string, unknown>;
  tList: number[];
  numBlocks: number;
  feedback: { feedback_b_list: number[]; second_fw_b_list: number[]; t: number; arch: string; target_block: Record<string, number> };
}

/** Reads `<model>.features.safetensors`. */
export function loadFeatures(model: 'adm-fm28' | 'adm-37block-random'): FeatureFixture {
  const file = loadTensorFixture(`${model}.features.safetensors`);
  return {
    ...file,
    config: JSON.parse(file.metadata.config!) as Record<string, unknown>,
    tList: JSON.parse(file.metadata.t_list!) as number[],
    numBlocks: Number(file.metadata.num_blocks),
    feedback: JSON.parse(file.metadata.feedback!) as FeatureFixture['feedback'],
  };
}
