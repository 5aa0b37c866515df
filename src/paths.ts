import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository/package root, found by walking up from this file to package.json. The same code
 * runs compiled (dist/) and from source under vitest (src/), so nothing may assume a fixed depth.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('vmaccess: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export const packageRoot: string = findPackageRoot();
export const migrationsDir: string = join(packageRoot, 'src', 'store', 'migrations');
export const promptsDir: string = join(packageRoot, 'ivr-prompts');
export const sippScenariosDir: string = join(packageRoot, 'sipp-scenarios');
