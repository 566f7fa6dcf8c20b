/**
 * `runProtocol` and its option type, the end-to-end pipeline of `@diffssl/eval`
 * (`packages/eval/src/pipeline/run.ts`).
 *
 * `@diffssl/eval` does not export the pipeline from its package entry yet, so
 * the examples import it from the package's source here, in one place. Once
 * `runProtocol` is exported, this file becomes
 * `export { runProtocol, type RunOptions } from '@diffssl/eval';`.
 */
export { runProtocol, type RunOptions } from '../../packages/eval/src/pipeline/run.js';
export type { RunReport } from '@diffssl/eval';
