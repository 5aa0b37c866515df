/**
 * `argv` to run on `cpus` only (`taskset -c`, e.g. "0" or 1), or as it is when `cpus` is null.
 * taskset execs the command in the same process, so the child's pid is the command's.
 */
export function onCpus(argv: readonly string[], cpus: string | number | null): string[] {
  return cpus === null ? [...argv] : ['taskset', '-c', String(cpus), ...argv];
}
