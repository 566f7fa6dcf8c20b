/**
 * The `browser` export condition has its own types: a browser application
 * that imports @diffssl/unet or @diffssl/core is not offered the Node-only
 * APIs (checkpoint file readers, the cache, saveModel, readSafetensorsFile,
 * publishAtomically, writeFileAtomic).
 * The consumers in test/browser-types/ are type-checked with the browser
 * condition (every `@ts-expect-error` must be needed) and, as a control, with
 * the Node condition (where every Node-only import exists, so each of those
 * directives is unused). `pnpm test:pack` type-checks the same consumers
 * against the packed packages' built browser `.d.ts` files.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const consumers = ['browser-consumer.ts', 'core-browser-consumer.ts'].map((name) => fileURLToPath(new URL(`./browser-types/${name}`, import.meta.url)));

function typeCheck(conditions: string[]): string[] {
  const program = ts.createProgram(consumers, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    customConditions: conditions,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map(
      (d) =>
        `${d.file ? `${d.file.fileName.split('/').pop()}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : ''} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    );
}

/** The consumers' @ts-expect-error directives: 9 on Node-only imports, 1 on a checkpoint-path call. */
const directives = 10;

describe('browser types', () => {
  it('the browser entries of @diffssl/unet and @diffssl/core offer none of the Node-only APIs (source)', () => {
    expect(typeCheck(['browser', '@diffssl/source'])).toEqual([]);
  }, 60_000);

  it('control: under the Node condition the same Node-only imports exist, so their directives go unused', () => {
    const diagnostics = typeCheck(['@diffssl/source']);
    const unused = diagnostics.filter((d) => d.includes("TS2578 Unused '@ts-expect-error' directive"));
    expect(unused, diagnostics.join('\n')).toHaveLength(directives);
    // And the one browser-only name is missing there.
    expect(diagnostics.filter((d) => !unused.includes(d))).toEqual([
      expect.stringMatching(/core-browser-consumer\.ts:3 TS2724 .*no exported member named 'DEFAULT_BROWSER_PROVIDERS'/),
    ]);
  }, 60_000);
});
