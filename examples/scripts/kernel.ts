/**
 * Registering tslab, the notebooks' TypeScript kernel, with Jupyter: shared by
 * `install-kernel.ts` (for interactive use) and `test-examples.ts` (into a
 * temporary prefix).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The `examples/` folder. */
export const EXAMPLES = fileURLToPath(new URL('../', import.meta.url));
/** The notebooks' folder. */
export const NOTEBOOKS = `${EXAMPLES}notebooks/`;
/** The kernel's start script: tslab with the Node flags the notebooks need. */
export const KERNEL_SCRIPT = `${NOTEBOOKS}tslab-kernel.sh`;

const PACKAGES = ['core', 'unet', 'pool', 'difformer', 'diffeed', 'eval'];

/**
 * The @diffssl packages whose built entry (`dist/index.js`) is missing: the
 * kernel loads the built packages, as a consumer of the npm packages does.
 *
 * @returns package names
 */
export function unbuiltPackages(): string[] {
  return PACKAGES.filter((name) => !existsSync(fileURLToPath(new URL(`../../packages/${name}/dist/index.js`, import.meta.url)))).map(
    (name) => `@diffssl/${name}`,
  );
}

/**
 * A Python that has Jupyter's kernel registry (`jupyter_client`): $DIFFSSL_JUPYTER_PYTHON,
 * Debian's /usr/bin/python3 (where `apt-get install python3-notebook` puts Jupyter), or `python3` on the PATH.
 *
 * @returns the interpreter, or undefined when none has it
 */
export function jupyterPython(): string | undefined {
  const candidates = [process.env.DIFFSSL_JUPYTER_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => Boolean(c));
  return candidates.find((python) => spawnSync(python, ['-c', 'import jupyter_client'], { stdio: 'ignore' }).status === 0);
}

/**
 * Runs `tslab install` with the kernel script as the kernel's command.
 *
 * @param where - `--prefix DIR`, `--user` or `--sys-prefix`, as tslab takes them
 * @throws Error when no Python has Jupyter, or tslab install fails
 */
export function installKernel(where: readonly string[]): void {
  const python = jupyterPython();
  if (!python) {
    throw new Error(
      'no Python with Jupyter found: install it (Debian: apt-get install jupyter-nbconvert python3-notebook python3-ipykernel) or set DIFFSSL_JUPYTER_PYTHON',
    );
  }
  const tslab = fileURLToPath(new URL('../node_modules/tslab/bin/tslab', import.meta.url));
  const result = spawnSync(process.execPath, [tslab, 'install', `--python=${python}`, `--binary=${KERNEL_SCRIPT}`, ...where], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tslab install failed (exit ${result.status}): ${result.stderr || result.stdout}`);
}
