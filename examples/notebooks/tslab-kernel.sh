#!/bin/sh
# Starts tslab, the TypeScript kernel of these notebooks, registered with
# `pnpm --filter @diffssl/examples run notebook:kernel` (and by `pnpm test:examples`).
#
# tslab compiles each cell to CommonJS, so `import { HostTensor } from '@diffssl/core'` becomes a require().
# The @diffssl packages ship CommonJS too; --conditions=import makes require() pick the built ESM entry
# (dist/index.js, whose .d.ts tslab checks cells against; run `pnpm build` first), which Node >= 20.19 loads
# with require(esm); --disable-warning silences that feature's ExperimentalWarning on Node 20.
here=$(cd "$(dirname "$0")" && pwd)
exec "${NODE:-node}" --conditions=import --disable-warning=ExperimentalWarning "$here/../node_modules/tslab/bin/tslab" "$@"
