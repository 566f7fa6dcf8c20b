/**
 * Registers the notebooks' TypeScript kernel (tslab) with Jupyter, for
 * interactive use:
 *
 *   pnpm build
 *   pnpm --filter @diffssl/examples run notebook:kernel              # per user (root: system-wide)
 *   pnpm --filter @diffssl/examples run notebook:kernel -- --prefix DIR
 *   jupyter notebook examples/notebooks
 *
 * Then pick the "TypeScript" kernel (name `tslab`), which the notebooks
 * already name.
 */
import { installKernel, KERNEL_SCRIPT, unbuiltPackages } from './kernel.js';

const where = process.argv.slice(2);
installKernel(where);
console.log(`registered the Jupyter kernel 'tslab' (TypeScript), started by ${KERNEL_SCRIPT}${where.length > 0 ? ` (${where.join(' ')})` : ''}`);
const unbuilt = unbuiltPackages();
if (unbuilt.length > 0) console.log(`note: the kernel loads the built packages; build them first (pnpm build): ${unbuilt.join(', ')} have no dist/`);
