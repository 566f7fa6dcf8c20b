import { ConfigError, type HostTensor } from '@diffssl/core';

/**
 * Readers of `head.json` fields shared by the kinds' forms: each names the
 * key, what was expected and what was found.
 */

/** A positive integer. */
export function positiveInteger(key: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0)
    throw new ConfigError(`head spec: ${key} must be a positive integer; found ${JSON.stringify(value)}`);
  return value as number;
}

/** A non-empty list of non-negative integers. */
export function integerList(key: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isSafeInteger(v) && v >= 0))
    throw new ConfigError(`head spec: ${key} must be a non-empty list of integers; found ${JSON.stringify(value)}`);
  return value as number[];
}

/** A string. */
export function string(key: string, value: unknown, example: string): string {
  if (typeof value !== 'string') throw new ConfigError(`head spec: ${key} must be a string such as ${example}; found ${JSON.stringify(value)}`);
  return value;
}

/** The shape [C, H, W] of an example input tensor [B, C, H, W] that a head reads. */
export function inputShape(kind: string, examples: ReadonlyMap<string, Pick<HostTensor, 'shape'>>, name: string): number[] {
  const tensor = examples.get(name);
  if (!tensor) throw new ConfigError(`head spec (${kind}): expected an input tensor '${name}'; found ${[...examples.keys()].join(', ') || 'none'}`);
  if (tensor.shape.length !== 4) throw new ConfigError(`head spec (${kind}): input '${name}' must be [B, C, H, W]; found [${tensor.shape.join(', ')}]`);
  return tensor.shape.slice(1) as number[];
}
