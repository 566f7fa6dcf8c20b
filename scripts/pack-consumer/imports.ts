// Imports every public package from ESM TypeScript, as an npm consumer does,
// and fails to compile when a package's types do not resolve (an import whose
// types are missing would be `any`, which the checks below refuse).
import * as core from '@diffssl/core';
import * as unet from '@diffssl/unet';
import * as pool from '@diffssl/pool';
import * as difformer from '@diffssl/difformer';
import * as diffeed from '@diffssl/diffeed';
import * as evaluation from '@diffssl/eval';
import type { HostTensor, RunnerOptions } from '@diffssl/core';
import type { FeatureExtractorOptions, GuidedDiffusionFlags } from '@diffssl/unet';
import type { LinearHeadOptions } from '@diffssl/pool';
import type { DifFormerOptions } from '@diffssl/difformer';
import type { DifFeedOptions } from '@diffssl/diffeed';
import type { RunReport } from '@diffssl/eval';

/** `true` only when T is not `any`: an unresolved declaration file makes it `never`. */
type Typed<T> = 0 extends 1 & T ? never : true;
const typed: [
  Typed<typeof core.HostTensor>,
  Typed<typeof unet.createFeatureExtractor>,
  Typed<typeof pool.LinearHead>,
  Typed<typeof difformer.DifFormer>,
  Typed<typeof diffeed.DifFeed>,
  Typed<typeof evaluation.openDataset>,
  Typed<HostTensor>,
  Typed<RunnerOptions>,
  Typed<FeatureExtractorOptions>,
  Typed<GuidedDiffusionFlags>,
  Typed<LinearHeadOptions>,
  Typed<DifFormerOptions>,
  Typed<DifFeedOptions>,
  Typed<RunReport>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true];

// Each package's runtime exports, as Node's ESM loader sees them from the installed tarballs.
const modules = {
  '@diffssl/core': core,
  '@diffssl/unet': unet,
  '@diffssl/pool': pool,
  '@diffssl/difformer': difformer,
  '@diffssl/diffeed': diffeed,
  '@diffssl/eval': evaluation,
};
const expected: Record<keyof typeof modules, unknown> = {
  '@diffssl/core': core.HostTensor,
  '@diffssl/unet': unet.createFeatureExtractor,
  '@diffssl/pool': pool.LinearHead,
  '@diffssl/difformer': difformer.DifFormer,
  '@diffssl/diffeed': diffeed.DifFeed,
  '@diffssl/eval': evaluation.openDataset,
};
for (const [name, module] of Object.entries(modules)) {
  if (typeof expected[name as keyof typeof modules] !== 'function') throw new Error(`${name}: its main export is missing at run time`);
  console.log(`imported ${name}: ${Object.keys(module).length} exports`);
}
console.log(`types resolved for ${typed.length} checked names`);
