/**
 * `pnpm test:pack`: the published packages as an npm consumer gets them.
 *
 * 1. Packs every public package with `pnpm pack` (after `pnpm build`, which
 *    the root script runs first) and checks each tarball: no tests, test
 *    folders, fixtures or model files; no `workspace:` ranges left; built
 *    entry points present; publint and are-the-types-wrong pass on it.
 * 2. Installs the tarballs into a fresh consumer project in a temporary
 *    folder outside the workspace (`npm install --ignore-scripts`:
 *    onnxruntime-node's install script would download the CUDA provider from
 *    a host outside the npm registry; sharp's binary comes from its
 *    `@img/sharp-*` npm packages either way).
 * 3. Type-checks and compiles a consumer under `moduleResolution: node16`
 *    (declaration files checked too) and a browser consumer under `bundler`
 *    with the `browser` condition, then imports every package from Node ESM.
 * 4. Runs the getting-started guide's pipeline from the installed packages:
 *    a tiny random ADM U-Net, feature extraction, a linear head trained a few
 *    SGD steps, classification.
 * 4b. The same as a CommonJS consumer, in a folder whose package.json is what
 *    `npm init -y` writes (`"type": "commonjs"`): `require()`s every package
 *    and entry point and runs a graph on both runner threads, the extractor
 *    with its compiled-model cache, a head and DifFeed's targets
 *    (`commonjs/requires.cjs`); type-checks the guide's pipeline against the
 *    `.d.cts` declarations and runs it compiled, and as written with
 *    `npx tsx pipeline.ts`.
 * 5. Runs the installed `diffssl` command.
 * 6. Bundles a browser consumer of core, unet, pool and difformer with Vite
 *    and fails if any Node built-in is pulled in.
 *
 * Needs the npm registry (the consumer's own dependencies: onnxruntime-node
 * and -web, sharp, typescript, tsx, vite) and `tar`. Set DIFFSSL_KEEP_PACK_DIR=1 to
 * keep the temporary folder.
 */
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The public packages, in dependency order. */
const PACKAGES = ['core', 'unet', 'pool', 'difformer', 'diffeed', 'eval'] as const;
/** Vite for the browser-bundle check (the version the workspace's vitest uses). */
const VITE_VERSION = '8.4.0';
/** What a published tarball must never hold. */
const FORBIDDEN: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /\.test\.[cm]?[jt]sx?$/, what: 'a test file' },
  { pattern: /(^|\/)tests?\//, what: 'a test folder' },
  { pattern: /(^|\/)__fixtures__\//, what: 'a test fixture' },
  { pattern: /(^|\/)fixtures?\//, what: 'a fixtures folder' },
  { pattern: /\.safetensors$/, what: 'a safetensors file' },
  { pattern: /\.pth?$/, what: 'a PyTorch checkpoint' },
  { pattern: /\.onnx(\.data)?$/, what: 'an ONNX model' },
];

type PackageJson = {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** The environment of a clean consumer shell: none of pnpm's `npm_*` settings of this run leak into npm. */
function consumerEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|pnpm_|PNPM_)/i.test(key)) env[key] = value;
  }
  return { ...env, NODE_OPTIONS: '', ONNXRUNTIME_NODE_INSTALL: 'skip' };
}

/** Runs a command; throws with its output when it fails. Returns stdout. */
function run(command: string, args: readonly string[], options: SpawnSyncOptions & { cwd: string }): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `'${command} ${args.join(' ')}' in ${options.cwd} exited with ${result.status ?? result.signal}:\n${String(result.stdout ?? '')}${String(result.stderr ?? '')}`,
    );
  }
  return String(result.stdout ?? '');
}

