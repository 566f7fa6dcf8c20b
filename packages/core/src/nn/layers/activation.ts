import type { SymbolicTensor } from '../../graph/graph.js';
import { gelu } from '../../ops/gelu.js';
import { relu } from '../../ops/relu.js';
import { sigmoid } from '../../ops/sigmoid.js';
import { silu } from '../../ops/silu.js';
import { tanh } from '../../ops/tanh.js';
import { Lambda } from './layer.js';

/** `nn.ReLU()`. @public */
export const ReLU = (): Lambda => new Lambda('ReLU', (_context, x: SymbolicTensor) => relu(x));
/** `nn.SiLU()`. @public */
export const SiLU = (): Lambda => new Lambda('SiLU', (_context, x: SymbolicTensor) => silu(x));
/** `nn.Sigmoid()`. @public */
export const Sigmoid = (): Lambda => new Lambda('Sigmoid', (_context, x: SymbolicTensor) => sigmoid(x));
/** `nn.Tanh()`. @public */
export const Tanh = (): Lambda => new Lambda('Tanh', (_context, x: SymbolicTensor) => tanh(x));
/** `nn.GELU()` (exact, erf). @public */
export const GELU = (): Lambda => new Lambda('GELU', (_context, x: SymbolicTensor) => gelu(x));
/** `nn.Identity()`. @public */
export const Identity = (): Lambda => new Lambda('Identity', (_context, x: SymbolicTensor) => x);
