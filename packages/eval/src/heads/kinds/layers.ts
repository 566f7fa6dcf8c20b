import { AttentionHead } from '@diffssl/pool';
import type { SpecHeadKind } from '../head-kind.js';
import { inputShape, string } from '../spec-fields.js';

/** The `head.json` form of a head given by the reference's layer string alone, on one input. @public */
export interface LayerStringHeadSpec {
  /** A head from a layer string. */
  kind: 'layers';
  /** The reference's layer string, e.g. `Pool:2:2,Reshape,Attention:32:2:2:1,FullyPool,Dense:32:10:identity`. */
  layer_string: string;
}

/**
 * `layers`: a head given by the reference's layer string alone (`AttentionHead`
 * from `@diffssl/pool`) on one input tensor; `diffssl head-step` runs it. It is
 * not a protocol.
 *
 * @public
 */
export const layersHeadKind: SpecHeadKind<'layers', LayerStringHeadSpec> = {
  name: 'layers',
  summary: "a head from the reference's layer string alone, on one input (head-step only)",
  spec: {
    kind: 'layers',
    keys: ['layer_string'],
    parse: (spec): LayerStringHeadSpec => ({
      kind: 'layers',
      layer_string: string('layer_string', spec.layer_string, '"Reshape,Attention:64:4:2:1,FullyPool,Dense:64:10:identity"'),
    }),
    build: (spec: LayerStringHeadSpec, examples, seed) => {
      const module = AttentionHead.fromLayerString(spec.layer_string, { seed });
      return {
        module,
        inputs: new Map([['input', inputShape('layers', examples, 'input')]]),
        forward: (context, tensors) => module.forward(context, tensors.get('input')!),
      };
    },
  },
};
