import { libraryConfig } from '../../tsup.library.js';

export default libraryConfig(
  ['src/index.ts', 'src/export/classifier-inputs.ts', 'src/heads/index.ts'],
  [{ entry: ['src/cli.ts'], format: ['esm'], sourcemap: true, target: 'node20', banner: { js: '#!/usr/bin/env node' } }],
);
