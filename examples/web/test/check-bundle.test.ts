import { describe, expect, it } from 'vitest';
import { init } from 'es-module-lexer';
import { scanBundle } from '../scripts/check-bundle.js';

describe('scanBundle', () => {
  it('finds static and dynamic imports and require() calls of Node built-ins', async () => {
    await init;
    const code = [
      'import { readFile } from "node:fs/promises";',
      'import path from "path";',
      'import { a } from "./chunk.js";',
      'const os = await import("os");',
      'const fs = require("fs");',
      'const local = require("./local.js");',
    ].join('\n');
    const found = scanBundle(code);
    expect(found.imports).toEqual(['node:fs/promises', 'path', 'os']);
    expect(found.requires).toEqual(['fs']);
    expect(found.stubs).toBe(0);
  });

  it('counts Vite browser stubs, and reports strings that only name a built-in without failing on them', async () => {
    await init;
    const found = scanBundle('const s = "__vite-browser-external:fs"; if (isNode) load("node:os");');
    expect(found.imports).toEqual([]);
    expect(found.requires).toEqual([]);
    expect(found.stubs).toBe(1);
    expect(found.namedOnly).toEqual(['node:os']);
    expect(scanBundle('export const x = 1;')).toEqual({ imports: [], requires: [], stubs: 0, namedOnly: [] });
  });
});
