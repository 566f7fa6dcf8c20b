import { ConfigError, type HostTensor } from '@diffssl/core';
import type { BuiltHead, HeadSpecForm } from './head-kind.js';
import { HEAD_KINDS } from './registry.js';

type SpecForm = NonNullable<Extract<(typeof HEAD_KINDS)[number], { spec: object }>['spec']>;

/**
 * A head described with the reference's argument names, as the fixtures'
 * `__metadata__` and `diffssl head-step --head` write it: the `head.json`
 * form of a registry kind (`linear`, `fusion`, `layers`).
 *
 * @public
 */
export type HeadSpec = ReturnType<SpecForm['parse']>;

const FORMS: readonly HeadSpecForm[] = HEAD_KINDS.flatMap((kind) => ('spec' in kind ? [kind.spec as HeadSpecForm] : []));

/**
 * The registry's `head.json` form of a kind (`linear`, `fusion`, `layers`).
 *
 * @throws `ConfigError` listing the forms
 * @public
 */
export function headSpecForm(kind: unknown): HeadSpecForm {
  const form = FORMS.find((candidate) => candidate.kind === kind);
  if (!form) {
    const names = FORMS.map((candidate) => `"${candidate.kind}"`);
    throw new ConfigError(`head spec: "kind" must be ${names.slice(0, -1).join(', ')} or ${names.at(-1)}; found ${JSON.stringify(kind)}`);
  }
  return form;
}

/**
 * Checks a parsed head spec (for example from `head.json`) against its
 * kind's form in the registry.
 *
 * @throws `ConfigError` naming the key, what was expected and what was found
 * @public
 */
export function parseHeadSpec(value: unknown): HeadSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`head spec: expected a JSON object with "kind"; found ${JSON.stringify(value)}`);
  const spec = value as Record<string, unknown>;
  const form = headSpecForm(spec.kind);
  const unknown = Object.keys(spec).filter((key) => key !== 'kind' && !form.keys.includes(key));
  if (unknown.length > 0)
    throw new ConfigError(`head spec: unknown key(s) ${unknown.join(', ')} for kind "${String(spec.kind)}"; known: kind, ${form.keys.join(', ')}`);
  return form.parse(spec) as HeadSpec;
}

/**
 * Builds the head a spec describes, reading channel counts and sizes from
 * example input tensors: `input` [B, C, H, W] for `linear` and `layers`, and
 * `t{T}/block{NN}` for `fusion`.
 *
 * @param spec - the head spec
 * @param examples - tensors with the input shapes (only shapes are read)
 * @param seed - initialization seed (default 0)
 * @throws `ConfigError` for a missing input tensor
 * @public
 */
export function buildHead(spec: HeadSpec, examples: ReadonlyMap<string, Pick<HostTensor, 'shape'>>, seed = 0): BuiltHead {
  return headSpecForm(spec.kind).build(spec, examples, seed);
}

export type { BuiltHead };