async function step<T>(name: string, body: () => T | Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await body();
  console.log(`test:pack: ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return value;
}

/** The first ```ts block of the getting-started guide: the pipeline a newcomer copies. */
function gettingStartedPipeline(): string {
  const guide = readFileSync(join(ROOT, 'docs', 'guides', 'getting-started.md'), 'utf8');
  const match = /```ts\n([\s\S]*?)```/.exec(guide);
  if (!match?.[1]) throw new Error('docs/guides/getting-started.md: expected a ```ts code block with the first pipeline');
  return match[1];
}

/** Checks the files and the manifest of one tarball. */
export function checkTarball(tarball: string, name: string): number {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((file) => file.replace(/^package\//, ''));
  const problems: string[] = [];
  for (const file of files) {
    for (const { pattern, what } of FORBIDDEN) if (pattern.test(file)) problems.push(`${file} (${what})`);
  }
  for (const required of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/index.cjs', 'dist/index.d.cts']) {
    if (!files.includes(required)) problems.push(`${required} is missing`);
  }
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as PackageJson;
  for (const field of ['dependencies', 'peerDependencies'] as const) {
    for (const [dependency, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}.${dependency} is still '${range}'`);
    }
  }
  if (problems.length > 0) throw new Error(`${name}: the packed tarball ${tarball} must not hold these:\n  ${problems.join('\n  ')}`);
  return files.length;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'diffssl-pack-'));
  if (!relative(ROOT, work).startsWith('..')) throw new Error(`the consumer folder ${work} must lie outside the workspace ${ROOT}`);
  const tarballs = join(work, 'tarballs');
  const consumer = join(work, 'consumer');
  mkdirSync(tarballs);
  let passed = false;
  try {
    const packed = await step('packed and checked every package', () => {
      const result: Record<string, string> = {};
      for (const dir of PACKAGES) {
        const packageDir = join(ROOT, 'packages', dir);
        const manifest = readJson<PackageJson>(join(packageDir, 'package.json'));
        const before = new Set(readdirSync(tarballs));
        run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: packageDir });
        const created = readdirSync(tarballs).filter((file) => !before.has(file) && file.endsWith('.tgz'));
        if (created.length !== 1) throw new Error(`${manifest.name}: pnpm pack made ${created.length} tarballs`);
        const tarball = join(tarballs, created[0]!);
        const count = checkTarball(tarball, manifest.name);
        result[manifest.name] = tarball;
        console.log(`  ${manifest.name}@${manifest.version}: ${count} files`);
      }
      return result;
    });

    await step('publint and are-the-types-wrong pass on every tarball', () => {
      const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
      for (const tarball of Object.values(packed)) {
        run(bin('publint'), ['run', tarball, '--strict'], { cwd: ROOT });
        run(bin('attw'), [tarball, '--profile', 'node16', '--no-emoji', '--no-color'], { cwd: ROOT });
      }
    });

    await step('installed the tarballs into a fresh consumer project', () => {
      const root = readJson<PackageJson>(join(ROOT, 'package.json'));
      const core = readJson<PackageJson>(join(ROOT, 'packages', 'core', 'package.json'));
      cpSync(join(ROOT, 'scripts', 'pack-consumer'), consumer, { recursive: true });
      // The browser-types consumers of @diffssl/unet's tests: each @ts-expect-error marks a Node-only name that the packed browser .d.ts must not offer.
      cpSync(join(ROOT, 'packages', 'unet', 'test', 'browser-types'), join(consumer, 'browser-types'), { recursive: true });
      writeFileSync(join(consumer, 'pipeline.ts'), gettingStartedPipeline());
      writeFileSync(join(consumer, 'commonjs', 'pipeline.ts'), gettingStartedPipeline());
      const dependencies: Record<string, string> = Object.fromEntries(Object.entries(packed).map(([name, tarball]) => [name, `file:${tarball}`]));
      dependencies['onnxruntime-web'] = core.peerDependencies!['onnxruntime-web']!;
      const devDependencies = {
        typescript: root.devDependencies!.typescript!,
        '@types/node': root.devDependencies!['@types/node']!,
        tsx: root.devDependencies!.tsx!,
        vite: VITE_VERSION,
      };
      writeFileSync(
        join(consumer, 'package.json'),
        `${JSON.stringify({ name: 'diffssl-pack-consumer', private: true, type: 'module', dependencies, devDependencies }, null, 2)}\n`,
      );
      run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: consumer, env: consumerEnvironment() });
    });

    const env = consumerEnvironment();
    const bin = (name: string) => join(consumer, 'node_modules', '.bin', name);
    await step('type-checked and compiled the Node consumer (moduleResolution node16, declaration files checked)', () => {
      run(bin('tsc'), ['-p', 'tsconfig.node16.json'], { cwd: consumer, env });
    });
    await step('type-checked the browser consumer (moduleResolution bundler, browser condition)', () => {
      run(bin('tsc'), ['-p', 'tsconfig.bundler.json'], { cwd: consumer, env });
    });
    await step('checked that the packed browser .d.ts files offer none of the Node-only APIs (every @ts-expect-error needed)', () => {
      run(bin('tsc'), ['-p', 'tsconfig.browser-types.json'], { cwd: consumer, env });
    });
    await step('imported every package from Node ESM', () => {
      process.stdout.write(indent(run('node', ['build/imports.js'], { cwd: consumer, env })));
    });
    await step('ran the getting-started pipeline (extract features, train a linear head, classify)', () => {
      const output = run('node', ['build/pipeline.js'], { cwd: consumer, env });
      process.stdout.write(indent(output));
      checkPipelineOutput(output);
    });
    const commonjs = join(consumer, 'commonjs');
    await step('required every package and entry point from CommonJS (an npm init -y project) and ran each', () => {
      process.stdout.write(indent(run('node', ['requires.cjs'], { cwd: commonjs, env })));
    });
    await step('type-checked the getting-started pipeline as CommonJS (the .d.cts declarations) and ran it compiled', () => {
      run(bin('tsc'), ['-p', 'tsconfig.json'], { cwd: commonjs, env });
      const compiled = readFileSync(join(commonjs, 'build', 'pipeline.js'), 'utf8');
      if (!compiled.includes('require("@diffssl/core")'))
        throw new Error('commonjs/build/pipeline.js: expected tsc to emit require("@diffssl/core") in the CommonJS project');
      checkPipelineOutput(run('node', ['build/pipeline.js'], { cwd: commonjs, env }));
    });
    await step('ran the getting-started pipeline as written in the CommonJS project (npx tsx pipeline.ts)', () => {
      const output = run('npx', ['tsx', 'pipeline.ts'], { cwd: commonjs, env });
      process.stdout.write(indent(output));
      checkPipelineOutput(output);
    });
    await step('ran the installed diffssl command', () => {
      const help = run(bin('diffssl'), ['--help'], { cwd: consumer, env });
      for (const command of ['unet-run', 'head-step']) if (!help.includes(command)) throw new Error(`diffssl --help does not list ${command}:\n${help}`);
    });
    await step('bundled core, unet, pool and difformer for the browser with Vite, no Node built-ins', () => {
      process.stdout.write(indent(run('node', ['browser/build.mjs'], { cwd: consumer, env })));
    });
    passed = true;
  } finally {
    if (passed && !process.env.DIFFSSL_KEEP_PACK_DIR) rmSync(work, { recursive: true, force: true });
    else console.log(`test:pack: the consumer project is kept in ${work}`);
  }
}

/** The pipeline prints the feature shape, a loss per step and the logits' shape; the loss must be finite and go down. */
function checkPipelineOutput(output: string): void {
  const losses = [...output.matchAll(/^step \d+: loss (\S+)$/gm)].map((match) => Number(match[1]));
  if (losses.length < 2 || losses.some((loss) => !Number.isFinite(loss)))
    throw new Error(`pipeline: expected finite losses for several steps; found ${JSON.stringify(losses)}`);
  if (!(losses[losses.length - 1]! < losses[0]!)) throw new Error(`pipeline: the training loss did not go down: ${losses.join(', ')}`);
  if (!/^features t150\/block03: \[8, \d+, \d+, \d+\]/m.test(output))
    throw new Error('pipeline: expected a line with the features of t150/block03 for 8 images');
  if (!/^predicted classes: \[([01], ){7}[01]\], labels: /m.test(output)) throw new Error('pipeline: expected the predicted classes of the 8 images');
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now();
  main().then(
    () => console.log(`test:pack: passed in ${((performance.now() - started) / 1000).toFixed(0)} s`),
    (error: unknown) => {
      console.error(`test:pack: FAILED: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
